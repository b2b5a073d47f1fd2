//! Edge-list and GML readers, and the planted-partition generator.

use std::path::{Path, PathBuf};

use nmf_gpu::graph::{
    parse_edge_list, parse_gml, planted_partition, read_edge_list, read_gml, Duplicates,
    EdgeOptions, GmlValue, Graph, SelfLoops,
};
use nmf_gpu::NmfError;

fn parse(text: &str, options: &EdgeOptions) -> Result<Graph, NmfError> {
    parse_edge_list(text.as_bytes(), "test.txt", options)
}

fn assert_symmetric(g: &Graph) {
    let a = g.adjacency();
    assert_eq!(a.dim(), (g.n_nodes(), g.n_nodes()));
    for i in 0..g.n_nodes() {
        for j in 0..g.n_nodes() {
            assert_eq!(a[[i, j]], a[[j, i]]);
        }
    }
}

/// The line (and column) of a format error.
fn location(e: &NmfError) -> (Option<usize>, Option<usize>) {
    match e {
        NmfError::Format { line, column, .. } => (*line, *column),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn edge_list_comments_separators_and_ids() {
    let text =
        "% KONECT-style header\n# comment\n\n10\t-3\n  7 10 2.5  # trailing comment\r\n7 -3 0\n";
    let g = parse(text, &EdgeOptions::default()).unwrap();
    assert_eq!(g.nodes(), &[-3, 7, 10]);
    let a = g.adjacency();
    let (m3, s7, t10) = (0, 1, 2);
    assert_eq!(a[[t10, m3]], 1.0);
    assert_eq!(a[[s7, t10]], 2.5);
    assert_eq!(a[[s7, m3]], 0.0); // a zero-weight edge: the nodes exist, the pair is not joined
    assert_eq!(g.n_edges(), 2);
    assert_eq!(g.index_of(7), Some(1));
    assert_eq!(g.index_of(8), None);
    assert_eq!(g.degrees(), vec![1.0, 2.5, 3.5]);
    assert_symmetric(&g);
}

#[test]
fn duplicates_and_self_loops_follow_the_options() {
    let text = "1 2 1\n2 1 3\n1 2 2\n3 3 4\n2 3\n";
    let g = parse(text, &EdgeOptions::default()).unwrap();
    assert_eq!(g.adjacency()[[0, 1]], 3.0); // Max
    assert_eq!(g.adjacency()[[2, 2]], 4.0); // the loop on the diagonal
    assert_eq!(g.n_edges(), 3);
    let g = parse(text, &EdgeOptions::default().duplicates(Duplicates::Sum)).unwrap();
    assert_eq!(g.adjacency()[[0, 1]], 6.0);
    assert_eq!(g.adjacency()[[1, 0]], 6.0);
    let g = parse(text, &EdgeOptions::default().self_loops(SelfLoops::Drop)).unwrap();
    assert_eq!(g.adjacency()[[2, 2]], 0.0);
    assert_eq!(g.nodes(), &[1, 2, 3]);
    let e = parse(text, &EdgeOptions::default().duplicates(Duplicates::Error)).unwrap_err();
    assert_eq!(location(&e), (Some(2), None));
    assert!(e.to_string().contains("first on line 1"), "{e}");
    // Listing every edge both ways gives the graph listed once.
    let once = parse("1 2\n2 3\n", &EdgeOptions::default()).unwrap();
    let twice = parse("1 2\n2 1\n2 3\n3 2\n", &EdgeOptions::default()).unwrap();
    assert_eq!(once, twice);
}

#[test]
fn malformed_edge_lines_name_line_and_field() {
    let cases = [
        ("1 2\n1 x\n", (Some(2), Some(2)), "not an integer"),
        ("1 2\n\n3\n", (Some(3), None), "found 1 field"),
        ("1 2 1 5\n", (Some(1), None), "found 4 fields"),
        ("1 2\n2 3 -1\n", (Some(2), Some(3)), "finite and >= 0"),
        ("1 2 NaN\n", (Some(1), Some(3)), "finite and >= 0"),
        ("1 2 heavy\n", (Some(1), Some(3)), "not a number"),
        ("1.5 2\n", (Some(1), Some(1)), "not an integer"),
    ];
    for (text, loc, words) in cases {
        let e = parse(text, &EdgeOptions::default()).unwrap_err();
        assert_eq!(location(&e), loc, "{text:?}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(words) && msg.contains("test.txt"), "{msg}");
    }
    let e = parse("# only comments\n\n", &EdgeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no edges"), "{e}");
    let e = parse_edge_list(&b"1 2\n\xff\xfe 3\n"[..], "t", &EdgeOptions::default()).unwrap_err();
    assert_eq!(location(&e), (Some(2), None));
    let e = read_edge_list("/nonexistent/edges.txt").unwrap_err();
    assert!(matches!(e, NmfError::Io { .. }), "{e}");
}

#[test]
fn too_large_graphs_are_refused_before_allocating() {
    let star: String = (1..600).map(|i| format!("0 {i}\n")).collect();
    let e = parse(&star, &EdgeOptions::default().max_bytes(1 << 20)).unwrap_err();
    assert!(matches!(e, NmfError::TooLarge { .. }), "{e}");
    let g = parse("0 1\n", &EdgeOptions::default().max_bytes(16)).unwrap();
    assert_eq!(g.n_nodes(), 2);
}

#[test]
fn from_edges_matches_the_reader() {
    let g = Graph::from_edges([(5, 1, 2.0), (1, 9, 1.0)], &EdgeOptions::default()).unwrap();
    assert_eq!(g, parse("5 1 2\n1 9\n", &EdgeOptions::default()).unwrap());
    let e = Graph::from_edges([(0, 1, -1.0)], &EdgeOptions::default()).unwrap_err();
    assert!(matches!(e, NmfError::InvalidParameter { .. }), "{e}");
}

const SMALL_GML: &str = r#"Creator "test"
graph
[
  directed 0
  node [ id 2 label "b" value 1 ]
  node
  [
    id 0
    label "a [x]"
    value 0
  ]
  node [ id 1 value 1 ]
  edge [ source 0 target 1 ]
  edge [ source 2 target 0 weight 2.5 ]
  edge [ source 1 target 0 ]
]
"#;

#[test]
fn gml_nodes_attribute_and_edges() {
    let g = parse_gml(SMALL_GML, "t.gml", Some("value"), &EdgeOptions::default()).unwrap();
    assert_eq!(g.graph().nodes(), &[0, 1, 2]);
    assert_eq!(
        g.attribute(),
        &[
            Some(GmlValue::Int(0)),
            Some(GmlValue::Int(1)),
            Some(GmlValue::Int(1))
        ]
    );
    assert_eq!(g.attribute_labels().unwrap(), vec![0, 1, 1]);
    let a = g.graph().adjacency();
    assert_eq!(
        (a[[0, 1]], a[[0, 2]], a[[2, 0]], a[[1, 2]]),
        (1.0, 2.5, 2.5, 0.0)
    );
    let labels = parse_gml(SMALL_GML, "t.gml", Some("label"), &EdgeOptions::default()).unwrap();
    assert_eq!(labels.attribute()[0], Some(GmlValue::Str("a [x]".into())));
    assert!(labels.attribute_labels().is_err()); // node 1 has no label
}

#[test]
fn gml_real_labels_treat_signed_zeros_as_one_class_and_nan_as_its_own() {
    let text = "graph [\n\
        node [ id 0 c 0.5 ]\n\
        node [ id 1 c -0.0 ]\n\
        node [ id 2 c 0.0 ]\n\
        node [ id 3 c +NaN ]\n\
        node [ id 4 c 2 ]\n\
        node [ id 5 c +nan ]\n\
        node [ id 6 c -1.5 ]\n\
        edge [ source 0 target 1 ]\n\
        ]\n";
    let g = parse_gml(text, "t.gml", Some("c"), &EdgeOptions::default()).unwrap();
    assert!(matches!(g.attribute()[3], Some(GmlValue::Real(x)) if x.is_nan()));
    // Integers first (2), then the reals in ascending order: -1.5, ±0, 0.5, NaN.
    assert_eq!(g.attribute_labels().unwrap(), vec![3, 2, 2, 4, 0, 4, 1]);
}

#[test]
fn malformed_gml_is_an_error_with_a_line() {
    let cases = [
        (
            "graph [\n node [ id 0 ]\n edge [ source 0 target 5 ]\n]\n",
            3,
            "node 5",
        ),
        (
            "graph [\n node [ id 0 ]\n node [ id 0 ]\n]\n",
            3,
            "defined twice",
        ),
        ("graph [\n node [ id 0 \n", 2, "never closed"),
        ("graph [\n node [ label \"x ]\n]\n", 2, "never closed"),
        ("graph [\n node [ id x0 ]\n]\n", 2, "has no value"),
        ("graph [\n node [ id 0.5 ]\n]\n", 2, "integer"),
        ("graph [\n node [ id 0 ]\n]\n]\n", 4, "no matching"),
        (
            "graph [\n node [ id 0 ] edge [ source 0 ]\n]\n",
            2,
            "no `target`",
        ),
    ];
    for (text, line, words) in cases {
        let e = parse_gml(text, "t.gml", None, &EdgeOptions::default()).unwrap_err();
        assert_eq!(location(&e).0, Some(line), "{text:?}: {e}");
        assert!(e.to_string().contains(words), "{text:?}: {e}");
    }
    let e = parse_gml("Creator \"x\"\n", "t.gml", None, &EdgeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no `graph"), "{e}");
    let deep = "a [ ".repeat(100);
    assert!(parse_gml(&deep, "t.gml", None, &EdgeOptions::default()).is_err());
}

#[test]
fn planted_partition_is_seeded_symmetric_and_dense_inside_groups() {
    let p = planted_partition(4, 50, 0.3, 0.02, 7).unwrap();
    assert_eq!(p, planted_partition(4, 50, 0.3, 0.02, 7).unwrap());
    assert_ne!(p, planted_partition(4, 50, 0.3, 0.02, 8).unwrap());
    let g = p.graph();
    assert_eq!(g.n_nodes(), 200);
    assert_eq!(g.nodes()[199], 199);
    assert_symmetric(g);
    let labels = p.labels();
    assert_eq!(
        (labels[0], labels[49], labels[50], labels[199]),
        (0, 0, 1, 3)
    );
    let (mut inside, mut across) = (0.0, 0.0);
    for i in 0..200 {
        assert_eq!(g.adjacency()[[i, i]], 0.0);
        for j in 0..i {
            let a = f64::from(g.adjacency()[[i, j]]);
            if labels[i] == labels[j] {
                inside += a;
            } else {
                across += a;
            }
        }
    }
    let (pairs_in, pairs_out) = (4.0 * 50.0 * 49.0 / 2.0, 6.0 * 50.0 * 50.0);
    assert!(
        (inside / pairs_in - 0.3).abs() < 0.03,
        "{}",
        inside / pairs_in
    );
    assert!(
        (across / pairs_out - 0.02).abs() < 0.005,
        "{}",
        across / pairs_out
    );
    for (k, size, pin, pout) in [
        (0, 5, 0.5, 0.1),
        (2, 0, 0.5, 0.1),
        (2, 5, 1.5, 0.1),
        (2, 5, 0.5, f64::NAN),
    ] {
        let e = planted_partition(k, size, pin, pout, 0).unwrap_err();
        assert!(matches!(e, NmfError::InvalidParameter { .. }), "{e}");
    }
}

/// `../shared/data/<rel>`, or `None` with a printed reason when the shared data are absent.
fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} not found (the shared data sets are absent)",
            p.display()
        );
        None
    }
}

#[test]
fn karate_edge_list() {
    let Some(path) = shared("karate/karate_edges.txt") else {
        return;
    };
    let g = read_edge_list(&path).unwrap();
    assert_eq!(g.n_nodes(), 34);
    assert_eq!(g.nodes(), (1..=34).collect::<Vec<i64>>().as_slice());
    assert_eq!(g.n_edges(), 78);
    assert_eq!(g.adjacency()[[0, 1]], 4.0); // "1 2 4"
    assert_symmetric(&g);
    // The Kolaczyk copy has CRLF line endings and the same edges.
    if let Some(crlf) = shared("karate/zachary.txt") {
        assert_eq!(read_edge_list(crlf).unwrap(), g);
    }
}

#[test]
fn football_gml() {
    let Some(path) = shared("football/football.gml") else {
        return;
    };
    let g = read_gml(&path, Some("value")).unwrap();
    assert_eq!(g.graph().n_nodes(), 115);
    assert_eq!(g.graph().n_edges(), 613);
    assert_symmetric(g.graph());
    let labels = g.attribute_labels().unwrap();
    assert_eq!(labels.iter().max(), Some(&11));
    assert_eq!(labels[0], 7); // BrighamYoung, value 7
    assert_eq!(labels[1], 0); // FloridaState, value 0
}

// ---------------------------------------------------------------------------------------------
// Bounded lines

/// `err` is `LineTooLong` for `path` at `line`.
fn assert_line_too_long(err: NmfError, path: &Path, line: usize) {
    match &err {
        NmfError::LineTooLong {
            path: p, line: l, ..
        } => assert_eq!((p.as_path(), *l), (path, line), "{err}"),
        other => panic!("expected LineTooLong, got {other:?}"),
    }
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn over_long_lines_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let tight = EdgeOptions::default().max_line_bytes(100);
    let edges = dir.path().join("g.edges");
    std::fs::write(&edges, format!("1 2\n2 3 # {}\n", "x".repeat(200))).unwrap();
    assert_line_too_long(
        nmf_gpu::graph::read_edge_list_with(&edges, &tight).unwrap_err(),
        &edges,
        2,
    );
    // The default bound reads it.
    assert!(read_edge_list(&edges).is_ok());

    let gml = dir.path().join("g.gml");
    std::fs::write(
        &gml,
        format!(
            "graph [\n node [ id 1 ]\n node [ id 2 label \"{}\" ]\n edge [ source 1 target 2 ]\n]\n",
            "x".repeat(200)
        ),
    )
    .unwrap();
    assert_line_too_long(
        nmf_gpu::graph::read_gml_with(&gml, None, &tight).unwrap_err(),
        &gml,
        3,
    );
    assert_eq!(read_gml(&gml, None).unwrap().graph().n_nodes(), 2);
}

#[cfg(unix)]
#[test]
fn links_to_dev_zero_fail_quickly() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        eprintln!("skipped: no /dev/zero");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let edges = dir.path().join("zero.edges");
    let gml = dir.path().join("zero.gml");
    std::os::unix::fs::symlink(zero, &edges).unwrap();
    std::os::unix::fs::symlink(zero, &gml).unwrap();
    assert_line_too_long(read_edge_list(&edges).unwrap_err(), &edges, 1);
    assert_line_too_long(read_gml(&gml, None).unwrap_err(), &gml, 1);
}
