//! Harness for Cairn's end-to-end tests: they run the real `cairn` binary (and, for sync, the
//! real `cairn-server`) in temporary homes, exactly as a person would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The passphrase every test vault uses.
pub const PASSPHRASE: &str = "correct horse battery staple";

pub use cairn_testkit::bin;

pub mod pty;

/// The output of one `cairn` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// One device: a temporary home with a vault in it.
pub struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    /// A home with no vault yet.
    pub fn empty() -> Device {
        Device {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A home with a field vault of `team`, at a low scrypt cost so tests run fast.
    pub fn init(team: &str) -> Device {
        let device = Device::empty();
        device.ok(&["init", "--team", team, "--kdf-cost", "4"]);
        device
    }

    /// The vault's directory.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A `cairn` command for this home, passphrase from the environment, no terminal.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("cairn"));
        cmd.args(args)
            .env("CAIRN_HOME", self.home())
            .env("CAIRN_PASSPHRASE", PASSPHRASE)
            .env_remove("CAIRN_PASSPHRASE_FILE")
            .env_remove("CAIRN_CONFIG")
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `cairn` with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run cairn").into()
    }

    /// Runs `cairn` and asserts it succeeded; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
        run.stdout
    }

    /// Runs `cairn ... --json` and parses the output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {out}"))
    }

    /// Runs `cairn case new ARGS...` and returns the reference it printed.
    pub fn new_case(&self, args: &[&str]) -> String {
        let mut all = vec!["case", "new"];
        all.extend_from_slice(args);
        self.ok(&all).trim().to_string()
    }

    /// How many cases `cairn case list` shows.
    pub fn case_count(&self) -> usize {
        self.json(&["case", "list"]).as_array().map_or(0, Vec::len)
    }

    /// Every file under the home with its bytes, to assert that a command changed nothing.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(&self.home())
    }
}

/// Every regular file under `dir` with its bytes.
pub fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// The text of the one QR code in a grayscale PNG file, as a camera would read it.
pub fn read_qr(path: &Path) -> String {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("the QR code was written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("one frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (width, height) = (info.width as usize, info.height as usize);
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, read) = grids[0].decode().expect("the code decodes");
    read
}

/// True when `needle` occurs in `haystack` as UTF-8, UTF-16 (either order), or in any letter case.
pub fn contains_any_encoding(haystack: &[u8], needle: &str) -> bool {
    let lower = haystack.to_ascii_lowercase();
    let mut forms: Vec<Vec<u8>> = vec![needle.to_ascii_lowercase().into_bytes()];
    let utf16 = |big: bool| -> Vec<u8> {
        needle
            .to_ascii_lowercase()
            .encode_utf16()
            .flat_map(|u| {
                if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    };
    forms.push(utf16(false));
    forms.push(utf16(true));
    forms
        .iter()
        .any(|f| lower.windows(f.len()).any(|w| w == f.as_slice()))
}

/// A real `cairn-server` process for the office (see [`cairn_testkit::ServerProcess`]),
/// with what a compromised server could do to its database.
pub struct Server(cairn_testkit::ServerProcess);

impl Server {
    /// A server for `office` (its keys from `cairn office pubkey`), started.
    pub fn start(office: &Device) -> Server {
        let key = office.ok(&["office", "pubkey"]);
        Server(cairn_testkit::ServerDir::init(key).spawn())
    }

    /// The office admits `device` into `team` (pointing it at `url`: the server or a proxy)
    /// and syncs, so the server learns the admission; returns the admission line.
    pub fn admit(&self, office: &Device, device: &Device, team: &str, url: &str) -> String {
        admit(office, device, team, url, self.fingerprint(), &[])
    }

    /// Admits `device` into `team` and joins it through `url`.
    pub fn join(&self, office: &Device, device: &Device, team: &str, url: &str) {
        let admission = self.admit(office, device, team, url);
        device.ok(&["join", &admission]);
    }
}

impl std::ops::Deref for Server {
    type Target = cairn_testkit::ServerProcess;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// `cairn id` on the device, `cairn office admit` with any fingerprint and extra flags, then
/// `cairn sync` on the office (its first sync may fail if `url` leads nowhere); returns the
/// admission line. Team `office` admits a staff device (`--staff`).
pub fn admit(
    office: &Device,
    device: &Device,
    team: &str,
    url: &str,
    fingerprint: &str,
    extra: &[&str],
) -> String {
    let id = device.json(&["id"]);
    let line = id["line"]
        .as_str()
        .expect("cairn id --json has a line")
        .to_string();
    let into = if team == "office" {
        vec!["--staff"]
    } else {
        vec!["--team", team]
    };
    let mut args = vec!["office", "admit", &line];
    args.extend(into);
    args.extend(["--server", url, "--fingerprint", fingerprint]);
    args.extend_from_slice(extra);
    let admission = office.ok(&args).trim().to_string();
    let _ = office.run(&["sync"]);
    admission
}

impl Device {
    /// The office's vault.
    pub fn office() -> Device {
        let device = Device::empty();
        device.ok(&["init", "--office", "--kdf-cost", "4"]);
        device
    }

    /// A staff device's vault named `name` (admit it into team `office`).
    pub fn staff(name: &str) -> Device {
        let device = Device::empty();
        device.ok(&["init", "--staff", "--name", name, "--kdf-cost", "4"]);
        device
    }
}

impl Device {
    /// This device's keys, unlocked from its key file as `cairn` would (to forge in tests).
    pub fn keys(&self) -> cairn_crypto::DeviceKeys {
        let file = std::fs::read(self.home().join("keys.age")).expect("key file");
        cairn_crypto::unlock_keys(
            &file,
            &cairn_crypto::SecretString::from(PASSPHRASE.to_owned()),
        )
        .expect("unlock")
    }

    /// This device's vault, opened as `cairn` would (no `cairn` may run on it meanwhile).
    pub fn vault(&self) -> cairn_vault::Vault {
        cairn_vault::Home::new(self.home())
            .open(&cairn_crypto::SecretString::from(PASSPHRASE.to_owned()))
            .expect("open vault")
    }

    /// The team keys this device's vault holds, read as `cairn` would.
    pub fn keyring(&self) -> cairn_crypto::Keyring {
        self.vault().keyring().clone()
    }

    /// The newest key this device holds of `team`.
    pub fn team_key(&self, team: &str) -> cairn_crypto::TeamKey {
        let ring = self.keyring();
        let key = ring.newest(team).expect("a key of the team");
        cairn_crypto::TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes())
    }
}

/// A hostile device: enrolled and synced like any other, but it seals whatever bytes it likes
/// as its next change and lets the real `cairn sync` push them.
impl Device {
    /// The raw Automerge changes of case `id` as this device holds them (decrypted).
    pub fn raw_changes(&self, id: uuid::Uuid) -> Vec<Vec<u8>> {
        let keys = self.keyring();
        let hex: String = id.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        self.sealed_changes(&format!("case_id = x'{hex}'"))
            .into_iter()
            .map(|(_, _, bytes)| {
                let sealed = cairn_crypto::SealedChange::from_bytes(&bytes).expect("sealed");
                sealed.open(&keys).expect("readable")
            })
            .collect()
    }

    /// The sealed changes of this device's log that `filter` (an SQL condition on the
    /// `changes` table) picks, in the order they were stored, as they travel: the vault keeps
    /// each encrypted under its own key (`cairn_vault::at_rest`).
    pub fn sealed_changes(&self, filter: &str) -> Vec<(cairn_crypto::DeviceId, u64, Vec<u8>)> {
        let cipher = self.keys().local_cipher();
        let conn = rusqlite::Connection::open(self.home().join("vault.db")).expect("vault db");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT author, seq, sealed FROM changes WHERE {filter} ORDER BY rowid"
            ))
            .expect("query");
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .expect("rows");
        rows.map(|row| {
            let (author, seq, stored) = row.expect("row");
            let author = cairn_crypto::DeviceId(author.try_into().expect("32-byte author"));
            let (sealed, _) =
                cairn_vault::at_rest::open_change(&cipher, &author, seq as u64, &stored)
                    .expect("stored change");
            (author, seq as u64, sealed)
        })
        .collect()
    }

    /// Replaces change `seq` of `author` in this device's log with `sealed` (any bytes),
    /// stored as the vault stores it: what a forger who held the vault key could do.
    pub fn replace_sealed_change(&self, author: &cairn_crypto::DeviceId, seq: u64, sealed: &[u8]) {
        let cipher = self.keys().local_cipher();
        let conn = rusqlite::Connection::open(self.home().join("vault.db")).expect("vault db");
        let stored: Vec<u8> = conn
            .query_row(
                "SELECT sealed FROM changes WHERE author = ?1 AND seq = ?2",
                rusqlite::params![author.0.as_slice(), seq as i64],
                |r| r.get(0),
            )
            .expect("the change");
        let (_, at) = cairn_vault::at_rest::open_change(&cipher, author, seq, &stored)
            .expect("stored change");
        let stored =
            cairn_vault::at_rest::seal_change(&cipher, author, seq, at, sealed).expect("store");
        conn.execute(
            "UPDATE changes SET sealed = ?3 WHERE author = ?1 AND seq = ?2",
            rusqlite::params![author.0.as_slice(), seq as i64, stored],
        )
        .expect("replace");
    }

    /// Seals `plain` (any bytes) as this device's next change to case `id`, under its team's
    /// newest key, and puts it in the outbox for the next `cairn sync` to push.
    pub fn smuggle(&self, id: uuid::Uuid, plain: &[u8], team: &str) {
        let keys = self.keys();
        let key = self.team_key(team);
        let conn = rusqlite::Connection::open(self.home().join("vault.db")).expect("vault db");
        let seq: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE author = ?1",
                [keys.id().0.as_slice()],
                |r| r.get(0),
            )
            .expect("next seq");
        let sealed = cairn_crypto::SealedChange::seal(
            &keys,
            &key,
            cairn_crypto::SealedKind::CaseChange,
            *id.as_bytes(),
            seq as u64,
            plain,
        )
        .expect("seal");
        // Through the vault, whose keys a hostile device holds: its head stays in step.
        let stored = cairn_vault::at_rest::seal_change(
            &keys.local_cipher(),
            &keys.id(),
            seq as u64,
            None,
            &sealed.to_bytes(),
        )
        .expect("store");
        let mut vault = cairn_vault::Home::new(self.home())
            .open_unlocked(self.keys())
            .expect("open vault");
        vault
            .execute_as_owner(
                "INSERT INTO changes (author, seq, case_id, sealed, ops) VALUES (?1, ?2, ?3, ?4, 0)",
                rusqlite::params![
                    keys.id().0.as_slice(),
                    seq,
                    id.as_bytes().as_slice(),
                    stored
                ],
            )
            .expect("smuggle");
    }

    /// Runs `cairn -v ARGS...`, asserts success, and returns standard output with the peak
    /// memory (KiB) the command reported for itself.
    pub fn ok_measured(&self, args: &[&str]) -> (String, u64) {
        let (run, kib) = self.run_verbose_measured(args, &[]);
        assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
        (run.stdout, kib)
    }

    /// Runs `cairn ARGS...` (successful or not) with its peak RSS in KiB: as
    /// `/usr/bin/time -f %M` reports it for the child, or, where that tool is missing, what
    /// `cairn -v` reports of itself (VmHWM).
    pub fn run_measured(&self, args: &[&str]) -> (Run, u64) {
        self.run_measured_with(args, &[])
    }

    /// [`Device::run_measured`] with more environment variables (a failpoint, say).
    pub fn run_measured_with(&self, args: &[&str], env: &[(&str, &str)]) -> (Run, u64) {
        let time = Path::new("/usr/bin/time");
        if !time.exists() {
            return self.run_verbose_measured(args, env);
        }
        let report = self.dir.path().join("time.report");
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let program = cmd.get_program().to_owned();
        let mut timed = Command::new(time);
        timed
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&report)
            .arg(program)
            .args(args);
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => timed.env(key, value),
                None => timed.env_remove(key),
            };
        }
        let run: Run = timed
            .stdin(Stdio::null())
            .output()
            .expect("run cairn under time")
            .into();
        let kib = std::fs::read_to_string(&report)
            .expect("time's report")
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .expect("a peak RSS in KiB");
        (run, kib)
    }

    fn run_verbose_measured(&self, args: &[&str], env: &[(&str, &str)]) -> (Run, u64) {
        let mut all = vec!["-v"];
        all.extend_from_slice(args);
        let run: Run = (self.command(&all).envs(env.iter().copied()).output())
            .expect("run cairn")
            .into();
        let kib = run
            .stderr
            .lines()
            .filter(|l| l.contains("peak memory"))
            .find_map(|l| {
                let (_, rest) = l.split_once("peak_rss_kib=")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no peak memory reported: {}", run.stderr));
        (run, kib)
    }
}

/// A valid case change sealed by `keys` as change number `seq`, under team key `key`.
pub fn sealed_case(
    keys: &cairn_crypto::DeviceKeys,
    key: &cairn_crypto::TeamKey,
    seq: u64,
    marker: &str,
) -> cairn_crypto::SealedChange {
    sealed_case_as(keys, key, seq, marker, uuid::Uuid::new_v4(), "T03")
}

/// Like [`sealed_case`], creating case `id` with a reference of `team`.
pub fn sealed_case_as(
    keys: &cairn_crypto::DeviceKeys,
    key: &cairn_crypto::TeamKey,
    seq: u64,
    marker: &str,
    id: uuid::Uuid,
    team: &str,
) -> cairn_crypto::SealedChange {
    let reference = cairn_model::Reference {
        place: "KHR".into(),
        team: team.into(),
        device_tag: keys.id().tag(),
        number: seq as u32,
    };
    let (_, change) = cairn_model::CaseDoc::create(
        &keys.id().0,
        id,
        &reference,
        cairn_model::Kind::Killed,
        &keys.id().short(),
        time::OffsetDateTime::now_utc(),
        &[cairn_model::Edit::Note {
            text: marker.to_owned(),
        }],
    )
    .expect("case");
    cairn_crypto::SealedChange::seal(
        keys,
        key,
        cairn_crypto::SealedKind::CaseChange,
        *id.as_bytes(),
        seq,
        &change,
    )
    .expect("seal")
}

impl Server {
    /// Writes a change straight into the server's SQLite database, as a compromised server
    /// could, bypassing every check the server makes.
    pub fn inject(&self, change: &cairn_crypto::SealedChange) {
        let conn = self.dir().db();
        conn.execute(
            "INSERT INTO changes (author, seq, case_id, team, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                change.author.0.as_slice(),
                change.seq as i64,
                change.case_id.as_slice(),
                change.team,
                change.to_bytes()
            ],
        )
        .expect("inject");
    }

    /// Runs SQL on the server's database, as a compromised server could.
    pub fn edit_db(&self, sql: &str) {
        let conn = self.dir().db();
        conn.execute_batch(sql).expect("edit server db");
    }

    /// Serves an already stored change again under a new server number (a replay).
    pub fn replay(&self, author: &cairn_crypto::DeviceId, seq: u64) {
        let conn = self.dir().db();
        let (case_id, team, bytes): (Vec<u8>, String, Vec<u8>) = conn
            .query_row(
                "SELECT case_id, team, bytes FROM changes WHERE author = ?1 AND seq = ?2",
                rusqlite::params![author.0.as_slice(), seq as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("stored change");
        conn.execute(
            "DELETE FROM changes WHERE author = ?1 AND seq = ?2",
            rusqlite::params![author.0.as_slice(), seq as i64],
        )
        .expect("delete");
        conn.execute(
            "INSERT INTO changes (author, seq, case_id, team, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![author.0.as_slice(), seq as i64, case_id, team, bytes],
        )
        .expect("reinsert");
    }
}

impl Device {
    /// [`Device::init`] with the home under `parent` (a small disk, for one).
    pub fn init_in(team: &str, parent: &Path) -> Device {
        let device = Device {
            dir: tempfile::tempdir_in(parent).expect("temp dir"),
        };
        device.ok(&["init", "--team", team, "--kdf-cost", "4"]);
        device
    }

    /// Case `id` as this device holds it (its document, which may have come whole in an
    /// office checkpoint, and its log, smuggled changes included), as raw Automerge writing as
    /// this device: what a hostile teammate forges its changes on.
    pub fn raw_doc(&self, id: uuid::Uuid) -> automerge::Automerge {
        let actor = automerge::ActorId::from(self.keys().id().0.as_slice());
        let mut doc = automerge::Automerge::new().with_actor(actor);
        let held = self
            .vault()
            .case(&id.to_string())
            .map(|case| case.changes())
            .unwrap_or_default();
        let changes = held
            .iter()
            .chain(self.raw_changes(id).iter())
            .map(|raw| automerge::Change::try_from(raw.as_slice()).expect("change"))
            .collect::<Vec<_>>();
        doc.apply_changes(changes).expect("apply");
        doc
    }

    /// Turns this device's vault back into one made before vaults kept a head, as an earlier
    /// cairn left it: format 3, no head tables, head record or head file.
    pub fn as_made_before_heads(&self) {
        cairn_vault::as_made_before_heads(&cairn_vault::Home::new(self.home()), &self.keys())
            .expect("a vault made before heads");
    }

    /// Writes `meta` record `key` again one generation ahead of `versions`, straight into
    /// vault.db, as the first of an earlier cairn's two statements did (each record is sealed
    /// for `meta:KEY:VERSION`).
    pub fn write_record_ahead(&self, key: &str) {
        let cipher = self.keys().local_cipher();
        let conn = rusqlite::Connection::open(self.home().join("vault.db")).expect("vault db");
        let row = |key: &str| -> (i64, Vec<u8>) {
            conn.query_row(
                "SELECT version, value FROM meta WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row")
        };
        let (generation, _) = row("versions");
        let (version, sealed) = row(key);
        let plain = cipher
            .decrypt(format!("meta:{key}:{version}").as_bytes(), &sealed)
            .expect("the record");
        let ahead = generation + 1;
        let resealed = cipher
            .encrypt(format!("meta:{key}:{ahead}").as_bytes(), &plain)
            .expect("seal");
        conn.execute(
            "UPDATE meta SET version = ?1, value = ?2 WHERE key = ?3",
            rusqlite::params![ahead, resealed, key],
        )
        .expect("write ahead");
    }

    /// The id of case `reference` (from `case show --json`).
    pub fn case_id(&self, reference: &str) -> uuid::Uuid {
        self.json(&["case", "show", reference])["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("case id")
    }
}

impl Server {
    /// [`Server::start`] with the server's directory (and database) under `root`.
    pub fn start_in(office: &Device, root: &Path) -> Server {
        let key = office.ok(&["office", "pubkey"]);
        Server(cairn_testkit::ServerDir::init_in(root, key).spawn())
    }
}

/// An edition of every case `vault` holds, counted over 2020 with alleged cases, made now:
/// what `cairn report publish` freezes, built with the library.
pub fn edition_of(vault: &cairn_vault::Vault, title: &str) -> cairn_model::edition::Edition {
    use cairn_model::report::{Options, Period, Taken};
    let cases: Vec<_> = vault
        .list()
        .expect("list")
        .into_iter()
        .map(|mut s| {
            let heads = std::mem::take(&mut s.heads);
            (s.report_case(), heads)
        })
        .collect();
    let day = |d: &str| cairn_model::report::parse_day(d).expect("a day");
    let period = Period::new(day("2020-01-01"), day("2020-12-31")).expect("a period");
    let options = Options {
        include_alleged: true,
        by: None,
    };
    let taken = Taken {
        made_at: time::OffsetDateTime::now_utc(),
        data_as_of: None,
    };
    let id = uuid::Uuid::new_v4().to_string();
    cairn_model::edition::Edition::freeze(id, title.into(), &cases, period, options, &taken)
        .expect("an edition")
}

/// One change written by `f` on a copy of `base`, dated now, as raw bytes: a hostile
/// teammate's forgery, a hand-made change no honest client would make.
pub fn forge(
    base: &automerge::Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    let mut doc = base.clone();
    let mut tx = doc.transaction();
    f(&mut tx);
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let options = automerge::transaction::CommitOptions::default().with_time(now as i64);
    let (hash, _) = tx.commit_with(options);
    let hash = hash.expect("a change");
    automerge::ReadDoc::get_change_by_hash(&doc, &hash)
        .expect("change")
        .raw_bytes()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::contains_any_encoding;

    #[test]
    fn the_marker_search_finds_every_encoding_it_claims() {
        let utf16le: Vec<u8> = "xxMARKERyy"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16be: Vec<u8> = "xxMarkeryy"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert!(contains_any_encoding(b"..marker..", "Marker"));
        assert!(contains_any_encoding(&utf16le, "marker"));
        assert!(contains_any_encoding(&utf16be, "marker"));
        assert!(!contains_any_encoding(b"m a r k e r", "marker"));
    }
}
