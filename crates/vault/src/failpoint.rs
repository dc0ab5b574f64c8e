//! Named points where a test can kill a command: with `CAIRN_FAILPOINT=NAME` in its
//! environment, the process aborts at the point of that name, as a power cut or a SIGKILL
//! there would end it. Without it, nothing happens.

/// Aborts the process if `CAIRN_FAILPOINT` names this point.
pub fn failpoint(name: &str) {
    if std::env::var_os("CAIRN_FAILPOINT").is_some_and(|wanted| wanted == name) {
        std::process::abort();
    }
}
