//! The real `cairn` on a pseudo-terminal of its own, typed into as a person would (the guided
//! form, `office match --review`).

use std::process::Command;

use rexpect::process::WaitStatus;
use rexpect::session::PtySession;

use crate::Device;

/// How long one prompt may take to appear before the test fails (instead of hanging); far
/// more than any prompt needs, for a machine busy building.
const PROMPT_TIMEOUT_MS: u64 = 60_000;

/// `cairn ARGS` on a pseudo-terminal of its own, 200 columns wide so that no message the test
/// waits for is wrapped, with the device's clock at +03:00. With `ask_passphrase` the
/// passphrase is asked on the terminal rather than found in the environment.
pub fn spawn(device: &Device, args: &[&str], ask_passphrase: bool) -> Pty {
    let cairn = device.command(args);
    let mut command = Command::new("sh");
    command
        .args(["-c", "stty cols 200 rows 50 && exec \"$0\" \"$@\""])
        .arg(cairn.get_program())
        .args(cairn.get_args())
        .env("TZ", "UTC-3");
    for (name, value) in cairn.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    if ask_passphrase {
        command.env_remove("CAIRN_PASSPHRASE");
    }
    let session =
        rexpect::session::spawn_command(command, Some(PROMPT_TIMEOUT_MS)).expect("spawn cairn");
    Pty {
        session,
        transcript: String::new(),
    }
}

/// A session and everything it showed so far.
pub struct Pty {
    session: PtySession,
    /// Everything shown so far.
    pub transcript: String,
}

impl Pty {
    /// Waits until `text` is shown.
    pub fn expect(&mut self, text: &str) {
        let before = self
            .session
            .exp_string(text)
            .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}\n{}", self.transcript));
        self.transcript.push_str(&before);
        self.transcript.push_str(text);
    }

    /// Types `keys` (raw: `\r` is Enter).
    pub fn keys(&mut self, keys: &str) {
        self.session.send(keys).expect("type");
        self.session.flush().expect("type");
    }

    /// Types Ctrl and `c` (`'c'` is Ctrl-C).
    pub fn control(&mut self, c: char) {
        self.session.send_control(c).expect("type");
    }

    /// Waits for the end; returns the exit code and what was shown.
    pub fn finish(mut self) -> (i32, String) {
        let rest = self.session.exp_eof().expect("the end");
        self.transcript.push_str(&rest);
        let code = match self.session.process().wait().expect("wait") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("cairn did not exit: {other:?}\n{}", self.transcript),
        };
        (code, self.transcript)
    }
}
