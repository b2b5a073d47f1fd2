//! Communities of a graph by symmetric NMF: `Ã ≈ H Hᵀ` (or `H S Hᵀ`), node i in community
//! `argmax_t H[i, t]`.
//!
//! ```sh
//! cargo run --release --example graph_clustering                  # a planted partition, scored by NMI
//! cargo run --release --example graph_clustering -- --edges karate_edges.txt --k 2
//! cargo run --release --example graph_clustering -- --gml football.gml --attribute value --k 12
//! cargo run --release --example graph_clustering -- --edges graph.txt --k 5 --method tri --json
//! ```
//!
//! Input: `--edges FILE` (one edge `u v [weight]` per line, integer node ids, `#`/`%` comments),
//! or `--gml FILE` (with `--attribute NAME`: a node attribute holding known communities, which
//! the result is scored against), or nothing: a planted-partition graph (`--groups 4`,
//! `--group-size 50`, `--p-in 0.3`, `--p-out 0.03`, `--seed 0`) whose recovered communities
//! are scored against the planted ones.
//!
//! Options: `--k K` (required with a file; default `--groups`), `--method symnmf|mu|tri`
//! (symnmf: ANLS of Kuang et al.; mu: the multiplicative rule of Ding et al.; tri: `H S Hᵀ`),
//! `--preprocess normalized|none` (normalized: `D^{-1/2} A D^{-1/2}`), `--n-init N` (1; a few
//! restarts, e.g. 5, steady the result on graphs with many communities),
//! `--max-iter N` (500), `--seed S` (0), `--backend cpu|gpu|auto` (cpu).
//!
//! Output: the graph's size, the fit (iterations, relative error, time), then each community's
//! size and members. `--json` prints, as the last line of stdout, one JSON object
//! `{"nodes": [node ids ascending], "labels": [community of each node]}` (the summary then
//! goes to stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use nmf_gpu::cluster::{adjusted_rand_index, normalized_mutual_info, purity};
use nmf_gpu::graph::{planted_partition, read_edge_list, read_gml, Graph};
use nmf_gpu::symmetric::{Preprocess, SymFactorization, SymMethod, SymNmf};
use nmf_gpu::{BackendChoice, NmfError};

/// Find the communities of a graph with symmetric NMF.
#[derive(Debug, Parser)]
#[command(name = "graph_clustering", about)]
struct Args {
    /// Edge list: one edge `u v [weight]` per line, integer node ids.
    #[arg(long, conflicts_with = "gml")]
    edges: Option<PathBuf>,
    /// GML graph file.
    #[arg(long)]
    gml: Option<PathBuf>,
    /// Node attribute of the GML file that holds known communities (scored against).
    #[arg(long, requires = "gml")]
    attribute: Option<String>,
    /// Number of communities.
    #[arg(long)]
    k: Option<usize>,
    /// The algorithm.
    #[arg(long, value_enum, default_value_t = MethodArg::Symnmf)]
    method: MethodArg,
    /// How the adjacency is transformed before the fit.
    #[arg(long, value_enum, default_value_t = PreprocessArg::Normalized)]
    preprocess: PreprocessArg,
    /// Random initialisations; the one with the lowest residual is kept.
    #[arg(long, default_value_t = 1)]
    n_init: usize,
    /// Iteration budget per initialisation.
    #[arg(long, default_value_t = 500)]
    max_iter: usize,
    /// Seed of the initialisation (and of the planted graph).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object {"nodes": ..., "labels": ...} as the last line of stdout.
    #[arg(long)]
    json: bool,
    /// Groups of the planted partition (when no file is given).
    #[arg(long, default_value_t = 4)]
    groups: usize,
    /// Nodes per planted group.
    #[arg(long, default_value_t = 50)]
    group_size: usize,
    /// Edge probability inside a planted group.
    #[arg(long, default_value_t = 0.3)]
    p_in: f64,
    /// Edge probability across planted groups.
    #[arg(long, default_value_t = 0.03)]
    p_out: f64,
    /// Where the fit runs.
    #[arg(long, default_value = "cpu", value_name = "cpu|gpu|gpu:N|auto")]
    backend: BackendChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MethodArg {
    /// ANLS (Kuang, Ding & Park).
    Symnmf,
    /// Damped multiplicative rule (Ding, He & Simon).
    Mu,
    /// Tri-factorization H S Hᵀ (Ding, Li, Peng & Park).
    Tri,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PreprocessArg {
    /// D^{-1/2} A D^{-1/2}.
    Normalized,
    /// The adjacency as read.
    None,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.k.is_none() && (args.edges.is_some() || args.gml.is_some()) {
        Args::command()
            .error(
                ErrorKind::MissingRequiredArgument,
                "--k K is required with --edges or --gml: the number of communities to find",
            )
            .exit();
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the human-readable summary goes: stdout, or stderr when stdout carries JSON.
struct Out {
    json: bool,
}

impl Out {
    fn line(&self, s: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", s.as_ref());
        } else {
            println!("{}", s.as_ref());
        }
    }
}

fn run(args: &Args) -> Result<(), NmfError> {
    let out = Out { json: args.json };
    // The graph, its name, and known communities when there are some.
    let (graph, name, truth): (Graph, String, Option<(String, Vec<usize>)>) =
        match (&args.edges, &args.gml) {
            (Some(path), _) => (read_edge_list(path)?, path.display().to_string(), None),
            (None, Some(path)) => {
                let g = read_gml(path, args.attribute.as_deref())?;
                let truth = match &args.attribute {
                    Some(a) => Some((a.clone(), g.attribute_labels()?)),
                    None => None,
                };
                (g.into_graph(), path.display().to_string(), truth)
            }
            (None, None) => {
                let p = planted_partition(
                    args.groups,
                    args.group_size,
                    args.p_in,
                    args.p_out,
                    args.seed,
                )?;
                let name = format!(
                    "planted partition: {} groups of {}, p_in {}, p_out {}, seed {}",
                    args.groups, args.group_size, args.p_in, args.p_out, args.seed
                );
                let (g, labels) = p.into_parts();
                (g, name, Some(("the planted groups".to_string(), labels)))
            }
        };
    let k = args.k.unwrap_or(args.groups);
    let method = match args.method {
        MethodArg::Symnmf => SymMethod::Anls,
        MethodArg::Mu => SymMethod::Multiplicative,
        MethodArg::Tri => SymMethod::TriFactor,
    };
    let preprocess = match args.preprocess {
        PreprocessArg::Normalized => Preprocess::NormalizedAdjacency,
        PreprocessArg::None => Preprocess::None,
    };
    let backend = args.backend.open()?;
    out.line(format!(
        "graph: {} nodes, {} edges ({name})",
        graph.n_nodes(),
        graph.n_edges()
    ));
    let fit = SymNmf::params(k)
        .method(method)
        .preprocess(preprocess)
        .n_init(args.n_init)
        .max_iter(args.max_iter)
        .seed(args.seed)
        .backend(backend)
        .fit(graph.adjacency())?;
    summary(&out, &graph, &fit, args.n_init);
    let labels = fit.labels();
    if let Some((what, truth)) = &truth {
        out.line(format!(
            "against {what}: NMI {:.3}, ARI {:.3}, purity {:.3}",
            normalized_mutual_info(&labels, truth)?,
            adjusted_rand_index(&labels, truth)?,
            purity(&labels, truth)?
        ));
    }
    if args.json {
        let json = serde_json::json!({ "nodes": graph.nodes(), "labels": labels });
        println!("{json}");
    }
    Ok(())
}

fn summary(out: &Out, graph: &Graph, fit: &SymFactorization, n_init: usize) {
    out.line(format!(
        "{} ({} adjacency), k = {}: {} iterations{}, {}relative error {:.4}, {:.1} ms on {}",
        match fit.method() {
            SymMethod::Anls => "SymNMF by ANLS",
            SymMethod::Multiplicative => "SymNMF by multiplicative updates",
            SymMethod::TriFactor => "tri-factorization H S Hᵀ",
        },
        fit.preprocess().name(),
        fit.k(),
        fit.n_iter(),
        if fit.converged() { " (converged)" } else { "" },
        if n_init > 1 {
            format!("best of {n_init} starts (#{}), ", fit.best_init() + 1)
        } else {
            String::new()
        },
        fit.relative_residual(),
        fit.elapsed().as_secs_f64() * 1e3,
        fit.engine()
    ));
    let labels = fit.labels();
    for c in 0..fit.k() {
        let members: Vec<String> = labels
            .iter()
            .zip(graph.nodes())
            .filter(|(&l, _)| l == c)
            .map(|(_, id)| id.to_string())
            .collect();
        if members.is_empty() {
            out.line(format!("community {c}: empty"));
        } else {
            out.line(format!(
                "community {c} ({} nodes): {}",
                members.len(),
                members.join(" ")
            ));
        }
    }
}
