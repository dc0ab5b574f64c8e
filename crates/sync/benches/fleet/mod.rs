//! The fleet both sync benchmarks set up (`crates/sync/benches/versus_automerge.rs` uses it
//! with `mod fleet;`, `tests/benches/sync_memory.rs` includes it by path): 20 field devices in
//! two teams of 10, each recording its cases, each case created and then edited four times
//! (small field edits: a status, a place, a scene, notes); every change built once as
//! Automerge change bytes, then sealed and pushed to a server by [`enroll_seal_push`] (later
//! changes by [`seal_push`]).
//!
//! Not a crate of its own: it needs `cairn-sync` and `cairn-vault`, whose tests use
//! `cairn-testkit`, so it cannot live there.

use std::ops::Range;

use cairn_crypto::{DeviceKeys, SealedChange, SealedKind, TeamKey};
use cairn_model::{CaseDoc, Edit, Kind, Reference};
use cairn_protocol::{unix_now, DeviceLine};
use cairn_sync::Client;
use cairn_vault::Vault;
use time::OffsetDateTime;

pub const TEAMS: [&str; 2] = ["T01", "T02"];
pub const DEVICES_PER_TEAM: usize = 10;
/// The creation and four edits.
pub const CHANGES_PER_CASE: usize = 5;

/// Cases each device records: `CAIRN_BENCH_CASES_PER_DEVICE`, 500 by default (10,000 cases,
/// 50,000 changes).
pub fn cases_per_device() -> usize {
    std::env::var("CAIRN_BENCH_CASES_PER_DEVICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// One case as its author recorded it: the raw Automerge bytes of each change, in order, and
/// the author's document (for edits recorded later).
pub struct BuiltCase {
    pub id: uuid::Uuid,
    pub changes: Vec<Vec<u8>>,
    pub doc: CaseDoc,
}

/// A field device and the cases it recorded.
pub struct Device {
    pub keys: DeviceKeys,
    pub team: usize,
    pub cases: Vec<BuiltCase>,
}

/// What the bench needs of the server and the office to set devices up.
pub struct Setup<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub client: &'a Client,
    pub office: &'a mut Vault,
    pub url: &'a str,
    pub fingerprint: &'a str,
}

/// Where the office admits a device to: `team` (or [`cairn_protocol::OFFICE_TEAM`] for a
/// staff device) at the server, for an hour.
pub fn admit_to(team: &str, url: &str, fingerprint: &str) -> cairn_sync::AdmitTo {
    cairn_sync::AdmitTo {
        team: team.into(),
        server: url.into(),
        fingerprint: fingerprint.into(),
        expires_at: unix_now() + 3600,
    }
}

/// Sealed bytes pushed, by team, and the Automerge bytes inside them; every sealed change
/// in the order pushed, and the team keys that open them (for the floor).
pub struct Sealed {
    pub per_team: [u64; 2],
    pub plain: u64,
    pub all: Vec<Vec<u8>>,
    /// The team of each of `all`.
    pub teams: Vec<usize>,
    pub keys: Vec<TeamKey>,
}

impl Sealed {
    /// Those sealed for `team`, which hold `plain` bytes of Automerge changes.
    pub fn of_team(&self, team: usize, plain: u64) -> Sealed {
        let mut per_team = [0; 2];
        per_team[team] = self.per_team[team];
        let all: Vec<Vec<u8>> = (self.all.iter().zip(&self.teams))
            .filter(|(_, t)| **t == team)
            .map(|(s, _)| s.clone())
            .collect();
        Sealed {
            per_team,
            plain,
            teams: vec![team; all.len()],
            all,
            keys: self.keys(),
        }
    }

    /// All of them, which hold `plain` bytes of Automerge changes.
    pub fn of_team_all(&self, plain: u64) -> Sealed {
        Sealed {
            per_team: self.per_team,
            plain,
            all: self.all.clone(),
            teams: self.teams.clone(),
            keys: self.keys(),
        }
    }

    /// The team keys, again.
    pub fn keys(&self) -> Vec<TeamKey> {
        (self.keys.iter())
            .map(|k| TeamKey::from_bytes(k.team(), k.epoch(), *k.bytes()))
            .collect()
    }
}

/// The office admits every device and hands the server its roster; each device joins, seals
/// each change under its team's key (signed by the author) and pushes them. Pushes go in
/// rounds, as devices that sync now and then would send them: every device's creations, then
/// every device's first edits, and so on, so that a case's changes lie far apart in the log.
///
/// The one place that knows how a device joins and seals: switch it when the protocol changes.
pub fn enroll_seal_push(setup: &mut Setup<'_>, devices: &[Device]) -> Sealed {
    let admissions: Vec<cairn_protocol::Admission> = devices
        .iter()
        .map(|device| {
            let line = DeviceLine::new(&device.keys, None).expect("line");
            let to = admit_to(TEAMS[device.team], setup.url, setup.fingerprint);
            cairn_sync::admit(setup.office, &line, &to).expect("admit")
        })
        .collect();
    let chain = setup.office.roster_chain().expect("roster").statements;
    setup
        .rt
        .block_on(setup.client.post_roster(setup.office.keys(), &chain))
        .expect("roster");
    let mut keys: Vec<Option<TeamKey>> = vec![None, None];
    for (device, admission) in devices.iter().zip(&admissions) {
        setup
            .rt
            .block_on(setup.client.join(&device.keys, &admission.statement))
            .expect("join");
        keys[device.team] = Some(admission.open(&device.keys, unix_now()).expect("team key"));
    }
    let keys: Vec<TeamKey> = keys.into_iter().map(|k| k.expect("a team key")).collect();
    seal_push(setup.rt, setup.client, devices, keys, 0..CHANGES_PER_CASE)
}

/// Each device seals change `rounds` of its cases and pushes them, round by round.
pub fn seal_push(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    devices: &[Device],
    keys: Vec<TeamKey>,
    rounds: Range<usize>,
) -> Sealed {
    // Sealing is the slow part: both cores, one device at a time each.
    let sealed: Vec<Vec<Vec<Vec<u8>>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = devices
            .chunks(devices.len().div_ceil(2).max(1))
            .map(|part| {
                let (keys, rounds) = (&keys, &rounds);
                scope.spawn(move || {
                    part.iter()
                        .map(|d| seal_rounds(d, &keys[d.team], rounds.clone()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("sealing thread"))
            .collect()
    });
    let mut out = Sealed {
        per_team: [0; 2],
        plain: 0,
        all: Vec::new(),
        teams: Vec::new(),
        keys,
    };
    for round in 0..rounds.len() {
        for (device, sealed) in devices.iter().zip(&sealed) {
            for batch in sealed[round].chunks(250) {
                rt.block_on(client.push(&device.keys, batch)).expect("push");
            }
            out.per_team[device.team] += sealed[round].iter().map(|s| s.len() as u64).sum::<u64>();
            out.all.extend(sealed[round].iter().cloned());
            out.teams.extend(sealed[round].iter().map(|_| device.team));
        }
    }
    out.plain = devices
        .iter()
        .flat_map(|d| &d.cases)
        .flat_map(|c| &c.changes[rounds.clone()])
        .map(|c| c.len() as u64)
        .sum();
    out
}

/// A device's sealed changes of `rounds`, by round (round r holds change r of every case),
/// numbered in the order they are pushed (round by round from the first).
pub fn seal_rounds(device: &Device, key: &TeamKey, rounds: Range<usize>) -> Vec<Vec<Vec<u8>>> {
    let mut seq = (rounds.start * device.cases.len()) as u64;
    rounds
        .map(|round| {
            device
                .cases
                .iter()
                .map(|case| {
                    seq += 1;
                    SealedChange::seal(
                        &device.keys,
                        key,
                        SealedKind::CaseChange,
                        *case.id.as_bytes(),
                        seq,
                        &case.changes[round],
                    )
                    .expect("seal")
                    .to_bytes()
                })
                .collect()
        })
        .collect()
}

/// Every device's cases, built on both cores.
pub fn build_devices(per_device: usize, now: OffsetDateTime) -> Vec<Device> {
    let count = TEAMS.len() * DEVICES_PER_TEAM;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                scope.spawn(move || {
                    (0..count)
                        .filter(|d| d % 2 == w)
                        .map(|d| {
                            let keys = DeviceKeys::generate();
                            let team = d / DEVICES_PER_TEAM;
                            let cases = (0..per_device)
                                .map(|n| build_case(&keys, team, d, n, now))
                                .collect();
                            (d, Device { keys, team, cases })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Device)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("building thread"))
            .collect();
        all.sort_by_key(|(d, _)| *d);
        all.into_iter().map(|(_, d)| d).collect()
    })
}

pub const PLACES: [&str; 4] = [
    "Al-Bustan, north road",
    "Wadi quarter, school yard",
    "Orchard east of the mill",
    "Market street, building 12",
];

/// One case: created with a few fields and a note, then edited four times over the next days.
pub fn build_case(
    keys: &DeviceKeys,
    team: usize,
    d: usize,
    n: usize,
    now: OffsetDateTime,
) -> BuiltCase {
    let id = uuid::Uuid::new_v4();
    let reference = Reference {
        place: "KHR".into(),
        team: TEAMS[team].into(),
        device_tag: keys.id().tag(),
        number: n as u32 + 1,
    };
    let author = keys.id().short();
    let created = [
        Edit::set("incident.cause", "targeted_strike"),
        Edit::set("incident.narrative", "Found at the edge of the orchard."),
        Edit::set("found.lat", "31.5"),
        Edit::Note {
            text: format!("device {d} case {n}: first report from a neighbour"),
        },
    ];
    let (mut doc, first) = CaseDoc::create(
        &keys.id().0,
        id,
        &reference,
        Kind::Killed,
        &author,
        now,
        &created,
    )
    .expect("case");
    let edits: [Vec<Edit>; 4] = [
        vec![Edit::set("incident.cause", "other_violence")],
        vec![Edit::set("incident.place", PLACES[n % PLACES.len()])],
        vec![
            Edit::set("found.scene", "rubble"),
            Edit::Note {
                text: "Second witness confirms the time.".into(),
            },
        ],
        // (A field device proposes; confirming is the office's.)
        vec![
            Edit::set("found.scene", "surface"),
            Edit::Note {
                text: "Confirmed by the family.".into(),
            },
        ],
    ];
    let mut changes = vec![first];
    for (day, edit) in edits.iter().enumerate() {
        let at = now + time::Duration::days(day as i64 + 1);
        changes.push(
            doc.edit(edit, &author, at)
                .expect("edit")
                .expect("the edit changes something"),
        );
    }
    BuiltCase { id, changes, doc }
}
