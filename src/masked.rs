//! Masked NMF for matrices with missing entries (recommendation): minimise ‖M ⊙ (V − WH)‖².
