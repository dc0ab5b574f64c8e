//! What every scenario shares: the seeded generator and the tally, a command killed after a
//! delay, and the checks made after each fault.

use std::fmt::Display;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_e2e::Run;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The longest any one command may take before the soak calls it hung and kills it.
const HUNG: Duration = Duration::from_secs(180);

/// What went wrong, as the table counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The vault does not open, or refuses a new case.
    Bricked,
    /// Something a command or the server acknowledged is gone.
    Lost,
    /// Something is stored twice.
    Duplicate,
    /// Two replicas show a case differently, or one lacks it.
    Mismatch,
    /// A command said something that is not what happened.
    Untrue,
    /// Anything else: `cairn check` red, a sync that never completes once the faults end.
    Other,
}

/// One scenario's counts: the columns of docs/RELIABILITY.md's table.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub runs: u64,
    /// Processes killed (SIGKILL) while they ran.
    pub kills: u64,
    /// Connections a relay cut.
    pub cuts: u64,
    pub bricked: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub mismatches: u64,
    pub untrue: u64,
    pub other: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.runs += other.runs;
        self.kills += other.kills;
        self.cuts += other.cuts;
        self.bricked += other.bricked;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.mismatches += other.mismatches;
        self.untrue += other.untrue;
        self.other += other.other;
    }

    pub fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.runs,
            self.kills,
            self.cuts,
            self.bricked,
            self.lost,
            self.duplicates,
            self.mismatches,
            self.untrue,
            self.other
        )
    }

    pub const HEADER: &'static str = "| scenario | runs | kills | cuts | bricked vaults | lost acknowledged | duplicates | replica mismatches | untrue messages | other failures |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
}

/// The base seed: `CAIRN_SOAK_SEED`, or a fresh one.
pub fn base_seed() -> u64 {
    match std::env::var("CAIRN_SOAK_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CAIRN_SOAK_SEED must be a number, not {text:?}")),
        Err(_) => rand::random(),
    }
}

/// The number of kills the long mode reaches, if `CAIRN_SOAK=long`.
pub fn long_target() -> Option<u64> {
    if std::env::var("CAIRN_SOAK").ok().as_deref() != Some("long") {
        return None;
    }
    Some(match std::env::var("CAIRN_SOAK_KILLS") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CAIRN_SOAK_KILLS must be a number, not {text:?}")),
        Err(_) => 1000,
    })
}

/// One scenario's run of the soak: its generator, where it is, and what it found.
pub struct Soak {
    pub name: &'static str,
    pub seed: u64,
    pub rng: StdRng,
    pub long: bool,
    pub tally: Tally,
    /// The run count at which the current plan ends (see [`Soak::plan`]).
    target: u64,
    findings: Vec<String>,
    step: String,
    started: Instant,
    /// Markers made so far (each case the soak makes carries one).
    markers: u64,
}

impl Soak {
    pub fn new(name: &'static str, seed: u64, long: bool) -> Soak {
        // Each scenario draws from its own generator, so that one's draws do not move another's.
        let mixed = name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        println!("soak {name}: seed {seed} (replay with CAIRN_SOAK_SEED={seed})");
        Soak {
            name,
            seed,
            rng: StdRng::seed_from_u64(mixed),
            long,
            tally: Tally::default(),
            target: 0,
            findings: Vec::new(),
            step: "start".into(),
            started: Instant::now(),
            markers: 0,
        }
    }

    /// Sets how many more runs to make: `short` in the short mode, `long` in the long one.
    pub fn plan(&mut self, short: u64, long: u64) {
        self.target = self.tally.runs + if self.long { long } else { short };
    }

    /// Whether the plan has runs left.
    pub fn more(&self) -> bool {
        self.tally.runs < self.target
    }

    /// Whether to converge and compare the replicas, `since` runs after the last time: at the
    /// end of a world, and every few runs in the long mode.
    pub fn verify_due(&self, since: u32) -> bool {
        !self.more() || (self.long && since >= 4)
    }

    /// Starts a run.
    pub fn run(&mut self) {
        self.tally.runs += 1;
    }

    /// Says what the scenario does now, so that a failure can be followed and replayed.
    pub fn step(&mut self, what: impl Display) {
        self.step = what.to_string();
        println!(
            "soak {} seed={} run={} t={:.1}s: {}",
            self.name,
            self.seed,
            self.tally.runs,
            self.started.elapsed().as_secs_f64(),
            self.step
        );
    }

    /// Records a fault.
    pub fn found(&mut self, fault: Fault, detail: impl Display) {
        self.found_n(fault, 1, detail);
    }

    /// Records `n` faults of one kind, told once.
    pub fn found_n(&mut self, fault: Fault, n: u64, detail: impl Display) {
        let t = &mut self.tally;
        *match fault {
            Fault::Bricked => &mut t.bricked,
            Fault::Lost => &mut t.lost,
            Fault::Duplicate => &mut t.duplicates,
            Fault::Mismatch => &mut t.mismatches,
            Fault::Untrue => &mut t.untrue,
            Fault::Other => &mut t.other,
        } += n;
        let line = format!(
            "{} seed={} run={} step `{}`: {fault:?}: {detail}",
            self.name, self.seed, self.tally.runs, self.step
        );
        println!("soak FOUND {line}");
        self.findings.push(line);
    }

    /// A fraction in `range`, for where a kill lands.
    pub fn fraction(&mut self, range: std::ops::Range<f64>) -> f64 {
        self.rng.gen_range(range)
    }

    /// `typical` scaled by a fraction drawn from `range`.
    pub fn delay(&mut self, typical: Duration, range: std::ops::Range<f64>) -> Duration {
        typical.mul_f64(self.fraction(range))
    }

    /// A new marker, unique in this process: every case the soak makes carries one, so that
    /// each can be found (once) in every replica.
    pub fn marker(&mut self) -> String {
        self.markers += 1;
        format!("SOAK[{}/{}/{}]", self.name, self.seed, self.markers)
    }

    /// The findings so far.
    pub fn findings(&self) -> &[String] {
        &self.findings
    }

    /// Fails the test with every finding, if any.
    pub fn finish(self) {
        println!(
            "soak {} done in {:.1}s:\n{}\n{}",
            self.name,
            self.started.elapsed().as_secs_f64(),
            Tally::HEADER,
            self.tally.row(self.name)
        );
        assert!(
            self.findings.is_empty(),
            "soak {} found {} fault(s) (replay with CAIRN_SOAK_SEED={}):\n{}",
            self.name,
            self.findings.len(),
            self.seed,
            self.findings.join("\n")
        );
    }
}

/// How a command ended.
pub struct Ended {
    pub run: Run,
    /// Killed by the soak while it still ran.
    pub killed: bool,
    /// From its start to its end.
    pub took: Duration,
}

/// How long a command typically runs, so that kills land within it: the duration measured
/// first, then moved halfway towards each run that ended on its own.
pub struct Typical(pub Duration);

impl Typical {
    pub fn observe(&mut self, ended: &Ended) {
        if !ended.killed && ended.run.code == 0 {
            self.0 = (self.0 + ended.took) / 2;
        }
    }

    /// A point within it, drawn from `range` (fractions of it).
    pub fn draw(&self, soak: &mut Soak, range: std::ops::Range<f64>) -> Duration {
        soak.delay(self.0.max(Duration::from_millis(50)), range)
    }
}

/// A command started by the soak, its output read as it comes (so that it never blocks on a
/// full pipe).
pub struct Running {
    child: Child,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
    started: Instant,
}

fn reader(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut stream) = stream {
            let _ = stream.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a command");
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        Running {
            child,
            out,
            err,
            started: Instant::now(),
        }
    }

    /// Like [`Running::spawn`] with standard output already given (stdout is not read).
    pub fn spawn_with_stdout(mut cmd: Command, stdout: Stdio) -> Running {
        let mut child = cmd
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a command");
        let err = reader(child.stderr.take());
        Running {
            child,
            out: reader(None::<std::fs::File>),
            err,
            started: Instant::now(),
        }
    }

    /// Whether it has ended.
    pub fn ended(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL after `delay` unless it ended before.
    pub fn kill_after(mut self, delay: Duration) -> Ended {
        let deadline = self.started + delay;
        while Instant::now() < deadline {
            if self.ended() {
                return self.finish(false);
            }
            std::thread::sleep(Duration::from_millis(2).min(deadline - Instant::now()));
        }
        let killed = !self.ended();
        let _ = self.child.kill();
        self.finish(killed)
    }

    /// Waits for it to end (killing it, as hung, after a long while).
    pub fn wait(mut self) -> Ended {
        while self.started.elapsed() < HUNG {
            if self.ended() {
                return self.finish(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let mut ended = self.finish(false);
        ended.run.stderr.push_str("\n[soak: hung, killed]");
        ended.run.code = -2;
        ended
    }

    fn finish(mut self, killed: bool) -> Ended {
        let status = self.child.wait().expect("wait for a command");
        let took = self.started.elapsed();
        Ended {
            run: Run {
                code: status.code().unwrap_or(-1),
                stdout: self.out.join().unwrap_or_default(),
                stderr: self.err.join().unwrap_or_default(),
            },
            killed,
            took,
        }
    }
}

/// Runs a command to its end (bounded).
pub fn run(cmd: Command) -> Ended {
    Running::spawn(cmd).wait()
}

/// "sent N, received N, refused N, still pending N" of a sync's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncLine {
    pub sent: u64,
    pub received: u64,
    pub refused: u64,
    pub pending: u64,
    /// Attachments still to move ("waiting" or "failed" above zero).
    pub attachments_open: bool,
}

impl SyncLine {
    pub fn parse(stdout: &str) -> Option<SyncLine> {
        let line = stdout.lines().find(|l| l.starts_with("sent "))?;
        let number = |label: &str| -> Option<u64> {
            let at = line.find(label)? + label.len();
            line[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        let open = |label: &str| number(label).is_some_and(|n| n > 0);
        Some(SyncLine {
            sent: number("sent ")?,
            received: number("received ")?,
            refused: number("refused ")?,
            pending: number("still pending ")?,
            attachments_open: open("failed ") || open("waiting "),
        })
    }

    /// Nothing moved and nothing is left.
    pub fn quiet(&self) -> bool {
        self.sent == 0 && self.received == 0 && self.pending == 0 && !self.attachments_open
    }
}

/// Checks what a command that ended on its own printed: a failure says one sentence of what
/// happened (no library's URL, no panic, no debug dump) and prints nothing success-shaped.
/// `expect` is a word the error must hold, when the soak knows what happened (disk full).
pub fn check_message(soak: &mut Soak, what: &str, ended: &Ended, expect: Option<&[&str]>) {
    if ended.killed {
        return;
    }
    let run = &ended.run;
    let stderr = run.stderr.trim();
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "Error {",
        "Custom {",
    ] {
        if stderr.contains(bad) {
            soak.found(Fault::Untrue, format!("{what} printed `{bad}`: {stderr}"));
        }
    }
    for url in stderr.match_indices("://").map(|(i, _)| &stderr[i + 3..]) {
        if !(url.starts_with("127.0.0.1") || url.starts_with("[::1]")) {
            soak.found(Fault::Untrue, format!("{what} printed a URL: {stderr}"));
            break;
        }
    }
    if run.code == 0 {
        return;
    }
    if run.code == -2 {
        soak.found(Fault::Other, format!("{what} hung: {stderr}"));
        return;
    }
    if run.code != 1 {
        soak.found(
            Fault::Untrue,
            format!("{what} exited {} (a failure is 1): {stderr}", run.code),
        );
    }
    let stdout = run.stdout.trim();
    if stdout.contains("sent ") || stdout.contains("imported ") || stdout.contains("ok:") {
        soak.found(
            Fault::Untrue,
            format!(
                "{what} failed but printed a success-shaped summary `{stdout}`; error: {stderr}"
            ),
        );
    }
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("cairn: warning:"))
        .collect();
    if errors.len() != 1 || !errors[0].starts_with("cairn: ") {
        soak.found(
            Fault::Untrue,
            format!("{what} failed without one error sentence: {stderr:?}"),
        );
    }
    if let Some(words) = expect {
        let lower = stderr.to_lowercase();
        if !words.iter().any(|w| lower.contains(w)) {
            soak.found(
                Fault::Untrue,
                format!("{what} failed without saying so ({words:?}): {stderr}"),
            );
        }
    }
}
