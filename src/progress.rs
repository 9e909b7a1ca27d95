//! Progress on stderr. Bars are drawn only when stderr is a terminal and `--quiet` is off;
//! otherwise every bar is hidden and costs nothing. Commands get one [`Reporter`] and
//! hand it down, so there is no global state.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Reporter {
    multi: Option<MultiProgress>,
}

impl Reporter {
    pub fn new(quiet: bool) -> Self {
        let show = !quiet && std::io::stderr().is_terminal();
        Self { multi: show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10))) }
    }

    pub fn hidden() -> Self {
        Self { multi: None }
    }

    /// A byte-count bar (or spinner when `total` is unknown).
    pub fn bytes(&self, msg: &str, total: Option<u64>) -> ProgressBar {
        let Some(m) = &self.multi else { return ProgressBar::hidden() };
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{msg:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg:>12.cyan.bold} {spinner} {bytes} {binary_bytes_per_sec}")
                    .expect("template"),
            ),
        };
        let bar = m.add(bar.with_message(msg.to_string()));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// An item-count bar.
    pub fn items(&self, msg: &str, total: u64) -> ProgressBar {
        let Some(m) = &self.multi else { return ProgressBar::hidden() };
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{msg:>12.cyan.bold} [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        m.add(bar.with_message(msg.to_string()))
    }
}
