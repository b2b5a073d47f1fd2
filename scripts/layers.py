#!/usr/bin/env python3
"""Check the library's layering: the import graph between its modules, against the layer table
of ARCHITECTURE.md.

Each source file under src/ (binaries excluded) is a node; an edge a -> b means file a names
`crate::b...` (in a `use` or a path) or `super::`/`self::` paths resolving to b. Two checks:

- no cycle between files (each strongly connected component of more than one file is printed);
- every edge between two top-level modules (folders or files directly under src/) goes down the
  layer table of ARCHITECTURE.md (the table after the line `<!-- layers -->`, one row per layer,
  lowest first, its modules lowest first): an edge to a module later in the table, or from or to
  a module the table does not list, is printed with the file that makes it.

Exits 1 when either check fails.
Usage: python3 scripts/layers.py [--edges] [--root DIR] [--architecture FILE] | --self-test
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def option(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


ROOT = option("--root", os.path.join(HERE, "..", "src"))
ARCHITECTURE = option("--architecture", os.path.join(HERE, "..", "ARCHITECTURE.md"))


def self_test():
    """Run the check on a small tree whose edges the table allows, then on the same tree with
    one upward edge, an unlisted module and a cycle: the first must pass, the second fail
    naming each fault."""
    table = "<!-- layers -->\n| layer | modules |\n|---|---|\n| bottom | error, options |\n| top | io |\n"
    good = {"lib.rs": "mod error; mod options; mod io;\n", "error.rs": "",
            "options.rs": "use crate::error::E;\n", "io/mod.rs": "use crate::options::O;\nmod a;\n",
            "io/a.rs": "use super::B;\n"}
    bad = dict(good)
    bad["options.rs"] = "use crate::error::E;\nuse crate::io::R;\n"
    bad["extra.rs"] = "use crate::error::E;\n"
    bad["error.rs"] = "use crate::error2::X;\n"
    bad["error2.rs"] = "use crate::error::E;\n"
    outcomes = []
    for files in (good, bad):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "src")
            for name, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
                with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                    f.write(text)
            arch = os.path.join(d, "ARCHITECTURE.md")
            with open(arch, "w", encoding="utf-8") as f:
                f.write(table)
            run = subprocess.run([sys.executable, os.path.abspath(__file__), "--root", src,
                                  "--architecture", arch], capture_output=True, text=True)
            outcomes.append((run.returncode, run.stdout))
    (good_code, good_out), (bad_code, bad_out) = outcomes
    faults = []
    if good_code != 0:
        faults.append(f"the allowed tree failed:\n{good_out}")
    if bad_code != 1:
        faults.append(f"the faulty tree exited {bad_code}, not 1")
    for needle in ("up: options -> io", "extra", "cycle: error error2"):
        if needle not in bad_out:
            faults.append(f"the faulty tree's report lacks {needle!r}:\n{bad_out}")
    for fault in faults:
        print("self-test:", fault)
    print("self-test:", "failed" if faults else "passed (an allowed tree passes; an upward edge, an unlisted module and a cycle fail)")
    sys.exit(1 if faults else 0)


if "--self-test" in sys.argv:
    self_test()


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


def layer_table(path):
    """The modules of ARCHITECTURE.md's layer table, lowest first, with their layer."""
    order = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("<!-- layers -->", 1)
    if len(lines) < 2:
        print(f"{path}: no layer table (a line `<!-- layers -->` before it)")
        sys.exit(1)
    for line in lines[1].lstrip().splitlines():
        if not line.startswith("|"):
            break
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or set(cells[0]) <= set("-: ") or cells[0] == "layer":
            continue
        for module in cells[1].split(","):
            order.append((module.strip().strip("`"), cells[0]))
    return order


order = layer_table(ARCHITECTURE)
rank = {m: i for i, (m, _) in enumerate(order)}
layer_of = dict(order)
faults = []
tops = {m[0] for m in mods if m}
for top in sorted(tops - set(rank)):
    faults.append(f"unlisted: {top} (src/{top}) is not in the layer table of {os.path.basename(ARCHITECTURE)}")
for listed in sorted(set(rank) - tops):
    faults.append(f"stale: {listed} is in the layer table but not under src/")
for m in sorted(edges):
    for t in sorted(edges[m]):
        a, b = m[0] if m else None, t[0] if t else None
        if a is None or b is None or a == b or a not in rank or b not in rank:
            continue
        if rank[b] > rank[a]:
            faults.append(
                f"up: {a} -> {b} ({os.path.relpath(files[m], os.path.dirname(ROOT))} names {name(t)}; "
                f"{b} ({layer_of[b]}) is above {a} ({layer_of[a]}) in the table)"
            )
for f in faults:
    print(f)
print(
    f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(cycles)} cycles, "
    f"{len(faults)} edges or modules against the layer table"
)
sys.exit(1 if cycles or faults else 0)
