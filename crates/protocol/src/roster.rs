//! The roster: who may write and read, rebuilt by every party from the office's signed chain.
//!
//! Only the office writes statements, numbered 1, 2, 3... each naming the previous one's hash.
//! Every device (and the server) rebuilds the roster by checking each signature and link, so a
//! server can neither add a member, nor drop a revocation from the middle, nor serve statements
//! out of order. What a server can still do is serve an older head; a device keeps every
//! statement it verified and refuses a head older than the one it holds ([`reconcile`]).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cairn_crypto::{DeviceId, DeviceKeys, Keyring};

use crate::{Act, OfficeKeys, Statement};

/// The team the office belongs to.
pub const OFFICE_TEAM: &str = "office";

/// One member of the roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The device id (its Ed25519 key).
    pub id: DeviceId,
    /// Its team (`office` for the office).
    pub team: String,
    /// Its age recipient.
    pub recipient: String,
    /// The name given at admission.
    pub name: Option<String>,
    /// `Some(last_seq)` once revoked: its changes numbered above `last_seq` are refused.
    pub revoked: Option<u64>,
}

/// Why a change or request from a device is refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The device is not in the roster.
    NotMember,
    /// The device was revoked; it may not write past `last_seq`.
    Revoked {
        /// The highest accepted change number.
        last_seq: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotMember => f.write_str("the device is not admitted in this office's roster"),
            Refusal::Revoked { last_seq } => write!(
                f,
                "the device was revoked by the office; changes numbered above {last_seq} are refused"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Where a statement falls against a roster (see [`Roster::place`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// It is the next statement: it extends the chain.
    Next,
    /// The roster already holds this very statement.
    Known,
    /// Statements before it are missing.
    Ahead,
    /// Another statement holds its number, or it does not link to the one before it.
    Conflict,
}

/// The checked roster.
#[derive(Clone, Debug)]
pub struct Roster {
    office: OfficeKeys,
    members: BTreeMap<DeviceId, Member>,
    epochs: BTreeMap<String, u32>,
    chain: Vec<Statement>,
    /// Indexes into `chain` of the statements that took effect.
    effective: Vec<usize>,
    /// Statements that failed a check or had no effect, one sentence each.
    pub problems: Vec<String>,
}

impl Roster {
    /// Checks the chain from statement 1 and builds the roster. The chain stops at the first
    /// statement that is missing, unsigned or not linked to the one before; the statements
    /// after it are ignored and described in `problems`. A statement in the chain that
    /// contradicts the roster (admitting a device into a second team, revoking a non-member,
    /// skipping an epoch) takes no effect and is described too.
    pub fn build(office: &OfficeKeys, statements: &[Statement]) -> Roster {
        let mut sorted: Vec<&Statement> = statements.iter().collect();
        sorted.sort_by_key(|s| s.counter);
        sorted.dedup_by(|a, b| a == b);
        let mut roster = Roster {
            office: office.clone(),
            members: BTreeMap::new(),
            epochs: BTreeMap::new(),
            chain: Vec::new(),
            effective: Vec::new(),
            problems: Vec::new(),
        };
        roster.members.insert(
            office.signing,
            Member {
                id: office.signing,
                team: OFFICE_TEAM.to_owned(),
                recipient: office.recipient.clone(),
                name: None,
                revoked: None,
            },
        );
        for s in &sorted {
            match roster.place(s) {
                Placement::Next => roster.push(s),
                Placement::Known => {}
                Placement::Ahead | Placement::Conflict => {
                    roster.problems.push(format!(
                        "roster statements {} to {} were ignored: statement {} is missing, unsigned or does not follow statement {}",
                        s.counter,
                        sorted.last().map_or(s.counter, |l| l.counter),
                        roster.head() + 1,
                        roster.head()
                    ));
                    break;
                }
            }
        }
        roster
    }

    /// Where `statement` falls: the next one (signed by the office and linked to the head),
    /// one already held, one beyond a gap, or one that contradicts the chain.
    pub fn place(&self, statement: &Statement) -> Placement {
        if statement.verify(&self.office.signing).is_err() {
            return Placement::Conflict;
        }
        let head = self.head();
        if statement.counter <= head {
            let held = &self.chain[(statement.counter - 1) as usize];
            return if held == statement {
                Placement::Known
            } else {
                Placement::Conflict
            };
        }
        if statement.counter > head + 1 {
            return Placement::Ahead;
        }
        if statement.prev != self.head_hash() {
            return Placement::Conflict;
        }
        Placement::Next
    }

    /// Appends a statement that [`Roster::place`] found `Next`, applying its act.
    fn push(&mut self, s: &Statement) {
        let index = self.chain.len();
        self.chain.push(s.clone());
        let problem = match &s.act {
            Act::Admit(a) => {
                let current = self.epochs.get(&a.team).copied().unwrap_or(0);
                let expected = current.max(1);
                match self.members.get(&a.device.signing) {
                    _ if a.device.signing == self.office.signing => {
                        Some("it admits the office itself".to_owned())
                    }
                    Some(m) if m.team != a.team || m.recipient != a.device.recipient => Some(
                        "the device is already a member with another team or keys".to_owned(),
                    ),
                    _ if a.epoch != expected => Some(format!(
                        "it grants epoch {} of team {} whose current epoch is {expected}",
                        a.epoch, a.team
                    )),
                    _ => {
                        self.epochs.insert(a.team.clone(), expected);
                        self.members
                            .entry(a.device.signing)
                            .or_insert_with(|| Member {
                                id: a.device.signing,
                                team: a.team.clone(),
                                recipient: a.device.recipient.clone(),
                                name: a.name.clone(),
                                revoked: None,
                            });
                        None
                    }
                }
            }
            Act::Revoke(r) => {
                let current = self.epochs.get(&r.team).copied().unwrap_or(0);
                match self.members.get_mut(&r.device) {
                    Some(m) if m.team == r.team && r.epoch == current + 1 => {
                        m.revoked = Some(m.revoked.map_or(r.last_seq, |s| s.min(r.last_seq)));
                        self.epochs.insert(r.team.clone(), r.epoch);
                        None
                    }
                    Some(m) if m.team == r.team => Some(format!(
                        "it starts epoch {} of team {} whose current epoch is {current}",
                        r.epoch, r.team
                    )),
                    _ => Some(format!("the device is not a member of team {}", r.team)),
                }
            }
        };
        match problem {
            None => self.effective.push(index),
            Some(p) => self.problems.push(format!(
                "roster statement {} (device {}) took no effect: {p}",
                s.counter,
                s.device().short()
            )),
        }
    }

    /// The counter of the newest statement (0 for none).
    pub fn head(&self) -> u64 {
        self.chain.len() as u64
    }

    /// The hash the next statement must name (zeros before the first).
    pub fn head_hash(&self) -> [u8; 32] {
        self.chain.last().map_or([0; 32], Statement::hash)
    }

    /// The verified chain, from statement 1.
    pub fn chain(&self) -> &[Statement] {
        &self.chain
    }

    /// The office's keys this roster was checked against.
    pub fn office(&self) -> &OfficeKeys {
        &self.office
    }

    /// Whether `id` is the office.
    pub fn is_office(&self, id: &DeviceId) -> bool {
        self.office.signing == *id
    }

    /// The member with this id, revoked or not.
    pub fn member(&self, id: &DeviceId) -> Option<&Member> {
        self.members.get(id)
    }

    /// Every member, the office included, ordered by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// A team's current epoch (0 for a team with no member yet).
    pub fn epoch(&self, team: &str) -> u32 {
        self.epochs.get(team).copied().unwrap_or(0)
    }

    /// Whether change `seq` by `author` is acceptable.
    pub fn may_write(&self, author: &DeviceId, seq: u64) -> Result<(), Refusal> {
        match self.members.get(author) {
            None => Err(Refusal::NotMember),
            Some(Member {
                revoked: Some(last_seq),
                ..
            }) if seq > *last_seq => Err(Refusal::Revoked {
                last_seq: *last_seq,
            }),
            Some(_) => Ok(()),
        }
    }

    /// Whether `id` may make requests now: a member that is not revoked.
    pub fn may_connect(&self, id: &DeviceId) -> Result<&Member, Refusal> {
        match self.members.get(id) {
            None => Err(Refusal::NotMember),
            Some(Member {
                revoked: Some(last_seq),
                ..
            }) => Err(Refusal::Revoked {
                last_seq: *last_seq,
            }),
            Some(member) => Ok(member),
        }
    }

    /// Every team key the chain grants to the device holding `keys`, and every earlier epoch
    /// those unlock. The office receives every key; a revoked device none issued after.
    pub fn keyring(&self, keys: &DeviceKeys) -> Keyring {
        let me = keys.id();
        let mut ring = Keyring::default();
        for &i in &self.effective {
            let s = &self.chain[i];
            let (team, epoch, grants) = match &s.act {
                Act::Admit(a) => (&a.team, a.epoch, &a.grants),
                Act::Revoke(r) => (&r.team, r.epoch, &r.grants),
            };
            if ring.get(team, epoch).is_some() {
                continue;
            }
            if let Some(key) = grants
                .iter()
                .filter(|g| g.device == me)
                .find_map(|g| g.open(keys, team, epoch))
            {
                ring.insert(key);
            }
        }
        // Walk each team's epochs back from the newest key held.
        for &i in self.effective.iter().rev() {
            if let Act::Revoke(r) = &self.chain[i].act {
                if ring.get(&r.team, r.epoch - 1).is_some() {
                    continue;
                }
                let earlier = ring
                    .get(&r.team, r.epoch)
                    .and_then(|k| {
                        let bytes = STANDARD.decode(&r.earlier).ok()?;
                        k.unwrap_earlier(&bytes).ok()
                    })
                    .filter(|k| k.epoch() == r.epoch - 1);
                if let Some(k) = earlier {
                    ring.insert(k);
                }
            }
        }
        ring
    }
}

/// What a device keeps after the server served `served`, holding `held` (statements it
/// verified earlier, or only its own admission before its first sync).
#[derive(Clone, Debug)]
pub struct Reconciled {
    /// The statements to keep and build the roster from.
    pub statements: Vec<Statement>,
    /// What the server served that this device refused, one sentence each.
    pub warnings: Vec<String>,
}

/// Never lets a server roll the roster back: the served chain is taken only if it holds every
/// statement this device holds, unchanged; otherwise the held statements stay and the
/// difference is reported.
pub fn reconcile(office: &OfficeKeys, held: &[Statement], served: &[Statement]) -> Reconciled {
    let roster = Roster::build(office, served);
    let warnings: Vec<String> = roster
        .problems
        .iter()
        .filter(|p| p.starts_with("roster statements"))
        .cloned()
        .collect();
    let newest_held = held.iter().map(|s| s.counter).max().unwrap_or(0);
    let keep_held = |mut warnings: Vec<String>, why: String| {
        warnings.push(why);
        Reconciled {
            statements: held.to_vec(),
            warnings,
        }
    };
    if roster.head() < newest_held {
        return keep_held(
            warnings,
            format!(
                "the server serves the roster up to statement {}, older than statement {newest_held} this device holds: it may be hiding a revocation; this device keeps its own",
                roster.head()
            ),
        );
    }
    for h in held {
        let served_at = h
            .counter
            .checked_sub(1)
            .and_then(|i| roster.chain().get(i as usize));
        if served_at != Some(h) {
            return keep_held(
                warnings,
                format!(
                    "the server serves another roster statement {} than the one this device holds: this device keeps its own",
                    h.counter
                ),
            );
        }
    }
    Reconciled {
        statements: roster.chain().to_vec(),
        warnings,
    }
}
