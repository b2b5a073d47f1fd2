//! Text helpers for topic models: tokenising, stop words, term x document counts, tf-idf,
//! top terms.
//!
//! A corpus of `n` documents becomes the `m x n` count matrix `C` (terms as rows, documents as
//! columns, the layout of `V`), then the tf-idf matrix `X` that NMF factorizes into topics:
//!
//! ```text
//!   X ≈ W H     W: m x r, column t = the term weights of topic t
//!               H: r x n, column j = the topic weights of document j
//! ```
//!
//! - [`tokenize`]: lowercase, Unicode-aware words of at least 2 characters, numbers dropped;
//! - [`ENGLISH_STOP_WORDS`], [`StopWords`]: words dropped before counting;
//! - [`count_terms`] with [`VocabularyOptions`] (`min_df`, `max_df`, `max_features`): the
//!   [`Vocabulary`] and the count matrix; [`Vocabulary::count_matrix`] counts new documents;
//! - [`tfidf`], [`TfIdf`]: scikit-learn's `TfidfTransformer` (smooth idf, l2-normalised columns);
//! - [`top_terms`]: the strongest terms of each topic; [`doc_topics`]: each document's topic;
//! - [`read_text_dir`] (a directory of `.txt` files) and [`read_term_document`] (a MatrixMarket
//!   or other matrix file with a terms file, one term per line) give a [`Corpus`];
//! - [`synthetic_corpus`]: documents drawn from five known topics, to try it all without data.
//!
//! ```
//! use nmf_gpu::text::{self, TermFrequency, VocabularyOptions};
//! use nmf_gpu::{Init, Nmf, Solver};
//!
//! let corpus = text::synthetic_corpus(20, 1); // 100 documents on 5 topics
//! let (vocabulary, counts) = text::count_terms(corpus.texts(), &VocabularyOptions::new())?;
//! let x = text::tfidf(counts.view(), TermFrequency::Raw)?;
//! let fit = Nmf::params(5)
//!     .solver(Solver::Hals)
//!     .init(Init::Nndsvd)
//!     .max_iter(200)
//!     .fit(x.view())?;
//! let topics = text::top_terms(fit.w(), vocabulary.terms(), 8)?;
//! assert_eq!(topics.len(), 5);
//! let assigned = text::doc_topics(fit.h());
//! assert_eq!(assigned.len(), 100);
//! # Ok::<(), nmf_gpu::NmfError>(())
//! ```

mod files;
mod stop_words;
mod synthetic;
mod tfidf;
mod tokenize;
mod vocabulary;

use ndarray::ArrayView2;

use crate::error::{Factor, NmfError, Result};

pub use files::{
    read_term_document, read_terms, read_terms_with, read_text_dir, read_text_files, Corpus,
    InvalidUtf8, Orientation, Recursion, TextDirOptions, TextFile,
};
pub use stop_words::{is_english_stop_word, StopWords, ENGLISH_STOP_WORDS};
pub use synthetic::{synthetic_corpus, SyntheticCorpus, SYNTHETIC_TOPICS};
pub use tfidf::{tfidf, TermFrequency, TfIdf};
pub use tokenize::{tokenize, MIN_TOKEN_CHARS};
pub use vocabulary::{count_terms, DocFrequency, MaxFeatures, Vocabulary, VocabularyOptions};

/// The `k` strongest terms of each topic: for each column `t` of `W` (terms x topics), the
/// terms of the `k` largest entries `W[i, t]`, strongest first.
///
/// Ties are broken by row: of two terms with the same weight, the one of the lower row
/// (earlier in `terms`, alphabetically first for a vocabulary built by [`count_terms`]) comes
/// first, so the result does not depend on sort stability or threads. Terms of weight 0 are
/// never listed: a topic with fewer than `k` nonzero weights lists fewer terms (NNDSVD + HALS
/// give sparse topics). `k` larger than the number of terms lists every term of nonzero weight.
///
/// Errors: [`NmfError::ShapeMismatch`] when `W` does not have one row per term,
/// [`NmfError::InvalidFactorEntry`] for a negative or non-finite weight.
pub fn top_terms<S: AsRef<str>>(
    w: ArrayView2<'_, f32>,
    terms: &[S],
    k: usize,
) -> Result<Vec<Vec<String>>> {
    if w.nrows() != terms.len() {
        return Err(NmfError::ShapeMismatch {
            what: "W for top_terms (terms x topics)",
            expected: format!("{} rows, one per term", terms.len()),
            found: format!("{} x {}", w.nrows(), w.ncols()),
        });
    }
    if let Some(((row, col), &value)) = w.indexed_iter().find(|(_, &x)| !x.is_finite() || x < 0.0) {
        return Err(NmfError::InvalidFactorEntry {
            factor: Factor::W,
            row,
            col,
            value,
        });
    }
    Ok(w.columns()
        .into_iter()
        .map(|col| {
            let mut rows: Vec<usize> = (0..col.len()).filter(|&i| col[i] > 0.0).collect();
            let by_weight = |&a: &usize, &b: &usize| col[b].total_cmp(&col[a]).then(a.cmp(&b));
            if rows.len() > k {
                if k > 0 {
                    rows.select_nth_unstable_by(k - 1, by_weight);
                }
                rows.truncate(k);
            }
            rows.sort_unstable_by(by_weight);
            rows.into_iter()
                .map(|i| terms[i].as_ref().to_string())
                .collect()
        })
        .collect())
}

/// The topic of each document: `argmax_t H[t, j]` for each column `j` of `H` (topics x
/// documents), the same as [`cluster::labels_from_columns`](crate::cluster::labels_from_columns).
/// Ties (a document with no counted term has an all-zero column) go to the lowest topic; NaN
/// entries never win; an `H` without rows gives topic 0 everywhere.
pub fn doc_topics(h: ArrayView2<'_, f32>) -> Vec<usize> {
    crate::cluster::labels_from_columns(h)
}
