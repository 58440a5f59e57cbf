//! Progress bars. They draw to stderr and hide themselves when it is not a
//! terminal, so scripted runs get only the report on stdout.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `len` items of work, with rate and ETA, for setup.
pub fn counter(len: u64, what: &str) -> anyhow::Result<ProgressBar> {
    let style = ProgressStyle::with_template(
        "{msg} {wide_bar} {human_pos}/{human_len} ({per_sec}, eta {eta})",
    )?;
    let bar = ProgressBar::new(len).with_style(style);
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    Ok(bar)
}

/// A bar that fills over `duration` (its position is elapsed milliseconds);
/// the message carries the live rate.
pub fn timer(duration: Duration) -> anyhow::Result<ProgressBar> {
    let style = ProgressStyle::with_template("load {elapsed_precise} {wide_bar} {msg}")?;
    let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    Ok(ProgressBar::new(millis).with_style(style))
}
