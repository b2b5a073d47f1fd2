//! Clustering from factorizations: labels from H, and purity, NMI and ARI against known labels.
