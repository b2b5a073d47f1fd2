//! Progress of a fit: a bar on a terminal, plain lines otherwise, or nothing.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nmf_gpu::Progress;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// An indicatif bar on standard error (a terminal).
    Bar,
    /// A line on standard error at the first check, then at most one a second.
    Lines,
    /// Nothing.
    Quiet,
}

impl Display {
    /// `Quiet` when asked; otherwise a bar if standard error is a terminal, else lines.
    pub fn choose(quiet: bool) -> Display {
        if quiet {
            Display::Quiet
        } else if std::io::stderr().is_terminal() {
            Display::Bar
        } else {
            Display::Lines
        }
    }
}

/// The progress display of one fit.
pub struct Reporter {
    bar: Option<ProgressBar>,
    display: Display,
}

/// A bar of `len` steps on standard error drawn by `template` (indicatif's), ticking five
/// times a second.
pub fn stderr_bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

impl Reporter {
    /// A reporter for a fit of at most `max_iter` iterations.
    pub fn new(display: Display, max_iter: usize) -> Reporter {
        let bar = (display == Display::Bar).then(|| {
            stderr_bar(
                max_iter as u64,
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} iterations  loss {msg}  ETA {eta}",
            )
        });
        Reporter { bar, display }
    }

    /// The callback for `NmfParams::on_progress`, or `None` when nothing is shown.
    pub fn callback(&self) -> Option<impl Fn(&Progress) + Send + Sync + 'static> {
        let bar = self.bar.clone();
        let display = self.display;
        let last_line: Mutex<Option<Instant>> = Mutex::new(None);
        (display != Display::Quiet).then_some(move |p: &Progress| {
            if let Some(bar) = &bar {
                bar.set_position(p.iteration as u64);
                bar.set_message(format!("{:.6e}", p.loss));
                return;
            }
            let mut last = last_line.lock().unwrap_or_else(|e| e.into_inner());
            let due = match *last {
                None => true,
                Some(t) => t.elapsed() >= Duration::from_secs(1) || p.iteration >= p.max_iter,
            };
            if due {
                *last = Some(Instant::now());
                eprintln!(
                    "iteration {}/{}: loss {:.6e}",
                    p.iteration, p.max_iter, p.loss
                );
            }
        })
    }
}

impl Drop for Reporter {
    /// Remove the bar, whether the fit succeeded or not (the summary or the error follows).
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
