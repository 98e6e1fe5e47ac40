//! Progress display and number formatting for the terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner for a step of unknown length (hidden when not interactive).
pub fn spinner(interactive: bool, msg: impl Into<String>) -> ProgressBar {
    if !interactive {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar counting blocks while waiting.
pub fn blocks(interactive: bool, msg: impl Into<String>, len: u64) -> ProgressBar {
    if !interactive {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} blocks [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(msg.into());
    pb
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// A micro-unit privacy amount as a decimal.
pub fn micro(v: u64) -> String {
    format!("{}.{:06}", v / 1_000_000, v % 1_000_000)
}

/// A decimal ε given on the command line to micro-units, rounded up (against the spender for
/// costs; callers use [`micro_down`] for budgets).
pub fn to_micro_up(v: f64) -> anyhow::Result<u64> {
    anyhow::ensure!(
        v.is_finite() && v > 0.0 && v < 1e12,
        "expected a positive number, got {v}"
    );
    Ok((v * 1e6).ceil() as u64)
}

pub fn to_micro_down(v: f64) -> anyhow::Result<u64> {
    anyhow::ensure!(
        v.is_finite() && v > 0.0 && v < 1e12,
        "expected a positive number, got {v}"
    );
    Ok((v * 1e6).floor() as u64)
}
