//! Cairn's sync against Automerge's own, over the same documents, in one run (issue #7).
//!
//! Run: `cargo bench -p cairn-sync --bench versus_automerge`
//! (`CAIRN_BENCH_CASES_PER_DEVICE=50` for a quick run; the default is 500).
//!
//! 20 field devices in two teams of 10 plus the office; every device records its cases, each
//! created and then edited four times (small field edits: a status, a place, a scene, notes).
//! Every change is built once, as Automerge change bytes; the same bytes are sealed and pushed
//! to a real `cairn-server` (TLS, SQLite) in this process, and loaded into the documents of an
//! in-memory Automerge peer. Then, each measured on its own:
//!
//! 1. a fresh office vault pulls everything through a byte-counting TCP proxy (TLS records and
//!    HTTP included), beside `automerge::sync` between two in-memory peers over the same
//!    documents (one `sync::State` per document and peer, every message encoded, counted and
//!    decoded again);
//! 2. a fresh field device of team T01 pulls its team's cases (the server sends it only its
//!    team's and the office's changes), beside Automerge's sync of those documents;
//! 3. a sync with nothing to do, for both;
//! 4. the office publishing its checkpoint (issue #24), then a second field device of T01 and
//!    a staff device (which reads every team, as a restored office does) starting cold from
//!    the office's checkpoints, beside the same Automerge syncs.
//!
//! Steps 1 and 2 pull every change one by one (`Options::checkpoints` off), as before
//! checkpoints existed, so their figures stay comparable from run to run.
//!
//! The fleet and its setup (enroll, seal, push) are those of `fleet/mod.rs`, which
//! `tests/benches/sync_memory.rs` shares, so that both follow the protocol when sealing changes.

mod fleet;

use std::time::{Duration, Instant};

use automerge::sync::{Message, State, SyncDoc};
use automerge::{Automerge, Change};
use cairn_crypto::{KeyFileCost, SealedChange, SecretString, TeamKey};
use cairn_model::{CaseDoc, Edit};
use cairn_protocol::{DeviceLine, OfficeKeys};
use cairn_sync::{sync, Client, Options, Summary};
use cairn_testkit::{Relay, ServerDir};
use cairn_vault::{Home, NewVault, Role, Vault};
use fleet::{
    admit_to, build_devices, enroll_seal_push, seal_push, BuiltCase, Device, Sealed, Setup,
    CHANGES_PER_CASE, DEVICES_PER_TEAM, TEAMS,
};
use time::OffsetDateTime;

fn main() {
    let per_device = fleet::cases_per_device();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let now = OffsetDateTime::now_utc();

    // The office, and a server that trusts it.
    let mut office = new_vault(&dir.path().join("office"), Role::Office, "office", now);
    let office_keys = OfficeKeys::from_keys(office.keys());
    let server = rt.block_on(ServerDir::init_in(dir.path(), &office_keys).serve());
    let url = server.url();
    let fingerprint = server.fingerprint().to_owned();
    let direct = Client::new(&url, &fingerprint).expect("client");

    // The reader of team T01: admitted by the office, which hands the server its roster, then
    // joined as any member would.
    let mut reader = new_vault(&dir.path().join("reader"), Role::Field, TEAMS[0], now);
    let line = DeviceLine::new(reader.keys(), None).expect("line");
    let admission = cairn_sync::admit(&mut office, &line, &admit_to(TEAMS[0], &url, &fingerprint))
        .expect("admit");
    rt.block_on(direct.post_roster(
        office.keys(),
        &office.roster_chain().expect("roster").statements,
    ))
    .expect("roster");
    rt.block_on(cairn_sync::join(
        &mut reader,
        admission,
        &Options::default(),
    ))
    .expect("reader joins");

    // Every change, built once.
    let started = Instant::now();
    let mut devices = build_devices(per_device, now);
    let changes: usize = devices
        .iter()
        .flat_map(|d| &d.cases)
        .map(|c| c.changes.len())
        .sum();
    eprintln!(
        "built {changes} changes of {} cases in {:.1} s",
        devices.len() * per_device,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut setup = Setup {
        rt: &rt,
        client: &direct,
        office: &mut office,
        url: &url,
        fingerprint: &fingerprint,
    };
    let sealed = enroll_seal_push(&mut setup, &devices);
    eprintln!(
        "sealed and pushed {changes} changes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Who starts cold from the office's checkpoints: a second reader of T01, and a staff
    // device (admitted once every team exists, so it is granted every team's key).
    let mut late = new_vault(&dir.path().join("late"), Role::Field, TEAMS[0], now);
    let mut staff = new_vault(&dir.path().join("staff"), Role::Staff, "office", now);
    let admissions: Vec<_> = [(&late, TEAMS[0]), (&staff, cairn_protocol::OFFICE_TEAM)]
        .into_iter()
        .map(|(vault, team)| {
            let line = DeviceLine::new(vault.keys(), None).expect("line");
            cairn_sync::admit(&mut office, &line, &admit_to(team, &url, &fingerprint))
                .expect("admit")
        })
        .collect();
    rt.block_on(direct.post_roster(
        office.keys(),
        &office.roster_chain().expect("roster").statements,
    ))
    .expect("roster");
    for (vault, admission) in [&mut late, &mut staff].into_iter().zip(admissions) {
        rt.block_on(cairn_sync::join(vault, admission, &Options::default()))
            .expect("join");
    }

    // The same documents on an in-memory Automerge peer.
    let mut native_docs: Vec<(usize, Automerge)> = devices
        .iter()
        .flat_map(|d| d.cases.iter().map(move |c| (d.team, c)))
        .map(|(team, case)| (team, native_doc(&case.changes)))
        .collect();

    let relay = Relay::start(server.addr());
    let proxy_url = relay.url();

    // 1. The office's cold pull.
    point_at(&mut office, &proxy_url, &fingerprint, &office_keys);
    eprintln!("office: cold pull");
    let office_pull = measure(&rt, &mut office, &relay, ONE_BY_ONE);
    assert_eq!(
        office_pull.summary.received as usize,
        changes,
        "{}",
        office_pull.summary.line()
    );
    assert!(
        office_pull.summary.refused.is_empty(),
        "{}",
        office_pull.summary.line()
    );
    let office_native = native_sync(native_docs.iter_mut().map(|(_, d)| d));
    assert_eq!(office_native.docs.len(), native_docs.len());
    check_same(&mut office, &devices, |_| true, &office_native.docs);

    // Where the office's time goes in the model, beside bare Automerge doing the same.
    let stages = model_stages(&devices);
    // What any pull that checks and keeps every change must spend at the least.
    let floor = floor(&sealed, &devices, dir.path());

    // 2. A field device's cold pull of its own team's cases.
    point_at(&mut reader, &proxy_url, &fingerprint, &office_keys);
    eprintln!("field device: cold pull");
    let field_pull = measure(&rt, &mut reader, &relay, ONE_BY_ONE);
    let team_changes = changes / TEAMS.len();
    assert_eq!(
        field_pull.summary.received as usize,
        team_changes,
        "{}",
        field_pull.summary.line()
    );
    assert_eq!(
        field_pull.summary.unreadable,
        0,
        "{}",
        field_pull.summary.line()
    );
    assert!(
        field_pull.summary.refused.is_empty(),
        "{}",
        field_pull.summary.line()
    );
    let field_native = native_sync(
        native_docs
            .iter_mut()
            .filter(|(t, _)| *t == 0)
            .map(|(_, d)| d),
    );
    check_same(&mut reader, &devices, |team| team == 0, &field_native.docs);

    // 4. The office publishes its checkpoint; two devices start cold from it.
    eprintln!("office: publishes its checkpoint");
    let publish = measure(&rt, &mut office, &relay, WITH_CHECKPOINTS);
    point_at(&mut late, &proxy_url, &fingerprint, &office_keys);
    eprintln!("field device: cold pull from checkpoints");
    let field_cold = measure(&rt, &mut late, &relay, WITH_CHECKPOINTS);
    assert_eq!(
        field_cold.summary.from_checkpoints as usize,
        team_changes / CHANGES_PER_CASE,
        "{}",
        field_cold.summary.line()
    );
    let field_native_again = native_sync(
        native_docs
            .iter_mut()
            .filter(|(t, _)| *t == 0)
            .map(|(_, d)| d),
    );
    check_same(
        &mut late,
        &devices,
        |team| team == 0,
        &field_native_again.docs,
    );
    point_at(&mut staff, &proxy_url, &fingerprint, &office_keys);
    eprintln!("staff device: cold pull from checkpoints");
    let staff_cold = measure(&rt, &mut staff, &relay, WITH_CHECKPOINTS);
    assert_eq!(
        staff_cold.summary.from_checkpoints as usize,
        changes / CHANGES_PER_CASE,
        "{}",
        staff_cold.summary.line()
    );
    let office_native_again = native_sync(native_docs.iter_mut().map(|(_, d)| d));
    check_same(&mut staff, &devices, |_| true, &office_native_again.docs);

    // 3. Nothing to do.
    let office_noop = measure(&rt, &mut office, &relay, WITH_CHECKPOINTS);
    let field_noop = measure(&rt, &mut reader, &relay, WITH_CHECKPOINTS);
    assert_eq!(
        office_noop.summary.received + field_noop.summary.received,
        0
    );
    let office_figures = office_native.figures;
    let native_noop = native_noop(&mut native_docs, office_native);

    // 5. The devices record one more edit on every case after the checkpoint and push it;
    // the two devices that started from the checkpoint pull them, beside their floor.
    eprintln!("every device: one more edit on every case");
    let incremental = incremental(
        &rt,
        &direct,
        &relay,
        &mut devices,
        &sealed,
        now,
        [&mut late, &mut staff],
        &mut native_docs,
        dir.path(),
    );

    let payload_team: u64 = sealed.per_team[0];
    report(Report {
        per_device,
        changes,
        office_pull: &office_pull,
        office_payload: sealed.per_team.iter().sum(),
        office_native: &office_figures,
        field_pull: &field_pull,
        field_payload: payload_team,
        field_native: &field_native.figures,
        office_noop: &office_noop,
        field_noop: &field_noop,
        native_noop: &native_noop,
        automerge_bytes: sealed.plain,
    });
    checkpoint_report(&Checkpointed {
        publish: &publish,
        field: &field_cold,
        field_native: &field_native_again.figures,
        staff: &staff_cold,
        office_native: &office_native_again.figures,
        floor: floor.total(),
    });
    incremental.print();
    stages.print(changes);
    floor.print(office_figures.time);
    println!();
    println!(
        "Peak memory of the whole bench process (server, office, devices and Automerge peers together): {} MiB",
        peak_memory_kib() / 1024
    );
    server.shutdown(Duration::from_secs(1));
}

/// The incremental pull after a checkpoint: what the two devices that started from it took
/// to pull the changes recorded since, and its floor on the same changes.
struct Incremental {
    /// For the field device (its team's cases) and the staff device (every case): how many
    /// changes it pulled, the pull, and its floor.
    pulls: [(usize, Measured, Floor); 2],
}

/// Every device records one more edit on every case (a scene and a note, the shape of the
/// third edit) and pushes it; the field device and the staff device that started from the
/// office's checkpoint pull them. Every case, not a share of them: each pulled change then
/// lands in a case of its own, so nothing of loading and saving a case is shared between
/// changes, in the pull as in its floor. The Automerge peer's documents take the same
/// changes, and each device's cases are checked to reach the same heads.
#[allow(clippy::too_many_arguments)] // One step of `main`, given what it set up.
fn incremental(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    relay: &Relay,
    devices: &mut [Device],
    sealed: &Sealed,
    now: OffsetDateTime,
    [late, staff]: [&mut Vault; 2],
    native_docs: &mut [(usize, Automerge)],
    dir: &std::path::Path,
) -> Incremental {
    let round = CHANGES_PER_CASE;
    record_later(devices, now + time::Duration::days(round as i64 + 1));
    let later = seal_push(rt, client, devices, sealed.keys(), round..round + 1);
    // Each case as the devices hold it before the new edit, saved; and the new edit.
    let cases: Vec<(usize, &BuiltCase)> = devices
        .iter()
        .flat_map(|d| d.cases.iter().map(move |c| (d.team, c)))
        .collect();
    let saved: Vec<Vec<u8>> = native_docs.iter().map(|(_, d)| d.save()).collect();
    for ((_, doc), (_, case)) in native_docs.iter_mut().zip(&cases) {
        let change = Change::try_from(case.changes[round].as_slice()).expect("change");
        doc.apply_changes([change]).expect("apply");
    }

    let mut pulls = Vec::new();
    for (who, vault, team) in [
        ("field device", late, Some(0)),
        ("staff device", staff, None),
    ] {
        let wanted = |t: usize| team.is_none_or(|team| team == t);
        eprintln!("{who}: incremental pull after the checkpoint");
        let pulled = measure(rt, vault, relay, WITH_CHECKPOINTS);
        let count = cases.iter().filter(|(t, _)| wanted(*t)).count();
        assert_eq!(
            pulled.summary.received as usize,
            count,
            "{}",
            pulled.summary.line()
        );
        assert!(
            pulled.summary.refused.is_empty(),
            "{}",
            pulled.summary.line()
        );
        check_same(
            vault,
            devices,
            wanted,
            native_docs
                .iter()
                .filter(|(t, _)| wanted(*t))
                .map(|(_, d)| d),
        );
        let touched: Vec<(&[u8], &[u8])> = (saved.iter().zip(&cases))
            .filter(|(_, (t, _))| wanted(*t))
            .map(|(doc, (_, case))| (doc.as_slice(), case.changes[round].as_slice()))
            .collect();
        let plain = touched.iter().map(|(_, c)| c.len() as u64).sum();
        let received = match team {
            Some(team) => later.of_team(team, plain),
            None => later.of_team_all(plain),
        };
        let floor = incremental_floor(
            &received,
            &touched,
            &dir.join(format!("incremental-{who}.sqlite")),
        );
        pulls.push((count, pulled, floor));
    }
    let Ok(pulls) = <[_; 2]>::try_from(pulls) else {
        unreachable!("two devices pulled");
    };
    Incremental { pulls }
}

/// One more edit on every case of every device, recorded at `at` (both cores).
fn record_later(devices: &mut [Device], at: OffsetDateTime) {
    let half = devices.len().div_ceil(2);
    let (a, b) = devices.split_at_mut(half);
    std::thread::scope(|scope| {
        for part in [a, b] {
            scope.spawn(move || {
                for device in part {
                    let author = device.keys.id().short();
                    for case in &mut device.cases {
                        let edit = [
                            Edit::set("found.scene", "rubble"),
                            Edit::Note {
                                text: "Visited again after the office's review.".into(),
                            },
                        ];
                        let change = case
                            .doc
                            .edit(&edit, &author, at)
                            .expect("edit")
                            .expect("the edit changes something");
                        case.changes.push(change);
                    }
                }
            });
        }
    });
}

impl Incremental {
    fn print(&self) {
        let secs = |d: Duration| d.as_secs_f64();
        println!();
        println!(
            "Incremental pull after the office's checkpoint (issue #24, part 2): one more edit on every case, pulled by the devices that started from the checkpoint; its floor on the same changes, same run:"
        );
        println!();
        println!("| what | Cairn (server, TLS) | floor: verify + decrypt (both cores) / raw inserts / bare Automerge load, apply, save | Cairn / floor | target |");
        println!("| --- | --- | --- | --- | --- |");
        for (what, (count, pulled, floor)) in ["field device, own team", "staff device, every team"]
            .iter()
            .zip(&self.pulls)
        {
            println!(
                "| {what}: {count} changes into {count} cases | {:.2} s (CPU {:.2} s), {} bytes, {} requests | {:.2} s ({:.2} / {:.2} / {:.2} s) | **{:.2} ×** | ≤ 1.5 × |",
                secs(pulled.time),
                secs(pulled.cpu),
                pulled.wire,
                pulled.summary.round_trips,
                secs(floor.total()),
                secs(floor.open),
                secs(floor.store),
                secs(floor.apply),
                secs(pulled.time) / secs(floor.total()),
            );
        }
    }
}

fn new_vault(path: &std::path::Path, role: Role, team: &str, now: OffsetDateTime) -> Vault {
    Home::new(path.to_path_buf())
        .create(
            &SecretString::from("bench".to_owned()),
            KeyFileCost::LogN(2),
            NewVault {
                team: team.into(),
                name: None,
                role,
            },
            now,
        )
        .expect("vault")
}

fn point_at(vault: &mut Vault, url: &str, fingerprint: &str, office: &OfficeKeys) {
    cairn_sync::point_at_server(vault, url, fingerprint, office).expect("point at the proxy");
}

/// One Cairn sync, timed, with the bytes the proxy saw.
struct Measured {
    summary: Summary,
    time: Duration,
    /// CPU time of the whole process (client, server and proxy) over the same span.
    cpu: Duration,
    wire: u64,
}

/// CPU time this process has used so far (user and system, all threads).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends at the last ')'): utime is the 12th, stime 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Every change pulled one by one, as before checkpoints.
const ONE_BY_ONE: bool = false;
const WITH_CHECKPOINTS: bool = true;

fn measure(
    rt: &tokio::runtime::Runtime,
    vault: &mut Vault,
    relay: &Relay,
    checkpoints: bool,
) -> Measured {
    relay.reset();
    let cpu = cpu_time();
    let start = Instant::now();
    let options = Options {
        checkpoints,
        ..Options::default()
    };
    let summary = rt
        .block_on(sync(vault, &options, &()))
        .map_err(|(e, _)| e)
        .expect("sync");
    Measured {
        time: start.elapsed(),
        cpu: cpu_time().saturating_sub(cpu),
        wire: relay.bytes(),
        summary,
    }
}

/// A document holding a case's changes, as the peer that has them holds it.
fn native_doc(changes: &[Vec<u8>]) -> Automerge {
    let mut doc = Automerge::new();
    let changes = changes
        .iter()
        .map(|c| Change::try_from(c.as_slice()).expect("a change we built"));
    doc.apply_changes(changes).expect("apply");
    doc
}

/// What Automerge's sync cost.
#[derive(Default, Clone, Copy)]
struct NativeFigures {
    time: Duration,
    messages: u64,
    bytes: u64,
    /// The longest message exchange of one document, in messages.
    longest: u64,
}

struct NativeRun {
    figures: NativeFigures,
    /// The receiving peer's documents, and each side's sync state after the sync.
    docs: Vec<Automerge>,
    states: Vec<(State, State)>,
}

/// `automerge::sync` between a peer holding `docs` and one holding nothing, one document at
/// a time, each message encoded, counted and decoded as if it had crossed a wire.
fn native_sync<'a>(docs: impl Iterator<Item = &'a mut Automerge>) -> NativeRun {
    let docs: Vec<&mut Automerge> = docs.collect();
    let mut figures = NativeFigures::default();
    let mut received = Vec::with_capacity(docs.len());
    let mut states = Vec::with_capacity(docs.len());
    let start = Instant::now();
    for have in docs {
        let mut peer = Automerge::new();
        let (mut a, mut b) = (State::new(), State::new());
        let n = exchange(have, &mut a, &mut peer, &mut b, &mut figures);
        figures.longest = figures.longest.max(n);
        received.push(peer);
        states.push((a, b));
    }
    figures.time = start.elapsed();
    NativeRun {
        figures,
        docs: received,
        states,
    }
}

/// The documented loop: each side generates and the other receives until neither has
/// anything to say. Returns the number of messages.
fn exchange(
    a_doc: &mut Automerge,
    a: &mut State,
    b_doc: &mut Automerge,
    b: &mut State,
    figures: &mut NativeFigures,
) -> u64 {
    let mut sent = 0;
    loop {
        let a_to_b = a_doc.generate_sync_message(a).map(|m| wire(m, figures));
        if let Some(m) = a_to_b.clone() {
            b_doc.receive_sync_message(b, m).expect("receive");
            sent += 1;
        }
        let b_to_a = b_doc.generate_sync_message(b).map(|m| wire(m, figures));
        if let Some(m) = b_to_a.clone() {
            a_doc.receive_sync_message(a, m).expect("receive");
            sent += 1;
        }
        if a_to_b.is_none() && b_to_a.is_none() {
            return sent;
        }
    }
}

/// Encodes a message, counts it, and decodes it again on the other side.
fn wire(message: Message, figures: &mut NativeFigures) -> Message {
    let bytes = message.encode();
    figures.messages += 1;
    figures.bytes += bytes.len() as u64;
    Message::decode(&bytes).expect("decode")
}

/// A sync with nothing to do between the same two peers, each having kept its sync state for
/// every document (persisted and restored, as a peer does across connections).
fn native_noop(docs: &mut [(usize, Automerge)], office: NativeRun) -> NativeFigures {
    let mut figures = NativeFigures::default();
    let start = Instant::now();
    for ((_, have), (peer, (a, b))) in docs
        .iter_mut()
        .zip(office.docs.into_iter().zip(office.states))
    {
        let mut a = State::decode(&a.encode()).expect("state");
        let mut b = State::decode(&b.encode()).expect("state");
        let mut peer = peer;
        let n = exchange(have, &mut a, &mut peer, &mut b, &mut figures);
        figures.longest = figures.longest.max(n);
    }
    figures.time = start.elapsed();
    figures
}

/// The model's share of a cold pull, stage by stage, beside bare Automerge: every change in
/// the order the office receives them (all creations, then each round of edits), each case
/// loaded from its saved form, the change applied, and the case saved again, as the vault
/// does with a case it already holds.
struct Stages {
    /// `[Cairn, Automerge]` for loading, applying (Cairn: screen, fit, judge) and saving.
    load: [Duration; 2],
    apply: [Duration; 2],
    save: [Duration; 2],
}

fn model_stages(devices: &[Device]) -> Stages {
    let actor = [0x0f; 32];
    let cases: Vec<&BuiltCase> = devices.iter().flat_map(|d| &d.cases).collect();
    let mut ours: Vec<Vec<u8>> = vec![Vec::new(); cases.len()];
    let mut bare: Vec<Vec<u8>> = vec![Vec::new(); cases.len()];
    let mut stages = Stages {
        load: [Duration::ZERO; 2],
        apply: [Duration::ZERO; 2],
        save: [Duration::ZERO; 2],
    };
    for round in 0..CHANGES_PER_CASE {
        for (i, case) in cases.iter().enumerate() {
            let raw = std::slice::from_ref(&case.changes[round]);
            let t0 = Instant::now();
            let loaded = (round > 0).then(|| CaseDoc::load(&ours[i], &actor).expect("load"));
            let t1 = Instant::now();
            let doc = match loaded {
                None => CaseDoc::from_changes(raw, &actor, &[]).expect("a creation"),
                Some(mut doc) => {
                    doc.apply_changes(raw).expect("an edit");
                    doc
                }
            };
            let t2 = Instant::now();
            ours[i] = doc.save();
            let t3 = Instant::now();
            let mut doc = if round > 0 {
                Automerge::load(&bare[i]).expect("load")
            } else {
                Automerge::new()
            };
            let t4 = Instant::now();
            let change = Change::try_from(raw[0].as_slice()).expect("change");
            doc.apply_changes([change]).expect("apply");
            let t5 = Instant::now();
            bare[i] = doc.save();
            let t6 = Instant::now();
            stages.load[0] += t1 - t0;
            stages.apply[0] += t2 - t1;
            stages.save[0] += t3 - t2;
            stages.load[1] += t4 - t3;
            stages.apply[1] += t5 - t4;
            stages.save[1] += t6 - t5;
        }
    }
    stages
}

impl Stages {
    fn print(&self, changes: usize) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / changes as f64;
        println!();
        println!(
            "The model alone, each of the {changes} changes in the office's order (load the case, apply, save):"
        );
        println!();
        println!("| stage | Cairn model | bare Automerge | Cairn / Automerge |");
        println!("| --- | --- | --- | --- |");
        for (what, [ours, bare]) in [
            ("load the saved case", self.load),
            (
                "apply one change (Cairn: screen, check fit, apply, judge)",
                self.apply,
            ),
            ("save the case", self.save),
        ] {
            println!(
                "| {what} | {:.0} µs | {:.0} µs | {:.2} × |",
                per(ours),
                per(bare),
                per(ours) / per(bare)
            );
        }
    }
}

/// The least that any office pull of these changes must do, whatever the design, each part
/// timed alone on the same changes in the same run: check every author's signature and
/// decrypt (on both cores, as the vault does), keep every sealed change durably (raw SQLite
/// inserts in one transaction, WAL, `synchronous=FULL`), and build each case from all its
/// changes at once with bare Automerge, unchecked, saved once. No TLS, no judge, no roster.
struct Floor {
    open: Duration,
    store: Duration,
    apply: Duration,
}

fn floor(sealed: &Sealed, devices: &[Device], dir: &std::path::Path) -> Floor {
    let open = open_floor(&sealed.all, &sealed.keys, sealed.plain);
    let store = store_floor(&sealed.all, &dir.join("floor.sqlite"));
    let start = Instant::now();
    let mut saved = 0usize;
    for case in devices.iter().flat_map(|d| &d.cases) {
        saved += native_doc(&case.changes[..CHANGES_PER_CASE]).save().len();
    }
    let apply = start.elapsed();
    assert!(saved > 0);
    Floor { open, store, apply }
}

/// The floor's first part: verify and decrypt every change of `all` on both cores, as the
/// vault does; `plain` is how many bytes they must open to.
fn open_floor(all: &[Vec<u8>], keys: &[TeamKey], plain: u64) -> Duration {
    let mut keyring = cairn_crypto::Keyring::default();
    for key in keys {
        keyring.insert(TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes()));
    }
    let start = Instant::now();
    let opened: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = all
            .chunks(all.len().div_ceil(2).max(1))
            .map(|part| {
                let keyring = &keyring;
                scope.spawn(move || {
                    part.iter()
                        .map(|b| {
                            let change = SealedChange::from_bytes(b).expect("sealed");
                            change.open(keyring).expect("opens").len()
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("opener")).sum()
    });
    let open = start.elapsed();
    assert_eq!(opened as u64, plain);
    open
}

/// The floor's second part: every sealed change of `all` kept durably, with raw SQLite
/// inserts in one transaction (WAL, `synchronous=FULL`), in a new database at `path`.
fn store_floor(all: &[Vec<u8>], path: &std::path::Path) -> Duration {
    let start = Instant::now();
    let mut db = rusqlite::Connection::open(path).expect("sqlite");
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE changes (author BLOB, seq INTEGER, case_id BLOB, sealed BLOB, PRIMARY KEY (author, seq));",
    )
    .expect("schema");
    let tx = db.transaction().expect("tx");
    {
        let mut insert = tx
            .prepare("INSERT INTO changes VALUES (?1, ?2, ?3, ?4)")
            .expect("insert");
        for bytes in all {
            let change = SealedChange::from_bytes(bytes).expect("sealed");
            insert
                .execute(rusqlite::params![
                    change.author.0.as_slice(),
                    change.seq as i64,
                    change.case_id.as_slice(),
                    bytes
                ])
                .expect("row");
        }
    }
    tx.commit().expect("commit");
    start.elapsed()
}

/// The least an incremental pull of `later` (the changes recorded after the checkpoint that
/// one device receives) must do: verify and decrypt them on both cores, keep them (raw SQLite
/// inserts), and with bare Automerge load each touched case as it was saved (`saved`), apply
/// its new changes and save it once.
fn incremental_floor(later: &Sealed, touched: &[(&[u8], &[u8])], path: &std::path::Path) -> Floor {
    let open = open_floor(&later.all, &later.keys, later.plain);
    let store = store_floor(&later.all, path);
    let start = Instant::now();
    let mut saved = 0usize;
    for (doc, change) in touched {
        let mut doc = Automerge::load(doc).expect("load");
        let change = Change::try_from(*change).expect("change");
        doc.apply_changes([change]).expect("apply");
        saved += doc.save().len();
    }
    let apply = start.elapsed();
    assert!(saved > 0);
    Floor { open, store, apply }
}

impl Floor {
    fn total(&self) -> Duration {
        self.open + self.store + self.apply
    }

    fn print(&self, native: Duration) {
        let secs = |d: Duration| d.as_secs_f64();
        let total = self.open + self.store + self.apply;
        println!();
        println!("The floor of an office cold pull, each part alone on the same changes:");
        println!();
        println!("| part | time |");
        println!("| --- | --- |");
        println!(
            "| verify every signature and decrypt (both cores) | {:.2} s |",
            secs(self.open)
        );
        println!(
            "| store every sealed change (raw SQLite inserts, one transaction, WAL, `synchronous=FULL`) | {:.2} s |",
            secs(self.store)
        );
        println!(
            "| build every case from all its changes with bare Automerge, save once | {:.2} s |",
            secs(self.apply)
        );
        println!(
            "| **floor** | **{:.2} s = {:.2} × Automerge's sync ({:.2} s)** |",
            secs(total),
            secs(total) / secs(native),
            secs(native)
        );
    }
}

/// The vault's cases hold exactly the heads Automerge's peer reached, for every case of the
/// teams `wanted` picks.
fn check_same<'a>(
    vault: &mut Vault,
    devices: &[Device],
    wanted: impl Fn(usize) -> bool,
    native: impl IntoIterator<Item = &'a Automerge>,
) {
    let native: Vec<&Automerge> = native.into_iter().collect();
    let cases: Vec<&BuiltCase> = devices
        .iter()
        .filter(|d| wanted(d.team))
        .flat_map(|d| &d.cases)
        .collect();
    assert_eq!(cases.len(), native.len());
    assert_eq!(vault.list().expect("list").len(), cases.len());
    // A sample: loading every case would measure the vault, not the sync.
    for (case, doc) in cases.iter().zip(native).step_by(97) {
        let mut ours = vault.case(&case.id.to_string()).expect("case").heads();
        let mut theirs = doc.get_heads();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "case {}", case.id);
    }
}

struct Report<'a> {
    per_device: usize,
    changes: usize,
    office_pull: &'a Measured,
    office_payload: u64,
    office_native: &'a NativeFigures,
    field_pull: &'a Measured,
    field_payload: u64,
    field_native: &'a NativeFigures,
    office_noop: &'a Measured,
    field_noop: &'a Measured,
    native_noop: &'a NativeFigures,
    automerge_bytes: u64,
}

fn report(r: Report<'_>) {
    let cases = r.changes / CHANGES_PER_CASE;
    let secs = |d: Duration| d.as_secs_f64();
    println!();
    println!(
        "{} devices in {} teams, {} cases each, {} changes each case: {} cases, {} changes ({} bytes of Automerge changes)",
        TEAMS.len() * DEVICES_PER_TEAM,
        TEAMS.len(),
        r.per_device,
        CHANGES_PER_CASE,
        cases,
        r.changes,
        r.automerge_bytes
    );
    println!();
    println!(
        "| what | Cairn (server, TLS) | Automerge sync (in memory) | Cairn / Automerge | target |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let row = |what: &str, cairn: &Measured, payload: u64, native: &NativeFigures| {
        println!(
            "| {what}: time | {:.2} s (CPU {:.2} s) | {:.2} s | **{:.2} ×** | ≤ 1.0 × |",
            secs(cairn.time),
            secs(cairn.cpu),
            secs(native.time),
            secs(cairn.time) / secs(native.time)
        );
        println!(
            "| {what}: bytes on the wire | {} ({} requests; sealed payload {}) | {} ({} messages) | **{:.2} ×** | ≤ 1.3 × |",
            cairn.wire,
            cairn.summary.round_trips,
            payload,
            native.bytes,
            native.messages,
            cairn.wire as f64 / native.bytes as f64
        );
    };
    row(
        &format!("office cold pull, {cases} cases / {} changes", r.changes),
        r.office_pull,
        r.office_payload,
        r.office_native,
    );
    row(
        &format!(
            "field device cold pull, own team: {} cases / {} changes",
            cases / TEAMS.len(),
            r.changes / TEAMS.len()
        ),
        r.field_pull,
        r.field_payload,
        r.field_native,
    );
    println!(
        "| no-op sync, office | {} round trip(s), {} bytes, {:.1} ms | {} messages, {} bytes, {:.1} ms ({} documents) | | 1 round trip, < 2 KB |",
        r.office_noop.summary.round_trips,
        r.office_noop.wire,
        secs(r.office_noop.time) * 1000.0,
        r.native_noop.messages,
        r.native_noop.bytes,
        secs(r.native_noop.time) * 1000.0,
        cases
    );
    println!(
        "| no-op sync, field device | {} round trip(s), {} bytes, {:.1} ms | | | 1 round trip, < 2 KB |",
        r.field_noop.summary.round_trips,
        r.field_noop.wire,
        secs(r.field_noop.time) * 1000.0,
    );
    println!();
    println!(
        "Automerge: at most {} messages for one document in the cold sync; office pull {:.0} µs a change for Cairn, {:.0} µs for Automerge.",
        r.office_native.longest,
        secs(r.office_pull.time) * 1e6 / r.changes as f64,
        secs(r.office_native.time) * 1e6 / r.changes as f64
    );
}

/// Peak resident memory of this process so far (`VmHWM`), in KiB.
fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Checkpointed<'a> {
    publish: &'a Measured,
    field: &'a Measured,
    field_native: &'a NativeFigures,
    staff: &'a Measured,
    office_native: &'a NativeFigures,
    /// The floor of pulling every change one by one, for scale.
    floor: Duration,
}

fn checkpoint_report(c: &Checkpointed<'_>) {
    let secs = |d: Duration| d.as_secs_f64();
    println!();
    println!("Cold pulls from the office's checkpoints (issue #24), same documents, same run:");
    println!();
    println!(
        "| what | Cairn (server, TLS) | Automerge sync (in memory) | Cairn / Automerge | target |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| the office publishes its checkpoint (after its pull) | {:.2} s (CPU {:.2} s), {} bytes, {} requests | | | |",
        secs(c.publish.time),
        secs(c.publish.cpu),
        c.publish.wire,
        c.publish.summary.round_trips
    );
    for (what, cairn, native) in [
        ("field device, own team", c.field, c.field_native),
        (
            "staff device, every team (as a restored office)",
            c.staff,
            c.office_native,
        ),
    ] {
        println!(
            "| {what}: time | {:.2} s (CPU {:.2} s) | {:.2} s | **{:.2} ×** | ≤ 1.5 × |",
            secs(cairn.time),
            secs(cairn.cpu),
            secs(native.time),
            secs(cairn.time) / secs(native.time)
        );
        println!(
            "| {what}: bytes on the wire | {} ({} requests) | {} ({} messages) | **{:.2} ×** | ≤ 1.0 × |",
            cairn.wire,
            cairn.summary.round_trips,
            native.bytes,
            native.messages,
            cairn.wire as f64 / native.bytes as f64
        );
    }
    println!(
        "| (the floor of pulling every change one by one, for scale) | {:.2} s | | | |",
        secs(c.floor)
    );
}
