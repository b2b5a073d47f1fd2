#!/usr/bin/env python3
"""Print the import graph between the library's modules and its cycles.

Each source file under src/ (binaries excluded) is a node; an edge a -> b means file a names
`crate::b...` (in a `use` or a path) or `super::`/`self::` paths resolving to b. Exits 1 when
the graph has a cycle, printing each strongly connected component of more than one file.
Usage: python3 scripts/layers.py [--edges]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for d, _, names in os.walk(ROOT):
    if os.path.relpath(d, ROOT).startswith("bin"):
        continue
    for n in names:
        if n.endswith(".rs"):
            p = os.path.join(d, n)
            files[module_of(p)] = p

mods = set(files)


def resolve(parts):
    """The longest known module prefix of a path."""
    parts = tuple(parts)
    for k in range(len(parts), 0, -1):
        if parts[:k] in mods:
            return parts[:k]
    return None


def strip_comments(src):
    src = re.sub(r"//[^\n]*", "", src)
    return re.sub(r"/\*.*?\*/", "", src, flags=re.S)


FACADE = re.compile(r"\bpub(?:\([\w:]+\))?\s+use\s+self::[^;]+;")


def expand_uses(src, facade_ok):
    """Yield module paths named by `use` trees and inline paths. A module file's re-exports
    of its own children (`pub use self::child::Item;`) are its facade, not a dependency."""
    if facade_ok:
        src = FACADE.sub("", src)
    for m in re.finditer(r"\buse\s+([^;]+);", src):
        tree = re.sub(r"\s+", "", m.group(1))
        yield from expand_tree(tree)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", src):
        yield m.group(1).split("::")


def expand_tree(tree, prefix=()):
    # split "a::b::{c,d::{e}}" into paths
    if "{" not in tree:
        yield list(prefix) + [p for p in tree.split("::") if p]
        return
    i = tree.index("{")
    head = [p for p in tree[:i].split("::") if p]
    inner = tree[i + 1 : tree.rindex("}")]
    depth, start = 0, 0
    for j, c in enumerate(inner + ","):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            part = inner[start:j]
            start = j + 1
            if part:
                yield from expand_tree(part, tuple(prefix) + tuple(head))


edges = {m: set() for m in mods}
for mod, path in files.items():
    src = strip_comments(open(path, encoding="utf-8").read())
    # skip #[cfg(test)] modules: tests may import upward
    src = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", src)[0]
    facade_ok = os.path.basename(path) in ("mod.rs", "lib.rs")
    for parts in expand_uses(src, facade_ok):
        if not parts:
            continue
        base = list(mod)
        if parts[0] == "crate":
            target = parts[1:]
        elif parts[0] == "super":
            b = base[:]
            while parts and parts[0] == "super":
                b = b[:-1]
                parts = parts[1:]
            target = b + parts
        elif parts[0] == "self":
            target = base + parts[1:]
        else:
            continue
        t = resolve(target)
        if t is not None and t != mod and t != ():
            # a child module's file naming its parent's re-exports is not a layer edge when
            # the parent is the crate root
            edges[mod].add(t)

# Tarjan SCC
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]


def strong(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        sccs.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index:
        strong(v)

name = lambda m: "::".join(m) or "crate"
if "--edges" in sys.argv:
    for m in sorted(edges):
        print(name(m), "->", ", ".join(sorted(name(t) for t in edges[m])))
cycles = [c for c in sccs if len(c) > 1]
for c in cycles:
    print("cycle:", " ".join(sorted(name(m) for m in c)))
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(cycles)} cycles")
sys.exit(1 if cycles else 0)
