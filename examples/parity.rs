//! Fit V.npy from a given start W0.npy, H0.npy with each solver and print the final relative
//! errors as JSON: the Rust half of `benches/compare_sklearn.py`.
//!
//! `cargo run --release --example parity -- DIR [ITERATIONS]`

use std::path::PathBuf;

use ndarray_npy::read_npy;
use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Init, Loss, Nmf, Solver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: parity DIR [ITERATIONS]")?);
    let iters: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let v: Array2<f32> = read_npy(dir.join("V.npy"))?;
    let w0: Array2<f32> = read_npy(dir.join("W0.npy"))?;
    let h0: Array2<f32> = read_npy(dir.join("H0.npy"))?;
    let mut parts = Vec::new();
    for (key, solver, loss) in [
        (
            "mu_frobenius",
            Solver::MultiplicativeUpdate,
            Loss::Frobenius,
        ),
        ("mu_kl", Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        ("hals", Solver::Hals, Loss::Frobenius),
    ] {
        let fit = Nmf::params(w0.ncols())
            .solver(solver)
            .loss(loss)
            .init(Init::Custom {
                w: w0.clone(),
                h: h0.clone(),
            })
            .max_iter(iters)
            .tol(0.0)
            .fit(v.view())?;
        let rel = fit.relative_error(v.view())?;
        let ms = fit.elapsed().as_secs_f64() * 1e3 / iters as f64;
        parts.push(format!(
            "\"{key}\": {{\"rel_error\": {rel:.9}, \"loss\": {:.9e}, \"ms_per_iter\": {ms:.4}}}",
            fit.final_loss()
        ));
    }
    println!("{{{}}}", parts.join(", "));
    Ok(())
}
