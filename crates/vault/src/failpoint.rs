//! Named points where a test stops this process dead, to prove that a write cut off there
//! leaves a vault that every command still opens and uses. Test-only: nothing in Cairn sets
//! it, and a person has no reason to.
//!
//! With `CAIRN_FAILPOINT=NAME` (or `NAME#N`: the Nth time the point is passed) in its
//! environment, the process sends itself SIGKILL when it reaches that point: no destructor
//! runs, no transaction is rolled back, nothing is flushed, as when power is cut. Without the
//! variable (read once) each point costs a comparison.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The point asked for and the pass to stop at, from the environment.
fn armed() -> Option<&'static (String, u32)> {
    static ARMED: OnceLock<Option<(String, u32)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("CAIRN_FAILPOINT").ok()?;
            match spec.split_once('#') {
                Some((name, pass)) => Some((name.to_owned(), pass.parse().ok()?)),
                None => Some((spec, 1)),
            }
        })
        .as_ref()
}

/// Stops the process here if the failpoint `name` is armed and this is the pass asked for.
pub fn hit(name: &str) {
    hit_keyed(name, "");
}

/// [`hit`] for the point named `point` followed by `key` (`meta:` and `sync`: `meta:sync`),
/// without building the name.
pub fn hit_keyed(point: &str, key: &str) {
    let Some((armed, pass)) = armed() else {
        return;
    };
    let named =
        armed.len() == point.len() + key.len() && armed.starts_with(point) && armed.ends_with(key);
    if !named {
        return;
    }
    static PASSES: AtomicU32 = AtomicU32::new(0);
    if PASSES.fetch_add(1, Ordering::SeqCst) + 1 >= *pass {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // Not reached: SIGKILL cannot be caught.
        std::process::abort();
    }
}
