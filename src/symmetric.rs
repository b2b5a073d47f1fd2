//! Symmetric NMF for graphs and similarity matrices: A ≈ H Hᵀ and the tri-factorization A ≈ H S Hᵀ.
