//! The progress-bar style of every tool. Libraries report progress through
//! callbacks (`&dyn Fn(u64)` positions); the binaries turn them into these
//! bars. `quiet` gives a hidden bar, so callers need no branches.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` units named `unit` (e.g. "files", "steps"), with
/// `what` as its message.
pub fn bar(len: u64, unit: &str, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let template = format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} ({{eta}})  {{msg}}");
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(&template).expect("static template").progress_chars("=> "));
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner with a running count, for work of unknown length.
pub fn spinner(unit: &str, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let template = format!("{{spinner}} [{{elapsed_precise}}] {{pos}} {unit}  {{msg}}");
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template(&template).expect("static template"));
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
