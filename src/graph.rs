//! Graphs for symmetric NMF: edge-list and GML readers, adjacency matrices, planted-partition generators.
