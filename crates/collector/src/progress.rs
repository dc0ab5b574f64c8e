//! A progress bar for long bulk commands (import, export, attach): on a terminal only, and
//! only when there is enough work for one to be worth drawing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Below this many items a command is done before a bar would be seen.
const WORTH_A_BAR: u64 = 200;

/// A bar on standard error, or nothing when it is not a terminal.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar for `total` items labelled `what` ("importing", "exporting").
    pub fn new(what: &str, total: u64) -> Bar {
        if total < WORTH_A_BAR || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let style = ProgressStyle::with_template(&format!(
            "{what:9} {{bar:30}} {{pos}}/{{len}} case(s) {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        Bar(Some(ProgressBar::new(total).with_style(style)))
    }

    /// A bar for `total` bytes labelled `what` ("attaching"), for work of a megabyte or more.
    pub fn bytes(what: &str, total: u64) -> Bar {
        if total < 1 << 20 || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let style = ProgressStyle::with_template(&format!(
            "{what:9} {{bar:30}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        Bar(Some(ProgressBar::new(total).with_style(style)))
    }

    /// A spinner labelled `what`, for work whose size is not known as it goes.
    pub fn spinner(what: &str) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::new_spinner().with_message(what.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Bar(Some(bar))
    }

    /// Sets how many items are done.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
