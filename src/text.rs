//! Text helpers for topic models: tokenising, stop words, term-document counts, tf-idf, top terms.
