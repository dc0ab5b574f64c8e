//! The real `cairn` on a pseudo-terminal of its own, typed into as a person would (the guided
//! form, `office match --review`).

use std::process::Command;

use rexpect::process::{Signal, WaitStatus};
use rexpect::session::PtySession;

use crate::Device;

/// How long one prompt may take to appear before the test fails (instead of hanging); far
/// more than any prompt needs, for a machine busy building.
const PROMPT_TIMEOUT_MS: u64 = 60_000;

/// `cairn ARGS` on a pseudo-terminal of its own, 200 columns wide so that no message the test
/// waits for is wrapped, with the device's clock at +03:00. With `ask_passphrase` the
/// passphrase is asked on the terminal rather than found in the environment.
pub fn spawn(device: &Device, args: &[&str], ask_passphrase: bool) -> Pty {
    spawn_with(device, args, ask_passphrase, &[])
}

/// [`spawn`] with more variables in its environment (`CAIRN_FAILPOINT`).
pub fn spawn_with(
    device: &Device,
    args: &[&str],
    ask_passphrase: bool,
    env: &[(&str, &str)],
) -> Pty {
    let mut cairn = device.command(args);
    cairn.envs(env.iter().copied());
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
    pub fn finish(self) -> (i32, String) {
        match self.end() {
            (WaitStatus::Exited(_, code), transcript) => (code, transcript),
            (other, transcript) => panic!("cairn did not exit: {other:?}\n{transcript}"),
        }
    }

    /// Waits for the end of a process that stopped itself dead (a failpoint); returns what
    /// was shown.
    pub fn finish_killed(self) -> String {
        match self.end() {
            (WaitStatus::Signaled(_, Signal::SIGKILL, _), transcript) => transcript,
            (other, transcript) => panic!("cairn was not killed: {other:?}\n{transcript}"),
        }
    }

    /// Kills it dead (SIGKILL: as a power cut, nothing runs after) where it stands.
    pub fn kill(mut self) -> String {
        self.session
            .process_mut()
            .signal(Signal::SIGKILL)
            .expect("kill");
        self.finish_killed()
    }

    fn end(mut self) -> (WaitStatus, String) {
        let rest = self.session.exp_eof().expect("the end");
        self.transcript.push_str(&rest);
        let status = self.session.process().wait().expect("wait");
        (status, self.transcript)
    }
}
