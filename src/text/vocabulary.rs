//! Vocabularies and term x document count matrices.

use std::collections::HashMap;

use ndarray::Array2;

use super::stop_words::StopWords;
use super::tokenize::{for_each_token, MIN_TOKEN_CHARS};
use crate::error::{NmfError, Result};

/// A document-frequency threshold for [`VocabularyOptions::min_df`] and
/// [`VocabularyOptions::max_df`]. The document frequency `df(t)` of a term is the number of
/// documents that contain it at least once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DocFrequency {
    /// A number of documents.
    Documents(usize),
    /// A fraction in `[0, 1]` of the `n` documents: the threshold is `fraction · n` documents
    /// (not rounded, so `min_df = Fraction(0.5)` of 5 documents keeps terms in at least 3).
    Fraction(f64),
}

impl DocFrequency {
    /// The threshold in documents, for a corpus of `n_docs` documents.
    fn documents(self, n_docs: usize) -> f64 {
        match self {
            DocFrequency::Documents(d) => d as f64,
            DocFrequency::Fraction(f) => f * n_docs as f64,
        }
    }

    fn check(self, name: &'static str) -> Result<()> {
        match self {
            DocFrequency::Fraction(f) if !(0.0..=1.0).contains(&f) => {
                Err(NmfError::InvalidParameter {
                    name,
                    value: format!("Fraction({f})"),
                    expected: "a fraction of the documents must lie in [0, 1]; use \
                               DocFrequency::Documents for a number of documents"
                        .to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for DocFrequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocFrequency::Documents(d) => write!(f, "{d} documents"),
            DocFrequency::Fraction(x) => write!(f, "a fraction {x:?} of the documents"),
        }
    }
}

/// How many terms the vocabulary keeps after the document-frequency filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxFeatures {
    /// Every term that passes the filters.
    #[default]
    All,
    /// The terms with the largest total count over the corpus; ties go to the term that sorts
    /// first. Must be at least 1.
    MostFrequent(usize),
}

/// How [`count_terms`] builds its vocabulary, after scikit-learn's `CountVectorizer`.
///
/// Defaults: [`StopWords::English`], `min_df = Documents(1)`, `max_df = Fraction(1.0)` (no
/// document-frequency filter), [`MaxFeatures::All`].
#[derive(Debug, Clone, PartialEq)]
pub struct VocabularyOptions {
    stop_words: StopWords,
    min_df: DocFrequency,
    max_df: DocFrequency,
    max_features: MaxFeatures,
}

impl Default for VocabularyOptions {
    fn default() -> Self {
        VocabularyOptions {
            stop_words: StopWords::English,
            min_df: DocFrequency::Documents(1),
            max_df: DocFrequency::Fraction(1.0),
            max_features: MaxFeatures::All,
        }
    }
}

impl VocabularyOptions {
    /// The defaults (see [`VocabularyOptions`]).
    pub fn new() -> Self {
        Self::default()
    }

    crate::options::field_setters! {
        /// Tokens dropped before counting.
        stop_words: StopWords;
        /// Keep only terms in at least this many documents (drops rare terms and typos).
        min_df: DocFrequency;
        /// Keep only terms in at most this many documents (drops corpus-specific stop words).
        max_df: DocFrequency;
        /// Cap the number of terms, applied after the document-frequency filters.
        max_features: MaxFeatures;
    }
    /// The stop words.
    pub fn stop_word_list(&self) -> &StopWords {
        &self.stop_words
    }
    /// The lower document-frequency bound.
    pub fn min_df_bound(&self) -> DocFrequency {
        self.min_df
    }
    /// The upper document-frequency bound.
    pub fn max_df_bound(&self) -> DocFrequency {
        self.max_df
    }
    /// The cap on the number of terms.
    pub fn max_feature_count(&self) -> MaxFeatures {
        self.max_features
    }

    fn check(&self) -> Result<()> {
        self.min_df.check("min_df")?;
        self.max_df.check("max_df")?;
        if self.max_features == MaxFeatures::MostFrequent(0) {
            return Err(NmfError::InvalidParameter {
                name: "max_features",
                value: "MostFrequent(0)".to_string(),
                expected: "at least 1 term; use MaxFeatures::All for no cap".to_string(),
            });
        }
        Ok(())
    }
}

/// The terms of a term x document matrix: term `i` names row `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    terms: Vec<String>,
    index: HashMap<String, usize>,
}

impl Vocabulary {
    /// A vocabulary of the given terms, in the given order (term `i` names row `i`). A term
    /// that appears twice is an [`NmfError::InvalidParameter`] naming it and both positions.
    pub fn from_terms<I, S>(terms: I) -> Result<Vocabulary>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let terms: Vec<String> = terms.into_iter().map(Into::into).collect();
        let mut index = HashMap::with_capacity(terms.len());
        for (i, t) in terms.iter().enumerate() {
            if let Some(first) = index.insert(t.clone(), i) {
                return Err(NmfError::InvalidParameter {
                    name: "terms",
                    value: format!("{t:?}"),
                    expected: format!(
                        "each term once, but it is both term {first} and term {i} (0-based)"
                    ),
                });
            }
        }
        Ok(Vocabulary { terms, index })
    }

    /// The terms; row `i` of the count matrix counts `terms()[i]`.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }
    /// The number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }
    /// Whether there are no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
    /// The row of `term`, if it is in the vocabulary.
    pub fn index_of(&self, term: &str) -> Option<usize> {
        self.index.get(term).copied()
    }
    /// The term of row `i`.
    pub fn term(&self, i: usize) -> Option<&str> {
        self.terms.get(i).map(String::as_str)
    }

    /// Count the terms of this vocabulary in new documents: a `len() x texts.len()` matrix,
    /// `C[i, j]` = occurrences of term `i` among the tokens of `texts[j]` ([`tokenize`](super::tokenize)).
    /// Tokens not in the vocabulary are ignored. Use it to encode documents with a vocabulary
    /// built by [`count_terms`], then [`TfIdf::transform`](super::TfIdf::transform) and
    /// [`Factorization::transform`](crate::Factorization::transform).
    ///
    /// Errors: [`NmfError::CountMatrixTooLarge`] when the matrix would not fit in
    /// [`default_max_bytes`](crate::io::default_max_bytes).
    pub fn count_matrix<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>> {
        let mut counts = allocate(self.len(), texts.len())?;
        for (j, text) in texts.iter().enumerate() {
            for_each_token(text.as_ref(), |token| {
                if let Some(&i) = self.index.get(&token) {
                    counts[[i, j]] += 1.0;
                }
            });
        }
        Ok(counts)
    }
}

/// A zero `terms x documents` matrix, refused when larger than the input limit.
fn allocate(terms: usize, documents: usize) -> Result<Array2<f32>> {
    let bytes = terms as u128 * documents as u128 * 4;
    let limit = crate::io::default_max_bytes();
    if bytes > u128::from(limit) {
        return Err(NmfError::CountMatrixTooLarge {
            terms,
            documents,
            bytes,
            limit,
        });
    }
    Ok(Array2::zeros((terms, documents)))
}

/// Tokenize `texts`, build a vocabulary and count: returns the vocabulary (sorted, byte order)
/// and the `terms x documents` count matrix `C`, `C[i, j]` = occurrences of term `i` in
/// `texts[j]` (f32, exact up to 2²⁴).
///
/// Steps, as scikit-learn's `CountVectorizer`:
/// 1. [`tokenize`](super::tokenize) each text and drop the stop words;
/// 2. keep the terms `t` with `min_df ≤ df(t) ≤ max_df` (thresholds in documents, see
///    [`DocFrequency`]);
/// 3. keep the [`MaxFeatures`] terms of largest total count (ties: the term that sorts first);
/// 4. sort the terms (byte order of their UTF-8, the order of `str`), count.
///
/// A document without any kept term gives a zero column.
///
/// Errors: [`NmfError::InvalidParameter`] for a fraction outside `[0, 1]`,
/// `MostFrequent(0)`, or `max_df` below `min_df`; [`NmfError::NoTerms`] when no documents are
/// given, when they hold no token, when every token is a stop word, or when the
/// document-frequency bounds keep no term (the message says which); and
/// [`NmfError::CountMatrixTooLarge`].
pub fn count_terms<S: AsRef<str>>(
    texts: &[S],
    options: &VocabularyOptions,
) -> Result<(Vocabulary, Array2<f32>)> {
    count_terms_described(texts, options, || format!("the {} documents", texts.len()))
}

/// [`count_terms`], with the documents described in words for [`NmfError::NoTerms`].
pub(crate) fn count_terms_described<S: AsRef<str>>(
    texts: &[S],
    options: &VocabularyOptions,
    what: impl Fn() -> String,
) -> Result<(Vocabulary, Array2<f32>)> {
    options.check()?;
    let n_docs = texts.len();
    let no_terms = |reason: String| NmfError::NoTerms {
        what: what(),
        reason,
    };
    if n_docs == 0 {
        return Err(no_terms("there are no documents".to_string()));
    }
    let (min_docs, max_docs) = (
        options.min_df.documents(n_docs),
        options.max_df.documents(n_docs),
    );
    if min_docs > n_docs as f64 {
        return Err(NmfError::InvalidParameter {
            name: "min_df",
            value: options.min_df.to_string(),
            expected: format!(
                "at most the number of documents, {n_docs}; no term can be in more documents \
                 than there are"
            ),
        });
    }
    if max_docs < min_docs {
        return Err(NmfError::InvalidParameter {
            name: "max_df",
            value: options.max_df.to_string(),
            expected: format!(
                "at least min_df ({}); with {n_docs} documents max_df allows {max_docs} \
                 documents and min_df requires {min_docs}",
                options.min_df
            ),
        });
    }

    // Pass 1: provisional ids in order of first appearance, with document frequencies and
    // total counts. `last_doc` marks the last document that counted a term's df.
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut df: Vec<usize> = Vec::new();
    let mut total: Vec<u64> = Vec::new();
    let mut last_doc: Vec<usize> = Vec::new();
    let mut docs: Vec<Vec<usize>> = Vec::with_capacity(n_docs);
    let (mut tokens, mut stopped) = (0usize, 0usize);
    for (j, text) in texts.iter().enumerate() {
        let mut doc = Vec::new();
        for_each_token(text.as_ref(), |token| {
            tokens += 1;
            if options.stop_words.contains(&token) {
                stopped += 1;
                return;
            }
            let next = df.len();
            let id = *ids.entry(token).or_insert(next);
            if id == next {
                df.push(0);
                total.push(0);
                last_doc.push(usize::MAX);
            }
            if last_doc[id] != j {
                last_doc[id] = j;
                df[id] += 1;
            }
            total[id] += 1;
            doc.push(id);
        });
        docs.push(doc);
    }
    if tokens == 0 {
        return Err(no_terms(format!(
            "they hold no word of at least {MIN_TOKEN_CHARS} letters or digits that is not a number"
        )));
    }
    if ids.is_empty() {
        return Err(no_terms(format!(
            "all their {stopped} words are stop words; use StopWords::None or a shorter custom list"
        )));
    }

    let mut kept: Vec<(String, usize)> = ids
        .into_iter()
        .filter(|&(_, id)| {
            let d = df[id] as f64;
            d >= min_docs && d <= max_docs
        })
        .collect();
    if kept.is_empty() {
        let lo = df.iter().min().copied().unwrap_or(0);
        let hi = df.iter().max().copied().unwrap_or(0);
        return Err(no_terms(format!(
            "min_df = {} and max_df = {} keep none of the {} distinct terms (their document \
             frequencies range from {lo} to {hi} of {n_docs} documents); lower min_df or raise max_df",
            options.min_df,
            options.max_df,
            df.len()
        )));
    }
    if let MaxFeatures::MostFrequent(cap) = options.max_features {
        if kept.len() > cap {
            kept.sort_unstable_by(|(a, ia), (b, ib)| total[*ib].cmp(&total[*ia]).then(a.cmp(b)));
            kept.truncate(cap);
        }
    }
    kept.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));

    // Provisional id -> row.
    let mut row = vec![usize::MAX; df.len()];
    for (i, (_, id)) in kept.iter().enumerate() {
        row[*id] = i;
    }
    let mut counts = allocate(kept.len(), n_docs)?;
    for (j, doc) in docs.iter().enumerate() {
        for &id in doc {
            let i = row[id];
            if i != usize::MAX {
                counts[[i, j]] += 1.0;
            }
        }
    }
    let vocabulary = Vocabulary::from_terms(kept.into_iter().map(|(t, _)| t))?;
    Ok((vocabulary, counts))
}
