//! Factorize a planted low-rank matrix with each solver and print how well it is recovered.
//!
//! `cargo run --release --example quickstart`

use nmf_gpu::ndarray::Array2;
use nmf_gpu::{Backend, Init, Loss, Nmf, NmfError, Solver};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), NmfError> {
    let (m, n, r) = (200, 300, 10);
    let mut rng = StdRng::seed_from_u64(7);
    // Sparse nonnegative parts and encodings (about half the entries zero).
    let mut sparse = |rows, cols| {
        Array2::from_shape_simple_fn((rows, cols), || {
            if rng.random::<f32>() < 0.5 {
                0.0
            } else {
                rng.random::<f32>()
            }
        })
    };
    let w0 = sparse(m, r);
    let h0 = sparse(r, n);
    let v = w0.dot(&h0);
    println!("V = W0 H0: {m} x {n}, rank {r} (sparse planted factors)");
    for (solver, loss) in [
        (Solver::MultiplicativeUpdate, Loss::Frobenius),
        (Solver::MultiplicativeUpdate, Loss::KullbackLeibler),
        (Solver::Hals, Loss::Frobenius),
    ] {
        let fit = Nmf::params(r)
            .solver(solver)
            .loss(loss)
            .init(Init::Nndsvda)
            .max_iter(1000)
            .tol(1e-6)
            .backend(Backend::Auto)
            .fit(v.view())?;
        println!(
            "{:>4} {:<9}  iterations {:>4}  converged {:<5}  relative error {:.2e}  ({:.0} ms on {})",
            solver.name(),
            loss.name(),
            fit.n_iter(),
            fit.converged(),
            fit.relative_error(v.view())?,
            fit.elapsed().as_secs_f64() * 1e3,
            fit.engine()
        );
    }
    Ok(())
}
