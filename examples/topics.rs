//! Topics of a text corpus: counts → tf-idf → NMF (HALS from NNDSVD) → the top terms of each
//! topic, as in scikit-learn's topic-extraction example.
//!
//! ```sh
//! cargo run --release --example topics                          # a generated corpus, 5 topics
//! cargo run --release --example topics -- --dir texts/ --topics 10
//! cargo run --release --example topics -- --mtx counts.mtx --terms terms.txt --topics 20 --json
//! ```
//!
//! Input: `--dir DIR` (`.txt` files, UTF-8, searched recursively unless `--top-level`), or
//! `--mtx FILE --terms FILE` (a term x document count matrix, `.mtx`/`.npy`/`.csv`, and one
//! term per line; `--transpose` when the file is documents x terms), or nothing: 300
//! documents drawn from five known topics (sports, cooking, space, finance, music), for which
//! the recovered topics are matched to the generating ones and scored (purity, NMI).
//!
//! Options: `--topics K` (5), `--top N` (10), `--min-df D` (2; a number of documents, or a
//! fraction with a decimal point), `--max-df D` (0.95), `--max-features N`, `--sublinear`,
//! `--max-iter N` (500), `--seed S` (0, the generated corpus), `--backend cpu|gpu|auto`
//! (auto). The vocabulary options apply to `--dir` and the generated corpus.
//!
//! `--json` prints, as the last line of stdout, one JSON object:
//! `{"topics": [[term, ...], ...], "doc_topics": [topic of each document, ...]}`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nmf_gpu::text::{
    self, Corpus, DocFrequency, MaxFeatures, Orientation, Recursion, TermFrequency, TextDirOptions,
    VocabularyOptions, SYNTHETIC_TOPICS,
};
use nmf_gpu::{cluster, BackendChoice, Init, Nmf, NmfError, Solver};

/// Extract topics from a corpus with NMF and print the top terms of each.
#[derive(Debug, Parser)]
#[command(name = "topics")]
struct Args {
    /// Directory of UTF-8 .txt files, one document each (searched recursively).
    #[arg(long, conflicts_with_all = ["mtx", "terms"])]
    dir: Option<PathBuf>,
    /// Only the .txt files directly in --dir, not in its subdirectories.
    #[arg(long, requires = "dir")]
    top_level: bool,
    /// Term x document count matrix (.mtx, .npy, .csv, .tsv).
    #[arg(long, requires = "terms")]
    mtx: Option<PathBuf>,
    /// Terms of the rows of --mtx, one per line.
    #[arg(long, requires = "mtx")]
    terms: Option<PathBuf>,
    /// --mtx is stored documents x terms (as scikit-learn's X): transpose it.
    #[arg(long, requires = "mtx")]
    transpose: bool,
    /// Number of topics (the NMF rank).
    #[arg(long, default_value_t = 5)]
    topics: usize,
    /// Terms printed per topic.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print one JSON object {"topics": ..., "doc_topics": ...} as the last line.
    #[arg(long)]
    json: bool,
    /// Keep terms in at least this many documents (with a decimal point: this fraction of them).
    #[arg(long, default_value = "2", value_parser = parse_df)]
    min_df: DocFrequency,
    /// Keep terms in at most this fraction of the documents (without a decimal point: this
    /// many documents).
    #[arg(long, default_value = "0.95", value_parser = parse_df)]
    max_df: DocFrequency,
    /// Keep only this many terms, the most frequent.
    #[arg(long)]
    max_features: Option<usize>,
    /// Term frequency 1 + ln(count) instead of the count.
    #[arg(long)]
    sublinear: bool,
    /// Iteration budget of the NMF.
    #[arg(long, default_value_t = 500)]
    max_iter: usize,
    /// Seed of the generated corpus.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Documents per topic of the generated corpus.
    #[arg(long, default_value_t = 60)]
    docs_per_topic: usize,
    /// Where the NMF runs.
    #[arg(long, default_value = "auto", value_name = "cpu|gpu|gpu:N|auto")]
    backend: BackendChoice,
}

fn parse_df(s: &str) -> Result<DocFrequency, String> {
    if s.contains(['.', 'e', 'E']) {
        let f: f64 = s.parse().map_err(|e| format!("{e}"))?;
        if (0.0..=1.0).contains(&f) {
            Ok(DocFrequency::Fraction(f))
        } else {
            Err("a fraction of the documents must lie in [0, 1]".to_string())
        }
    } else {
        s.parse()
            .map(DocFrequency::Documents)
            .map_err(|e| format!("{e}; give a number of documents (2) or a fraction (0.95)"))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), NmfError> {
    let vocabulary_options = VocabularyOptions::new()
        .min_df(args.min_df)
        .max_df(args.max_df)
        .max_features(match args.max_features {
            Some(n) => MaxFeatures::MostFrequent(n),
            None => MaxFeatures::All,
        });

    // Counts, and the generating topics of a generated corpus.
    let (corpus, truth) = if let Some(dir) = &args.dir {
        let recursion = if args.top_level {
            Recursion::TopLevel
        } else {
            Recursion::Recursive
        };
        let corpus = text::read_text_dir(
            dir,
            &TextDirOptions::new().recursion(recursion),
            &vocabulary_options,
        )?;
        println!(
            "corpus: {} .txt files in {}, {} terms",
            corpus.documents().len(),
            dir.display(),
            corpus.vocabulary().len()
        );
        (corpus, None)
    } else if let (Some(mtx), Some(terms)) = (&args.mtx, &args.terms) {
        let orientation = if args.transpose {
            Orientation::DocumentsByTerms
        } else {
            Orientation::TermsByDocuments
        };
        let corpus = text::read_term_document(mtx, terms, orientation)?;
        println!(
            "corpus: {} documents x {} terms from {} and {}",
            corpus.documents().len(),
            corpus.vocabulary().len(),
            mtx.display(),
            terms.display()
        );
        (corpus, None)
    } else {
        let generated = text::synthetic_corpus(args.docs_per_topic, args.seed);
        let (vocabulary, counts) = text::count_terms(generated.texts(), &vocabulary_options)?;
        let names = (1..=generated.texts().len())
            .map(|j| j.to_string())
            .collect();
        let corpus = Corpus::new(vocabulary, counts, names)?;
        println!(
            "corpus: {} generated documents on {} topics ({}), seed {}, {} terms after stop \
             words and min_df {}",
            generated.texts().len(),
            SYNTHETIC_TOPICS.len(),
            generated.topic_names().join(", "),
            args.seed,
            corpus.vocabulary().len(),
            args.min_df
        );
        (corpus, Some(generated.topics().to_vec()))
    };

    // tf-idf, then NMF with the Frobenius loss: NNDSVD keeps the zeros of the leading singular
    // vectors, HALS refines the sparse start into sparse, well-separated topics.
    let tf = if args.sublinear {
        TermFrequency::Sublinear
    } else {
        TermFrequency::Raw
    };
    let x = text::tfidf(corpus.counts().view(), tf)?;
    let backend = args.backend.open()?;
    let fit = Nmf::params(args.topics)
        .solver(Solver::Hals)
        .init(Init::Nndsvd)
        .max_iter(args.max_iter)
        .tol(1e-4)
        .backend(backend)
        .fit(x.view())?;
    println!(
        "NMF of the tf-idf matrix ({} x {}), {} topics: HALS from NNDSVD, {} iterations{}, \
         relative error {:.3}, {:.0} ms on {}",
        x.nrows(),
        x.ncols(),
        args.topics,
        fit.n_iter(),
        if fit.converged() {
            ""
        } else {
            " (not converged)"
        },
        fit.relative_error(x.view())?,
        fit.elapsed().as_secs_f64() * 1e3,
        fit.engine()
    );

    let topics = text::top_terms(fit.w(), corpus.vocabulary().terms(), args.top)?;
    let assigned = text::doc_topics(fit.h());
    let mut sizes = vec![0usize; args.topics];
    for &t in &assigned {
        sizes[t] += 1;
    }
    let width = args.topics.saturating_sub(1).to_string().len();
    for (t, terms) in topics.iter().enumerate() {
        let label = match &truth {
            Some(truth) => majority(&assigned, truth, t)
                .map(|(source, hits)| format!("{} {hits}/{}", SYNTHETIC_TOPICS[source].0, sizes[t]))
                .unwrap_or_else(|| "no documents".to_string()),
            None => match sizes[t] {
                1 => "1 document".to_string(),
                n => format!("{n} documents"),
            },
        };
        println!("topic {t:>width$} [{label}]: {}", terms.join(" "));
    }
    if let Some(truth) = &truth {
        println!(
            "doc_topics against the generating topics: purity {:.3}, NMI {:.3}, ARI {:.3}",
            cluster::purity(&assigned, truth)?,
            cluster::normalized_mutual_info(&assigned, truth)?,
            cluster::adjusted_rand_index(&assigned, truth)?
        );
    }
    if args.json {
        let json = serde_json::json!({ "topics": topics, "doc_topics": assigned });
        println!("{json}");
    }
    Ok(())
}

/// The generating topic most common among the documents assigned to topic `t`, and how many
/// of them it generated.
fn majority(assigned: &[usize], truth: &[usize], t: usize) -> Option<(usize, usize)> {
    let mut hits = vec![0usize; SYNTHETIC_TOPICS.len()];
    for (&a, &s) in assigned.iter().zip(truth) {
        if a == t {
            hits[s] += 1;
        }
    }
    hits.into_iter()
        .enumerate()
        .filter(|&(_, h)| h > 0)
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
}
