//! One scenario's world: the office, its server(s) and field devices, what was acknowledged,
//! and the checks that hold them to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_e2e::Device;
use cairn_testkit::{ServerDir, ServerProcess};
use rand::Rng;

use super::harness::{check_message, run, Ended, Fault, Soak, SyncLine};

/// The rows each author has in the server's database: (rows, distinct numbers).
pub type Stored = BTreeMap<Vec<u8>, (u64, u64)>;

/// Where a server keeps its changes, to count them behind its back.
#[derive(Clone)]
pub enum Store {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Store {
    pub fn stored(&self) -> Stored {
        const SQL: &str =
            "SELECT author, COUNT(*), COUNT(DISTINCT seq) FROM changes GROUP BY author";
        match self {
            Store::Sqlite(path) => {
                let conn = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .expect("open the server's database");
                conn.busy_timeout(Duration::from_secs(30))
                    .expect("busy timeout");
                let mut stmt = conn.prepare(SQL).expect("count query");
                let rows = stmt
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
                        ))
                    })
                    .expect("count rows");
                rows.map(|r| r.expect("a count")).collect()
            }
            Store::Postgres(url) => super::postgres::query(url, SQL)
                .into_iter()
                .map(|(author, rows, distinct)| (author, (rows as u64, distinct as u64)))
                .collect(),
        }
    }
}

/// A field device or the office, with what the soak knows of it.
pub struct Member {
    pub name: String,
    pub device: Device,
    pub id: Vec<u8>,
    pub office: bool,
    /// The largest file its commands may write, where a small disk is a size limit
    /// (see [`super::disk`]).
    pub file_limit: std::cell::Cell<Option<u64>>,
}

impl Member {
    pub fn new(name: impl Into<String>, device: Device, office: bool) -> Member {
        let id = device.json(&["status"])["device"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .expect("a device id");
        Member {
            name: name.into(),
            device,
            id,
            office,
            file_limit: std::cell::Cell::new(None),
        }
    }

    /// A `cairn` command of this member (under its file size limit, if it has one).
    pub fn command(&self, args: &[&str]) -> Command {
        let cmd = self.device.command(args);
        match self.file_limit.get() {
            Some(bytes) => super::disk::limited(&cmd, bytes),
            None => cmd,
        }
    }

    /// (own changes, others' changes) in its vault, read from the file.
    pub fn changes(&self) -> (u64, u64) {
        let path = self.device.home().join("vault.db");
        let Ok(conn) = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) else {
            return (0, 0);
        };
        let _ = conn.busy_timeout(Duration::from_secs(30));
        let count = |sql: &str| -> u64 {
            conn.query_row(sql, [self.id.as_slice()], |r| r.get::<_, i64>(0))
                .map_or(0, |n| n as u64)
        };
        (
            count("SELECT COUNT(*) FROM changes WHERE author = ?1"),
            count("SELECT COUNT(*) FROM changes WHERE author <> ?1"),
        )
    }

    /// Cases in its vault, read from the file.
    pub fn case_rows(&self) -> u64 {
        let path = self.device.home().join("vault.db");
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM cases", [], |r| r.get::<_, i64>(0)))
            .map_or(0, |n| n as u64)
    }

    pub fn sync(&self) -> Command {
        self.command(&["sync"])
    }
}

/// The office, the server(s) and the field devices of one scenario, and what was acknowledged.
pub struct World {
    pub office: Member,
    pub fields: Vec<Member>,
    pub store: Store,
    pub servers: Vec<ServerProcess>,
    /// Markers of cases whose making a command reported, and whether the office made them
    /// (its own cases, which field devices do not hold).
    pub acknowledged: Vec<(String, bool)>,
    /// The most each author was ever seen to have on the server (it must never drop).
    pub server_high: BTreeMap<Vec<u8>, u64>,
    /// Markers already reported lost or stored twice, so that each case counts once however
    /// many replicas and checks see it.
    reported: BTreeSet<(&'static str, String)>,
}

impl World {
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.fields.iter().chain(std::iter::once(&self.office))
    }

    pub fn member(&self, name: &str) -> &Member {
        self.members()
            .find(|m| m.name == name)
            .expect("a member of that name")
    }

    /// Records a new case on `who`, carrying a fresh marker; true if it was made.
    pub fn new_case(&mut self, soak: &mut Soak, who: &str, note_bytes: usize) -> bool {
        self.new_case_ref(soak, who, note_bytes).is_some()
    }

    /// [`World::new_case`], returning the reference it printed.
    pub fn new_case_ref(
        &mut self,
        soak: &mut Soak,
        who: &str,
        note_bytes: usize,
    ) -> Option<String> {
        let marker = soak.marker();
        let mut note = marker.clone();
        note.push_str(&"n".repeat(note_bytes));
        let cmd = self.member(who).command(&[
            "case", "new", "--kind", "killed", "--place", "KHR", "--note", &note,
        ]);
        let ended = run(cmd);
        check_message(soak, &format!("case new on {who}"), &ended, None);
        if ended.run.code != 0 {
            return None;
        }
        let office = self.member(who).office;
        self.acknowledged.push((marker, office));
        Some(ended.run.stdout.trim().to_string())
    }

    /// A sync of `who` to its end, with its message and its summary checked.
    pub fn sync(&mut self, soak: &mut Soak, who: &str) -> Option<SyncLine> {
        let member = self.member(who);
        let before = Counts::take(&self.store, member);
        let ended = run(member.sync());
        self.judge_sync(soak, who, &before, &ended, None)
    }

    /// Checks a sync's message and, when it says it succeeded, its numbers against what the
    /// server and the vault hold; returns its summary when it succeeded.
    pub fn judge_sync(
        &mut self,
        soak: &mut Soak,
        who: &str,
        before: &Counts,
        ended: &Ended,
        expect: Option<&[&str]>,
    ) -> Option<SyncLine> {
        check_message(soak, &format!("sync on {who}"), ended, expect);
        if ended.killed || ended.run.code != 0 {
            return None;
        }
        let member = self.member(who);
        let after = Counts::take(&self.store, member);
        let Some(line) = SyncLine::parse(&ended.run.stdout) else {
            soak.found(
                Fault::Untrue,
                format!(
                    "sync on {who} succeeded without its summary: {}",
                    ended.run.stdout
                ),
            );
            return None;
        };
        let mut wrong = Vec::new();
        // Every change this sync got onto the server counts as sent, also one whose answer
        // was lost (a cut link, a killed server) and that the retry found already there.
        if line.sent != after.server.saturating_sub(before.server) {
            wrong.push(format!(
                "sent {} but the server went from {} to {}",
                line.sent, before.server, after.server
            ));
        }
        if line.pending != after.own.saturating_sub(after.server) {
            wrong.push(format!(
                "still pending {} but the vault holds {} of its own and the server {}",
                line.pending, after.own, after.server
            ));
        }
        if line.received != after.others.saturating_sub(before.others) {
            wrong.push(format!(
                "received {} but the vault went from {} to {} changes of others",
                line.received, before.others, after.others
            ));
        }
        if !wrong.is_empty() {
            soak.found(
                Fault::Untrue,
                format!(
                    "sync on {who}: {}: {}",
                    wrong.join("; "),
                    ended.run.stdout.trim()
                ),
            );
        }
        Some(line)
    }

    /// After a fault on `who`: its vault opens, `cairn check` is green and says the truth, it
    /// takes a new case, and the server still holds what it acknowledged. False when the
    /// vault is bricked (the world cannot go on).
    pub fn after_fault(&mut self, soak: &mut Soak, who: &str) -> bool {
        let member = self.member(who);
        let status = run(member.command(&["status", "--json"]));
        let check = run(member.command(&["check", "--json"]));
        if status.run.code != 0 {
            soak.found(
                Fault::Bricked,
                format!(
                    "{who}'s vault no longer opens: {}",
                    status.run.stderr.trim()
                ),
            );
            if check.run.code == 0 {
                soak.found(
                    Fault::Untrue,
                    format!(
                        "`cairn check` on {who} says ok while status refuses the vault: {}",
                        check.run.stdout.trim()
                    ),
                );
            }
            return false;
        }
        check_message(soak, &format!("status on {who}"), &status, None);
        check_message(soak, &format!("check on {who}"), &check, None);
        if check.run.code != 0 {
            soak.found(
                Fault::Other,
                format!("`cairn check` on {who} failed: {}", check.run.stderr.trim()),
            );
        }
        let acked = serde_json::from_str::<serde_json::Value>(&status.run.stdout)
            .ok()
            .and_then(|v| v["acked"].as_u64())
            .unwrap_or(0);
        let id = member.id.clone();
        self.server_holds(soak);
        let on_server = self.server_high.get(&id).copied().unwrap_or(0);
        if acked > on_server {
            soak.found(
                Fault::Lost,
                format!(
                    "{who} was told the server holds {acked} of its changes; it holds {on_server}"
                ),
            );
        }
        if !self.new_case(soak, who, 0) {
            soak.found(Fault::Bricked, format!("{who}'s vault refuses a new case"));
            return false;
        }
        true
    }

    /// Counts the server's rows: none twice, and no author with fewer than it ever had.
    pub fn server_holds(&mut self, soak: &mut Soak) {
        let stored = self.store.stored();
        for (author, (rows, distinct)) in &stored {
            if rows != distinct {
                soak.found(
                    Fault::Duplicate,
                    format!("the server holds {rows} rows for {distinct} changes of one author"),
                );
            }
            self.server_high.entry(author.clone()).or_insert(0);
        }
        for (author, high) in &mut self.server_high {
            let now = stored.get(author).map_or(0, |(_, distinct)| *distinct);
            if now < *high {
                soak.found(
                    Fault::Lost,
                    format!("the server held {high} changes of one author, now {now}"),
                );
            }
            *high = (*high).max(now);
        }
    }

    /// Syncs everyone until a whole round moves nothing (bounded); false if it never does.
    pub fn converge(&mut self, soak: &mut Soak) -> bool {
        soak.step("converge: sync everyone until nothing moves");
        let names: Vec<String> = self.members().map(|m| m.name.clone()).collect();
        for _round in 0..8 {
            let mut quiet = true;
            for name in &names {
                match self.sync(soak, name) {
                    Some(line) => quiet &= line.quiet(),
                    None => quiet = false,
                }
            }
            if quiet {
                return true;
            }
        }
        soak.found(
            Fault::Other,
            "the syncs never completed once the faults ended",
        );
        false
    }

    /// Converges, then compares every replica: each case the same on every device that holds
    /// it (`cairn export` for all, `case show --json` for a few), every acknowledged marker in
    /// exactly one case at the office and at each field device, `cairn check` green.
    pub fn verify(&mut self, soak: &mut Soak) {
        if !self.converge(soak) {
            return;
        }
        soak.step("verify the replicas");
        self.server_holds(soak);
        let mut exports: Vec<(String, Cases)> = Vec::new();
        for member in self.members() {
            let Some(cases) = export(soak, member) else {
                continue;
            };
            exports.push((member.name.clone(), cases));
        }
        self.compare(soak, &exports);
        let references: Vec<String> = exports
            .last()
            .map(|(_, cases)| {
                cases
                    .keys()
                    .filter(|r| r.contains("-T03-"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        // `case show --json` of a few cases, the same on every replica that holds them.
        for _ in 0..references.len().min(3) {
            let reference = &references[soak.rng.gen_range(0..references.len())];
            let shows: Vec<(String, String)> = self
                .members()
                .map(|m| {
                    let ended = run(m.command(&["case", "show", reference, "--json"]));
                    (m.name.clone(), ended.run.stdout)
                })
                .collect();
            for (name, show) in &shows[1..] {
                if *show != shows[0].1 {
                    soak.found(
                        Fault::Mismatch,
                        format!(
                            "`case show {reference} --json` differs between {} and {name}",
                            shows[0].0
                        ),
                    );
                }
            }
        }
        let names: Vec<String> = self.members().map(|m| m.name.clone()).collect();
        for name in names {
            let ended = run(self.member(&name).command(&["check"]));
            check_message(soak, &format!("check on {name}"), &ended, None);
            if ended.run.code != 0 {
                soak.found(
                    Fault::Other,
                    format!(
                        "`cairn check` on {name} failed: {}",
                        ended.run.stderr.trim()
                    ),
                );
            }
        }
    }
}

impl World {
    /// Each field device's export against the office's (the last): the same cases of the
    /// team, each the same; then every acknowledged marker once on each. Each case counts
    /// once however many checks see it.
    pub fn compare(&mut self, soak: &mut Soak, exports: &[(String, Cases)]) {
        let Some(((office_name, office_cases), fields)) = exports.split_last() else {
            return;
        };
        let team: BTreeMap<&str, &serde_json::Value> = office_cases
            .iter()
            .filter(|(reference, _)| reference.contains("-T03-"))
            .map(|(reference, case)| (reference.as_str(), case))
            .collect();
        for (name, cases) in fields {
            let mut differ = Vec::new();
            let references: BTreeSet<&str> = team
                .keys()
                .copied()
                .chain(cases.keys().map(String::as_str))
                .collect();
            for reference in references {
                if cases.get(reference) != team.get(reference).copied()
                    && self.reported.insert(("mismatch", reference.to_string()))
                {
                    differ.push(reference);
                }
            }
            if !differ.is_empty() {
                soak.found_n(
                    Fault::Mismatch,
                    differ.len() as u64,
                    format!(
                        "{} case(s) differ or are missing between {name} and {office_name}: {}",
                        differ.len(),
                        few(&differ)
                    ),
                );
            }
        }
        for (name, cases) in exports {
            self.count_markers(soak, name, cases, name != office_name);
        }
    }

    /// Every acknowledged marker exactly once among `cases` of replica `name` (a field
    /// device, `team_only`, does not hold the office's own cases).
    pub fn count_markers(&mut self, soak: &mut Soak, name: &str, cases: &Cases, team_only: bool) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let texts: Vec<String> = cases.values().map(|c| c.to_string()).collect();
        for text in &texts {
            for (at, _) in text.match_indices("SOAK[") {
                if let Some(end) = text[at..].find(']') {
                    *seen.entry(&text[at..=at + end]).or_default() += 1;
                }
            }
        }
        let (mut missing, mut twice) = (Vec::new(), Vec::new());
        for (marker, office_made) in &self.acknowledged {
            let found = seen.get(marker.as_str()).copied().unwrap_or(0);
            if found == 1 || (found == 0 && team_only && *office_made) {
                continue;
            }
            let kind = if found == 0 { "lost" } else { "twice" };
            if !self.reported.insert((kind, marker.clone())) {
                continue;
            }
            if found == 0 {
                missing.push(marker.as_str());
            } else {
                twice.push(marker.as_str());
            }
        }
        if !missing.is_empty() {
            soak.found_n(
                Fault::Lost,
                missing.len() as u64,
                format!(
                    "{} acknowledged case(s) are not on {name}: {}",
                    missing.len(),
                    few(&missing)
                ),
            );
        }
        if !twice.is_empty() {
            soak.found_n(
                Fault::Duplicate,
                twice.len() as u64,
                format!(
                    "{} case(s) are on {name} more than once: {}",
                    twice.len(),
                    few(&twice)
                ),
            );
        }
    }

    /// [`World::count_markers`] on one member's export.
    pub fn markers_on(&mut self, soak: &mut Soak, who: &str) {
        let member = self.member(who);
        let team_only = !member.office;
        if let Some(cases) = export(soak, member) {
            self.count_markers(soak, who, &cases, team_only);
        }
    }
}

/// The first few of a list, to name in a finding.
fn few(list: &[&str]) -> String {
    let mut shown = list.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    if list.len() > 3 {
        shown.push_str(", ...");
    }
    shown
}

/// A replica's cases by reference, as `cairn export --format json` writes them.
pub type Cases = BTreeMap<String, serde_json::Value>;

/// Every case of `member` by reference, from one `cairn export --format json`.
pub fn export(soak: &mut Soak, member: &Member) -> Option<Cases> {
    let out = member.device.home().with_file_name("soak-export");
    let ended = run(member.command(&[
        "export",
        "--format",
        "json",
        "--out",
        &out.to_string_lossy(),
        "--force",
    ]));
    check_message(soak, &format!("export on {}", member.name), &ended, None);
    if ended.run.code != 0 {
        soak.found(
            Fault::Other,
            format!(
                "export on {} failed: {}",
                member.name,
                ended.run.stderr.trim()
            ),
        );
        return None;
    }
    let text = std::fs::read_to_string(out.join("cases.jsonl")).unwrap_or_default();
    let mut cases = BTreeMap::new();
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            soak.found(
                Fault::Other,
                format!("export on {} wrote a bad line", member.name),
            );
            continue;
        };
        let case = value["case"].clone();
        let reference = case["reference"].as_str().unwrap_or_default().to_string();
        if cases.insert(reference.clone(), case).is_some() {
            soak.found(
                Fault::Duplicate,
                format!("{reference} is twice in {}'s export", member.name),
            );
        }
    }
    Some(cases)
}

/// Changes counted before and after a sync, to hold its summary to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// The member's changes on the server.
    pub server: u64,
    /// Its own changes in its vault.
    pub own: u64,
    /// Others' changes in its vault.
    pub others: u64,
}

impl Counts {
    pub fn take(store: &Store, member: &Member) -> Counts {
        let (own, others) = member.changes();
        Counts {
            server: store.stored().get(&member.id).map_or(0, |c| c.1),
            own,
            others,
        }
    }
}

/// Files under `dir`, to keep a scenario's temporary data apart.
pub fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a file");
    path
}

/// Where a world's servers keep their data.
#[derive(Clone)]
pub enum Backend {
    /// Each server its own SQLite file.
    Sqlite,
    /// Every server the same PostgreSQL database (its URL).
    Postgres(String),
}

/// Server settings of the soak: small pages so that a pull has many, and no request rate limit
/// (pacing is not what this soaks, and a kill every second would trip it).
pub const SETTINGS: &[(&str, &str)] = &[
    ("max_page", "20"),
    ("device_requests_per_sec", "1000"),
    ("device_request_burst", "1000"),
];

impl World {
    /// An office and `servers` servers on `backend` (the first under `root` if given), with
    /// [`SETTINGS`]; no field device yet.
    pub fn start(backend: &Backend, servers: usize, root: Option<&Path>) -> World {
        let office = Device::office();
        let key = office.ok(&["office", "pubkey"]);
        let processes: Vec<ServerProcess> = (0..servers)
            .map(|i| {
                let dir = match root {
                    Some(root) if i == 0 => ServerDir::init_in(root, &key),
                    _ => ServerDir::init(&key),
                };
                dir.configure(SETTINGS);
                if let Backend::Postgres(url) = backend {
                    dir.set("database", format!("\"{url}\""));
                }
                dir.spawn()
            })
            .collect();
        let store = match backend {
            Backend::Sqlite => Store::Sqlite(processes[0].dir().path().join("server.db")),
            Backend::Postgres(url) => Store::Postgres(url.clone()),
        };
        World {
            office: Member::new("office", office, true),
            fields: Vec::new(),
            store,
            servers: processes,
            acknowledged: Vec::new(),
            server_high: BTreeMap::new(),
            reported: BTreeSet::new(),
        }
    }

    /// Admits `device` as `name` through server `server`, at `url` (a relay) or the server's
    /// own; the office's first admission also points the office at that URL.
    pub fn join(&mut self, name: &str, device: Device, server: usize, url: Option<String>) {
        let process = &self.servers[server];
        let url = url.unwrap_or_else(|| process.url());
        let admission = cairn_e2e::admit(
            &self.office.device,
            &device,
            "T03",
            &url,
            process.fingerprint(),
            &[],
        );
        device.ok(&["join", &admission]);
        self.fields.push(Member::new(name, device, false));
    }

    /// [`World::join`] of a new field device of team T03.
    pub fn field(&mut self, name: &str) {
        self.join(name, Device::init("T03"), 0, None);
    }
}

/// A CSV file of `rows` new cases under `dir`, each row's narrative a fresh marker; its path
/// and markers.
pub fn import_file(soak: &mut Soak, dir: &Path, rows: usize) -> (std::path::PathBuf, Vec<String>) {
    let mut generated = crate::dataset::generate(soak.rng.gen(), rows, false);
    let mut markers = Vec::new();
    for row in &mut generated {
        let marker = soak.marker();
        row.set("incident.narrative", &marker);
        markers.push(marker);
    }
    let (csv, _) = crate::dataset::to_csv(&generated);
    let name = format!("batch-{:08x}.csv", soak.rng.gen::<u32>());
    (temp_file(dir, &name, &csv), markers)
}

impl World {
    /// `who` imports `rows` new cases (see [`import_file`]); true if it said it made them.
    pub fn import(&mut self, soak: &mut Soak, who: &str, dir: &Path, rows: usize) -> bool {
        let (path, markers) = import_file(soak, dir, rows);
        soak.step(format!("{who} imports {rows} cases"));
        let member = self.member(who);
        let before = member.case_rows();
        let ended = run(member.command(&["case", "import", &path.to_string_lossy()]));
        self.judge_import(soak, who, &ended, before, &markers)
    }

    /// Checks an import's message against the cases the vault gained; true (and the markers
    /// acknowledged) if it said it made them.
    pub fn judge_import(
        &mut self,
        soak: &mut Soak,
        who: &str,
        ended: &Ended,
        before: u64,
        markers: &[String],
    ) -> bool {
        check_message(soak, &format!("import on {who}"), ended, None);
        if ended.killed || ended.run.code != 0 {
            return false;
        }
        let gained = self.member(who).case_rows().saturating_sub(before);
        let said = ended
            .run
            .stdout
            .strip_prefix("imported ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| match n {
                // Every row was imported before (a re-run after a kill past the commit).
                "nothing" => Some(0),
                n => n.parse::<u64>().ok(),
            });
        if said != Some(gained) {
            soak.found(
                Fault::Untrue,
                format!(
                    "import on {who} said `{}` and the vault gained {gained} cases",
                    ended.run.stdout.trim()
                ),
            );
        }
        let office = self.member(who).office;
        self.acknowledged
            .extend(markers.iter().map(|m| (m.clone(), office)));
        true
    }
}
