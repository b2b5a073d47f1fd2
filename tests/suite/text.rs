//! `nmf_gpu::text`: tokenizer, stop words, vocabulary options, counts and tf-idf (against
//! hand-computed and scikit-learn values), top terms, reading corpora from files, and topics
//! recovered from the generated corpus.

use std::fs;
use std::path::Path;

use nmf_gpu::ndarray::{array, Array2};
use nmf_gpu::text::{
    self, count_terms, doc_topics, read_term_document, read_terms, read_text_dir, read_text_files,
    tfidf, tokenize, top_terms, DocFrequency, InvalidUtf8, MaxFeatures, Orientation, Recursion,
    StopWords, TermFrequency, TextDirOptions, TfIdf, Vocabulary, VocabularyOptions,
    ENGLISH_STOP_WORDS,
};
use nmf_gpu::{Backend, Init, Nmf, NmfError, Solver};

fn assert_close(found: &Array2<f32>, expected: &Array2<f64>, tol: f64) {
    assert_eq!(found.dim(), expected.dim());
    for ((idx, &f), &e) in found.indexed_iter().zip(expected.iter()) {
        assert!(
            (f64::from(f) - e).abs() <= tol,
            "at {idx:?}: {f} vs expected {e}\n{found}"
        );
    }
}

fn no_stop_words() -> VocabularyOptions {
    VocabularyOptions::new().stop_words(StopWords::None)
}

// ---------------------------------------------------------------- tokenizer

#[test]
fn tokenizer_lowercases_unicode_words() {
    assert_eq!(
        tokenize("Größe STRASSE Straße ÉCOLE naïve Москва Ελλάδα 東京"),
        [
            "größe",
            "strasse",
            "straße",
            "école",
            "naïve",
            "москва",
            "ελλάδα",
            "東京"
        ]
    );
    // Decomposed accents (e + U+0301) stay inside the word.
    assert_eq!(tokenize("Cafe\u{301}!"), ["cafe\u{301}"]);
}

#[test]
fn tokenizer_splits_on_punctuation_and_symbols() {
    assert_eq!(
        tokenize("Hello, world! It's state-of-the-art (really)... e-mail: bob@example.com #tag"),
        [
            "hello", "world", "it", "state", "of", "the", "art", "really", "mail", "bob",
            "example", "com", "tag"
        ]
    );
    assert_eq!(
        tokenize("« guillemets » — dash…ellipsis 🙂emoji"),
        ["guillemets", "dash", "ellipsis", "emoji"]
    );
    assert!(tokenize("").is_empty());
    assert!(tokenize(" ,.;!? \n\t").is_empty());
}

#[test]
fn tokenizer_keeps_underscores_in_words_like_python_w() {
    assert_eq!(
        tokenize("snake_case vs camelCase, __dunder__ and _x"),
        ["snake_case", "vs", "camelcase", "__dunder__", "and", "_x"]
    );
}

#[test]
fn tokenizer_drops_numbers_and_short_tokens() {
    assert_eq!(
        tokenize("In 2024, 3.14 and 1,000 people bought 2 mp3 players; ٣٤ 3D x"),
        ["in", "and", "people", "bought", "mp3", "players", "3d"]
    );
    // Length is counted in characters, not bytes: "é" (2 bytes) is dropped, "éé" kept; one
    // CJK character is dropped too.
    assert_eq!(tokenize("a é éé 東 ab"), ["éé", "ab"]);
}

// ---------------------------------------------------------------- stop words

#[test]
fn english_stop_words_are_documented_size_sorted_and_removed() {
    assert_eq!(ENGLISH_STOP_WORDS.len(), 295);
    assert!(ENGLISH_STOP_WORDS.windows(2).all(|p| p[0] < p[1]));
    for w in ["the", "and", "of", "because", "yourselves", "whereupon"] {
        assert!(text::is_english_stop_word(w), "{w}");
    }
    // Content words of scikit-learn's list that this list leaves out.
    for w in ["interest", "system", "bill", "fire", "computer", "market"] {
        assert!(!text::is_english_stop_word(w), "{w}");
    }

    let docs = ["The cat and the dog", "A cat of the house"];
    let (vocab, _) = count_terms(&docs, &VocabularyOptions::new()).unwrap();
    assert_eq!(vocab.terms(), ["cat", "dog", "house"]);
    let (vocab, _) = count_terms(&docs, &no_stop_words()).unwrap();
    assert_eq!(vocab.terms(), ["and", "cat", "dog", "house", "of", "the"]);
    let custom = VocabularyOptions::new().stop_words(StopWords::custom(["CAT", "The"]));
    let (vocab, _) = count_terms(&docs, &custom).unwrap();
    assert_eq!(vocab.terms(), ["and", "dog", "house", "of"]);
    let more = VocabularyOptions::new().stop_words(StopWords::english_and(["House"]));
    let (vocab, _) = count_terms(&docs, &more).unwrap();
    assert_eq!(vocab.terms(), ["cat", "dog"]);
}

// ---------------------------------------------------------------- vocabulary and counts

/// The corpus of the scikit-learn reference values below.
const SKLEARN_DOCS: [&str; 3] = [
    "The cat sat on the mat; the cat slept.",
    "A dog chased the cat. The dog barked!",
    "Dogs and cats sleep on mats.",
];

#[test]
fn counts_match_scikit_learn_count_vectorizer() {
    // scikit-learn 1.9.1, CountVectorizer() (lowercase, token pattern (?u)\b\w\w+\b, no stop
    // words) on SKLEARN_DOCS: get_feature_names_out() and fit_transform(...).T.
    let (vocab, counts) = count_terms(&SKLEARN_DOCS, &no_stop_words()).unwrap();
    assert_eq!(
        vocab.terms(),
        [
            "and", "barked", "cat", "cats", "chased", "dog", "dogs", "mat", "mats", "on", "sat",
            "sleep", "slept", "the"
        ]
    );
    let expected = array![
        [0., 0., 1.],
        [0., 1., 0.],
        [2., 1., 0.],
        [0., 0., 1.],
        [0., 1., 0.],
        [0., 2., 0.],
        [0., 0., 1.],
        [1., 0., 0.],
        [0., 0., 1.],
        [1., 0., 1.],
        [1., 0., 0.],
        [0., 0., 1.],
        [1., 0., 0.],
        [3., 2., 0.]
    ];
    assert_eq!(counts, expected);
    assert_eq!(vocab.index_of("dog"), Some(5));
    assert_eq!(vocab.term(13), Some("the"));
    assert_eq!(vocab.index_of("bird"), None);
}

#[test]
fn vocabulary_document_frequency_bounds() {
    // df: apple 4, banana 3, cherry 2, date 1 (of 4 documents).
    let docs = [
        "apple banana cherry date",
        "apple banana cherry",
        "apple banana",
        "apple",
    ];
    let terms = |o: VocabularyOptions| count_terms(&docs, &o).unwrap().0.terms().to_vec();
    assert_eq!(
        terms(no_stop_words().min_df(DocFrequency::Documents(2))),
        ["apple", "banana", "cherry"]
    );
    // 0.5 of 4 documents = 2.
    assert_eq!(
        terms(no_stop_words().min_df(DocFrequency::Fraction(0.5))),
        ["apple", "banana", "cherry"]
    );
    // max_df 0.75 of 4 = 3 documents: apple (4) goes.
    assert_eq!(
        terms(no_stop_words().max_df(DocFrequency::Fraction(0.75))),
        ["banana", "cherry", "date"]
    );
    assert_eq!(
        terms(
            no_stop_words()
                .min_df(DocFrequency::Documents(2))
                .max_df(DocFrequency::Documents(3))
        ),
        ["banana", "cherry"]
    );
}

#[test]
fn vocabulary_max_features_keeps_most_frequent_with_alphabetical_ties() {
    // Totals: zeta 3, beta 2, alpha 2, gamma 1.
    let docs = ["zeta zeta beta", "alpha zeta", "alpha beta gamma"];
    let o = no_stop_words().max_features(MaxFeatures::MostFrequent(2));
    let (vocab, counts) = count_terms(&docs, &o).unwrap();
    // zeta, then alpha before beta on the tie; the vocabulary is then sorted.
    assert_eq!(vocab.terms(), ["alpha", "zeta"]);
    assert_eq!(counts, array![[0., 1., 1.], [2., 1., 0.]]);
    let o = no_stop_words().max_features(MaxFeatures::MostFrequent(100));
    assert_eq!(count_terms(&docs, &o).unwrap().0.len(), 4);
}

#[test]
fn vocabulary_option_errors() {
    let docs = ["apple banana", "banana cherry"];
    let invalid = |o: VocabularyOptions, name: &str| match count_terms(&docs, &o) {
        Err(NmfError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected InvalidParameter for {name}, got {other:?}"),
    };
    invalid(
        no_stop_words().min_df(DocFrequency::Fraction(1.5)),
        "min_df",
    );
    invalid(
        no_stop_words().max_df(DocFrequency::Fraction(-0.1)),
        "max_df",
    );
    invalid(
        no_stop_words().max_df(DocFrequency::Fraction(f64::NAN)),
        "max_df",
    );
    invalid(
        no_stop_words().max_features(MaxFeatures::MostFrequent(0)),
        "max_features",
    );
    invalid(
        no_stop_words()
            .min_df(DocFrequency::Documents(2))
            .max_df(DocFrequency::Documents(1)),
        "max_df",
    );
    invalid(no_stop_words().min_df(DocFrequency::Documents(3)), "min_df");
    // Bounds that keep nothing: a NoTerms error that says what to change.
    let err = count_terms(
        &["apple", "cherry"],
        &no_stop_words().min_df(DocFrequency::Documents(2)),
    )
    .unwrap_err();
    assert!(matches!(err, NmfError::NoTerms { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("min_df") && msg.contains("lower min_df"),
        "{msg}"
    );
}

#[test]
fn no_tokens_and_only_stop_words_are_errors() {
    let err = count_terms(&["123 4.5 !!", "a b c"], &VocabularyOptions::new()).unwrap_err();
    assert!(matches!(err, NmfError::NoTerms { .. }), "{err:?}");
    assert!(err.to_string().contains("no word"), "{err}");
    let err = count_terms(&["the and of", "it is"], &VocabularyOptions::new()).unwrap_err();
    assert!(err.to_string().contains("stop words"), "{err}");
    let none: [&str; 0] = [];
    let err = count_terms(&none, &VocabularyOptions::new()).unwrap_err();
    assert!(err.to_string().contains("no documents"), "{err}");
    // One empty document among others is a zero column, not an error.
    let (_, counts) = count_terms(&["word here", "", "123"], &VocabularyOptions::new()).unwrap();
    assert_eq!(counts.column(1).sum(), 0.0);
    assert_eq!(counts.column(2).sum(), 0.0);
}

#[test]
fn vocabulary_counts_new_documents() {
    let vocab = Vocabulary::from_terms(["cat", "dog"]).unwrap();
    let counts = vocab
        .count_matrix(&["Cat, cat and DOG", "bird", "dog dog dogs"])
        .unwrap();
    assert_eq!(counts, array![[2., 0., 0.], [1., 0., 2.]]);
    assert!(matches!(
        Vocabulary::from_terms(["cat", "dog", "cat"]),
        Err(NmfError::InvalidParameter { .. })
    ));
}

// ---------------------------------------------------------------- tf-idf

#[test]
fn tfidf_matches_hand_computation() {
    // 3 terms x 3 documents. df = (2, 2, 1), n = 3:
    //   idf_a = idf_b = ln(4/3) + 1,  idf_c = ln(4/2) + 1.
    let c = array![[2.0f32, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 4.0]];
    let a = (4.0f64 / 3.0).ln() + 1.0;
    let cc = 2.0f64.ln() + 1.0;
    let model = TfIdf::fit(c.view(), TermFrequency::Raw).unwrap();
    let idf: Vec<f64> = model.idf().iter().map(|&x| f64::from(x)).collect();
    for (found, want) in idf.iter().zip([a, a, cc]) {
        assert!((found - want).abs() < 1e-6, "{idf:?}");
    }
    // Column 0: (2a, a, 0) / (√5 a); column 1: (0, a, 0) / a; column 2: (a, 0, 4c) / ‖·‖.
    let n2 = (a * a + 16.0 * cc * cc).sqrt();
    let s5 = 5.0f64.sqrt();
    let expected = array![
        [2.0 / s5, 0.0, a / n2],
        [1.0 / s5, 1.0, 0.0],
        [0.0, 0.0, 4.0 * cc / n2]
    ];
    assert_close(
        &tfidf(c.view(), TermFrequency::Raw).unwrap(),
        &expected,
        1e-6,
    );

    // Sublinear: tf = 1 + ln(count): column 0 becomes ((1 + ln 2) a, a, 0).
    let t2 = 1.0 + 2.0f64.ln();
    let t4 = 1.0 + 4.0f64.ln();
    let n0 = (t2 * t2 * a * a + a * a).sqrt();
    let n2 = (a * a + t4 * t4 * cc * cc).sqrt();
    let expected = array![
        [t2 * a / n0, 0.0, a / n2],
        [a / n0, 1.0, 0.0],
        [0.0, 0.0, t4 * cc / n2]
    ];
    assert_close(
        &tfidf(c.view(), TermFrequency::Sublinear).unwrap(),
        &expected,
        1e-6,
    );
}

#[test]
fn tfidf_matches_scikit_learn() {
    let (_, counts) = count_terms(&SKLEARN_DOCS, &no_stop_words()).unwrap();
    // scikit-learn 1.9.1: TfidfTransformer().fit_transform(X).toarray().T with X the counts of
    // CountVectorizer() on SKLEARN_DOCS (rows: the 14 terms of
    // counts_match_scikit_learn_count_vectorizer).
    let raw = array![
        [0., 0., 0.423394483],
        [0., 0.335351567, 0.],
        [0.456593315, 0.25504351, 0.],
        [0., 0., 0.423394483],
        [0., 0.335351567, 0.],
        [0., 0.670703133, 0.],
        [0., 0., 0.423394483],
        [0.30018267, 0., 0.],
        [0., 0., 0.423394483],
        [0.228296658, 0., 0.322002418],
        [0.30018267, 0., 0.],
        [0., 0., 0.423394483],
        [0.30018267, 0., 0.],
        [0.684889973, 0.510087021, 0.]
    ];
    assert_close(
        &tfidf(counts.view(), TermFrequency::Raw).unwrap(),
        &raw,
        2e-7,
    );
    // The same with TfidfTransformer(sublinear_tf=True).
    let sublinear = array![
        [0., 0., 0.423394483],
        [0., 0.375206868, 0.],
        [0.461540836, 0.285354494, 0.],
        [0., 0., 0.423394483],
        [0., 0.375206868, 0.],
        [0., 0.63528045, 0.],
        [0., 0., 0.423394483],
        [0.358427632, 0., 0.],
        [0., 0., 0.423394483],
        [0.272593453, 0., 0.322002418],
        [0.358427632, 0., 0.],
        [0., 0., 0.423394483],
        [0.358427632, 0., 0.],
        [0.57206797, 0.483147157, 0.]
    ];
    assert_close(
        &tfidf(counts.view(), TermFrequency::Sublinear).unwrap(),
        &sublinear,
        2e-7,
    );
    // idf_: 1.693147181 (ln 2 + 1) for terms in one document, 1.287682072 in two.
    let model = TfIdf::fit(counts.view(), TermFrequency::Raw).unwrap();
    assert!((f64::from(model.idf()[0]) - 1.693_147_181).abs() < 1e-6);
    assert!((f64::from(model.idf()[2]) - 1.287_682_072).abs() < 1e-6);
}

#[test]
fn tfidf_edge_cases_and_errors() {
    // A document without counts stays zero; the others have unit norm.
    let x = tfidf(array![[1.0f32, 0.0], [3.0, 0.0]].view(), TermFrequency::Raw).unwrap();
    assert_eq!(x.column(1).sum(), 0.0);
    assert!((x.column(0).mapv(|v| v * v).sum() - 1.0).abs() < 1e-6);

    let err = tfidf(array![[1.0f32, -1.0]].view(), TermFrequency::Raw).unwrap_err();
    assert!(
        matches!(err, NmfError::NegativeInput { row: 0, col: 1, .. }),
        "{err:?}"
    );
    let err = tfidf(array![[1.0f32], [f32::NAN]].view(), TermFrequency::Raw).unwrap_err();
    assert!(
        matches!(err, NmfError::NonFiniteInput { row: 1, col: 0, .. }),
        "{err:?}"
    );
    let empty = Array2::<f32>::zeros((0, 3));
    assert!(matches!(
        tfidf(empty.view(), TermFrequency::Raw),
        Err(NmfError::EmptyInput { .. })
    ));

    // New documents: same idf, rows must match.
    let model = TfIdf::fit(array![[1.0f32, 0.0], [1.0, 1.0]].view(), TermFrequency::Raw).unwrap();
    let new = model.transform(array![[2.0f32], [0.0]].view()).unwrap();
    assert_eq!(new, array![[1.0f32], [0.0]]);
    assert!(matches!(
        model.transform(array![[1.0f32, 2.0, 3.0]].view()),
        Err(NmfError::ShapeMismatch { .. })
    ));
}

// ---------------------------------------------------------------- top terms, doc topics

#[test]
fn top_terms_order_ties_and_zeros() {
    let terms = ["alpha", "beta", "gamma", "delta", "epsilon"];
    let w = array![
        [0.5f32, 0.0],
        [0.9, 0.0],
        [0.5, 0.0],
        [0.0, 0.1],
        [0.7, 0.0]
    ];
    let top = top_terms(w.view(), &terms, 3).unwrap();
    assert_eq!(top, vec![vec!["beta", "epsilon", "alpha"], vec!["delta"]]);
    // A tie at the cut goes to the lower row; zero weights are never listed.
    let top = top_terms(w.view(), &terms, 4).unwrap();
    assert_eq!(top[0], ["beta", "epsilon", "alpha", "gamma"]);
    let top = top_terms(w.view(), &terms, 100).unwrap();
    assert_eq!(top[0].len(), 4);
    assert_eq!(top[1], ["delta"]);
    assert_eq!(
        top_terms(w.view(), &terms, 0).unwrap(),
        vec![Vec::<String>::new(), vec![]]
    );
    // All-equal weights come out in row order, whatever k.
    let flat = Array2::<f32>::ones((5, 1));
    assert_eq!(
        top_terms(flat.view(), &terms, 3).unwrap()[0],
        ["alpha", "beta", "gamma"]
    );

    assert!(matches!(
        top_terms(w.view(), &terms[..4], 3),
        Err(NmfError::ShapeMismatch { .. })
    ));
    let mut bad = w.clone();
    bad[[2, 1]] = -1.0;
    assert!(matches!(
        top_terms(bad.view(), &terms, 3),
        Err(NmfError::InvalidFactorEntry { row: 2, col: 1, .. })
    ));
}

#[test]
fn doc_topics_is_argmax_per_column() {
    let h = array![
        [0.1f32, 0.0, 2.0, 0.0],
        [0.3, 0.0, 1.0, 0.5],
        [0.2, 0.0, 2.0, 0.1]
    ];
    assert_eq!(doc_topics(h.view()), [1, 0, 0, 1]);
}

// ---------------------------------------------------------------- generated corpus

#[test]
fn generated_corpus_recovers_its_topics() {
    let corpus = text::synthetic_corpus(40, 3);
    assert_eq!(corpus.texts().len(), 200);
    assert_eq!(
        text::synthetic_corpus(40, 3).texts(),
        corpus.texts(),
        "same seed, same corpus"
    );
    for (name, words) in text::SYNTHETIC_TOPICS {
        for w in words {
            assert!(!text::is_english_stop_word(w), "{name}: {w}");
            assert_eq!(tokenize(w), [w], "{name}: {w}");
        }
    }
    let options = VocabularyOptions::new()
        .min_df(DocFrequency::Documents(2))
        .max_df(DocFrequency::Fraction(0.95));
    let (vocab, counts) = count_terms(corpus.texts(), &options).unwrap();
    assert!(vocab.index_of("the").is_none() && vocab.index_of("people").is_some());
    let x = tfidf(counts.view(), TermFrequency::Raw).unwrap();
    let fit = Nmf::params(5)
        .solver(Solver::Hals)
        .init(Init::Nndsvd)
        .max_iter(300)
        .backend(Backend::Cpu)
        .fit(x.view())
        .unwrap();
    let assigned = doc_topics(fit.h());
    let purity = nmf_gpu::cluster::purity(&assigned, corpus.topics()).unwrap();
    assert!(purity >= 0.9, "purity {purity}");

    // Each found topic's top 5 terms all come from one generating topic, and the five found
    // topics cover the five generating ones.
    let top = top_terms(fit.w(), vocab.terms(), 5).unwrap();
    let mut covered = Vec::new();
    for terms in &top {
        let source = text::SYNTHETIC_TOPICS
            .iter()
            .position(|(_, words)| terms.iter().all(|t| words.contains(&t.as_str())));
        let source = source.unwrap_or_else(|| panic!("mixed topic {terms:?}\nall: {top:?}"));
        covered.push(source);
    }
    covered.sort_unstable();
    assert_eq!(covered, [0, 1, 2, 3, 4], "{top:?}");
}

// ---------------------------------------------------------------- files

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, contents).unwrap();
}

#[test]
fn text_directory_sorted_recursive_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("b/10.txt"), "Rockets and orbits");
    write(&d.join("b/2.txt"), "rockets, rockets!");
    write(&d.join("a.txt"), "\u{feff}Orbits of planets");
    write(&d.join("UPPER.TXT"), "planets");
    write(&d.join("notes.md"), "ignored markdown");
    write(&d.join(".hidden.txt"), "ignored hidden");
    write(&d.join(".git/x.txt"), "ignored hidden directory");

    let corpus = read_text_dir(d, &TextDirOptions::new(), &VocabularyOptions::new()).unwrap();
    assert_eq!(
        corpus.documents(),
        ["UPPER.TXT", "a.txt", "b/2.txt", "b/10.txt"]
    );
    assert_eq!(
        corpus.vocabulary().terms(),
        ["orbits", "planets", "rockets"]
    );
    assert_eq!(
        corpus.counts(),
        &array![[0., 1., 0., 1.], [1., 1., 0., 0.], [0., 0., 2., 1.]]
    );

    let top = TextDirOptions::new().recursion(Recursion::TopLevel);
    let corpus = read_text_dir(d, &top, &VocabularyOptions::new()).unwrap();
    assert_eq!(corpus.documents(), ["UPPER.TXT", "a.txt"]);

    let files = read_text_files(d, &top).unwrap();
    assert_eq!(
        files[1].text, "Orbits of planets",
        "the byte order mark is dropped"
    );
    assert_eq!(files[1].path, d.join("a.txt"));
}

#[test]
fn text_directory_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = (TextDirOptions::new(), VocabularyOptions::new());

    // Empty directory.
    let err = read_text_dir(d, &opts.0, &opts.1).unwrap_err();
    assert!(matches!(err, NmfError::NoTextFiles { .. }), "{err:?}");
    assert!(err.to_string().contains(&d.display().to_string()), "{err}");

    // .txt files only in a subdirectory, read at the top level only.
    write(&d.join("sub/one.txt"), "nothing but 42 and the");
    let top = TextDirOptions::new().recursion(Recursion::TopLevel);
    let err = read_text_dir(d, &top, &opts.1).unwrap_err();
    assert!(err.to_string().contains("Recursion::Recursive"), "{err}");

    // Files without any countable token.
    let err = read_text_dir(d, &opts.0, &opts.1).unwrap_err();
    assert!(matches!(err, NmfError::NoTerms { .. }), "{err:?}");
    assert!(err.to_string().contains(".txt files in"), "{err}");

    // Not UTF-8: the file and line are named, unless replacement is asked for.
    write(&d.join("sub/two.txt"), b"first line\ncaf\xe9 au lait\n");
    let err = read_text_dir(d, &opts.0, &opts.1).unwrap_err();
    match &err {
        NmfError::Format { path, line, .. } => {
            assert!(path.ends_with("sub/two.txt"), "{path:?}");
            assert_eq!(*line, Some(2));
        }
        other => panic!("{other:?}"),
    }
    let lossy = TextDirOptions::new().invalid_utf8(InvalidUtf8::Replace);
    let corpus = read_text_dir(d, &lossy, &opts.1).unwrap();
    assert!(corpus.vocabulary().index_of("lait").is_some());

    // Not a directory; missing.
    let err = read_text_dir(d.join("sub/one.txt"), &opts.0, &opts.1).unwrap_err();
    assert!(matches!(err, NmfError::UnsupportedInput { .. }), "{err:?}");
    let err = read_text_dir(d.join("missing"), &opts.0, &opts.1).unwrap_err();
    assert!(matches!(err, NmfError::Io { .. }), "{err:?}");
}

/// 3 terms x 2 documents as a MatrixMarket coordinate file.
const MTX: &str = "%%MatrixMarket matrix coordinate integer general\n% counts\n3 2 4\n1 1 2\n2 1 1\n3 2 5\n1 2 1\n";

#[test]
fn matrix_market_with_terms_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("counts.mtx"), MTX);
    write(&d.join("terms.txt"), "orbit\r\n  rocket \nplanet\n\n\n");
    let corpus = read_term_document(
        d.join("counts.mtx"),
        d.join("terms.txt"),
        Orientation::TermsByDocuments,
    )
    .unwrap();
    assert_eq!(corpus.vocabulary().terms(), ["orbit", "rocket", "planet"]);
    assert_eq!(corpus.counts(), &array![[2., 1.], [1., 0.], [0., 5.]]);
    assert_eq!(corpus.documents(), ["1", "2"]);
    let top = top_terms(corpus.counts().view(), corpus.vocabulary().terms(), 1).unwrap();
    assert_eq!(top, vec![vec!["orbit"], vec!["planet"]]);

    // The same file read as documents x terms: 2 terms expected, 3 given.
    let err = read_term_document(
        d.join("counts.mtx"),
        d.join("terms.txt"),
        Orientation::DocumentsByTerms,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            NmfError::TermCountMismatch {
                rows: 2,
                cols: 3,
                terms: 3,
                transposed: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("do not transpose"), "{err}");

    // A terms file with one term per document: the message suggests transposing.
    write(&d.join("two.txt"), "orbit\nrocket\n");
    let err = read_term_document(
        d.join("counts.mtx"),
        d.join("two.txt"),
        Orientation::TermsByDocuments,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("counts.mtx") && msg.contains("two.txt") && msg.contains("3 term rows"),
        "{msg}"
    );
    write(&d.join("four.txt"), "a1\nb2\nc3\nd4\n");
    let err = read_term_document(
        d.join("counts.mtx"),
        d.join("four.txt"),
        Orientation::TermsByDocuments,
    )
    .unwrap_err();
    assert!(matches!(err, NmfError::TermCountMismatch { terms: 4, .. }));

    // Documents x terms on file, transposed on reading.
    write(
        &d.join("dt.mtx"),
        "%%MatrixMarket matrix array real general\n2 3\n1\n4\n2\n5\n3\n6\n",
    );
    let corpus = read_term_document(
        d.join("dt.mtx"),
        d.join("terms.txt"),
        Orientation::DocumentsByTerms,
    )
    .unwrap();
    assert_eq!(corpus.counts(), &array![[1., 4.], [2., 5.], [3., 6.]]);
}

#[test]
fn terms_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let format_line = |contents: &[u8]| {
        let p = d.join("t.txt");
        fs::write(&p, contents).unwrap();
        match read_terms(&p) {
            Err(NmfError::Format { line, message, .. }) => (line, message),
            other => panic!("{other:?}"),
        }
    };
    let (line, msg) = format_line(b"alpha\nbeta\nalpha\n");
    assert_eq!(line, Some(3));
    assert!(msg.contains("line 1"), "{msg}");
    let (line, msg) = format_line(b"alpha\n\nbeta\n");
    assert_eq!(line, Some(2));
    assert!(msg.contains("blank line"), "{msg}");
    let (line, _) = format_line(b"");
    assert_eq!(line, None);
    let (line, _) = format_line(b"ok\nbad \xff\n");
    assert_eq!(line, Some(2));
    assert!(matches!(
        read_terms(d.join("missing.txt")),
        Err(NmfError::Io { .. })
    ));
}

#[test]
fn text_and_terms_lines_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("a.txt"), "short words here\n").unwrap();
    fs::write(
        d.join("b.txt"),
        format!("fine line\n{}\n", "word ".repeat(100)),
    )
    .unwrap();
    let tight = TextDirOptions::new().max_line_bytes(100);
    match read_text_files(d, &tight) {
        Err(NmfError::LineTooLong { path, line, limit }) => {
            assert!(path.ends_with("b.txt"));
            assert_eq!((line, limit), (2, 100));
        }
        other => panic!("expected LineTooLong, got {other:?}"),
    }
    let files = read_text_files(d, &TextDirOptions::new()).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        files[1].text,
        format!("fine line\n{}\n", "word ".repeat(100))
    );

    let terms = d.join("terms.txt");
    fs::write(&terms, format!("alpha\n{}\n", "b".repeat(300))).unwrap();
    let options = nmf_gpu::io::ReadOptions::new().max_line_bytes(100);
    match text::read_terms_with(&terms, &options) {
        Err(NmfError::LineTooLong { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected LineTooLong, got {other:?}"),
    }
    assert_eq!(read_terms(&terms).unwrap().len(), 2);
    #[cfg(unix)]
    {
        let zero = d.join("zero-terms.txt.link");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        match read_terms(&zero) {
            Err(NmfError::LineTooLong { line, .. }) => assert_eq!(line, 1),
            other => panic!("expected LineTooLong, got {other:?}"),
        }
    }
}
