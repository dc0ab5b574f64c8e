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
    /// The name given at admission, when this party can read it: sealed names are `None`
    /// until [`Roster::open_names`] opened them with the team's key.
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
    /// Index into `chain` of the newest list of places that took effect.
    places: Option<usize>,
    /// Statements that failed a check or had no effect, one sentence each.
    pub problems: Vec<String>,
}

impl Roster {
    /// Checks the chain from statement 1 and builds the roster. The chain stops at the first
    /// statement that is missing, unsigned, not linked to the one before, or given in two
    /// different versions (whatever the input order); the statements after it are ignored and
    /// described in `problems`. A statement in the chain that
    /// contradicts the roster (admitting a device into a second team, revoking a non-member,
    /// skipping an epoch) takes no effect and is described too.
    pub fn build(office: &OfficeKeys, statements: &[Statement]) -> Roster {
        let mut sorted: Vec<&Statement> = statements.iter().collect();
        sorted.sort_by_key(|s| s.counter);
        sorted.dedup_by(|a, b| a == b);
        // Two different statements with one number: neither is taken, whatever the input
        // order (after the sort and dedup, equal neighbours are different statements).
        let twin = sorted
            .windows(2)
            .find(|w| w[0].counter == w[1].counter)
            .map(|w| w[0].counter);
        let mut roster = Roster {
            office: office.clone(),
            members: BTreeMap::new(),
            epochs: BTreeMap::new(),
            chain: Vec::new(),
            effective: Vec::new(),
            places: None,
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
            if Some(s.counter) == twin {
                roster.problems.push(format!(
                    "roster statements {} to {} were ignored: two different statements carry number {}",
                    s.counter,
                    sorted.last().map_or(s.counter, |l| l.counter),
                    s.counter
                ));
                break;
            }
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
                let expected = self.epoch(&a.team).max(1);
                match self.members.get(&a.device.signing) {
                    _ if a.device.signing == self.office.signing => {
                        Some("it admits the office itself".to_owned())
                    }
                    Some(m) if m.team != a.team || m.recipient != a.device.recipient => {
                        Some("the device is already a member with another team or keys".to_owned())
                    }
                    Some(m) if m.revoked.is_some() => {
                        Some("the device was revoked; admit a new device instead".to_owned())
                    }
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
                                name: a.open_name(None),
                                revoked: None,
                            });
                        None
                    }
                }
            }
            Act::Revoke(r) => {
                let current = self.epoch(&r.team);
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
            // The newest list replaces the one before, whichever teams it was sealed for.
            Act::Places(p) if p.office.device == self.office.signing => {
                self.places = Some(index);
                None
            }
            Act::Places(_) => Some("its list of places is not granted to the office".to_owned()),
            Act::Grant(g) => {
                let current = self.epoch(&g.team);
                if g.epoch != current || current == 0 {
                    Some(format!(
                        "it grants epoch {} of team {} whose current epoch is {current}",
                        g.epoch, g.team
                    ))
                } else {
                    self.stranger_in(&g.grants, None)
                }
            }
            Act::Rotate(r) => {
                let current = self.epoch(&r.team);
                if r.epoch != current + 1 || current == 0 {
                    Some(format!(
                        "it starts epoch {} of team {} whose current epoch is {current}",
                        r.epoch, r.team
                    ))
                } else if let Some(p) = self.stranger_in(&r.grants, Some(&r.team)) {
                    Some(p)
                } else {
                    self.epochs.insert(r.team.clone(), r.epoch);
                    None
                }
            }
        };
        let about = match (&s.act, s.device()) {
            (_, Some(d)) => format!("device {}", d.short()),
            (Act::Places(_), None) => "places".to_owned(),
            (_, None) => format!("team {}", s.team().unwrap_or_default()),
        };
        match problem {
            None => self.effective.push(index),
            Some(p) => self.problems.push(format!(
                "roster statement {} ({about}) took no effect: {p}",
                s.counter
            )),
        }
    }

    /// Why a key granted to `grants` would reach a device that may not read it: each must be
    /// the office, a staff device, or (for `team`) a member of that team, none revoked.
    fn stranger_in(&self, grants: &[crate::Grant], team: Option<&str>) -> Option<String> {
        let stranger = grants.iter().find(|g| {
            !self.is_office(&g.device)
                && !self.members.get(&g.device).is_some_and(|m| {
                    m.revoked.is_none() && (m.team == OFFICE_TEAM || Some(m.team.as_str()) == team)
                })
        })?;
        Some(format!(
            "it grants the key to device {}, which is neither the office, nor a staff device, nor a member of the team",
            stranger.device.short()
        ))
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

    /// A team's current epoch (0 for a team with no member yet; the office's own team starts
    /// at 1 in the office's vault, before any statement names it).
    pub fn epoch(&self, team: &str) -> u32 {
        let start = u32::from(team == OFFICE_TEAM);
        self.epochs.get(team).copied().unwrap_or(start)
    }

    /// Whether `id` is a staff device: a member of the office's own team, admitted by the
    /// office to read every team and to decide as the office does (revoked or not: its changes
    /// up to its cut-off keep their authority).
    pub fn is_staff(&self, id: &DeviceId) -> bool {
        !self.is_office(id) && self.members.get(id).is_some_and(|m| m.team == OFFICE_TEAM)
    }

    /// Whether `id` decides for the office: the office itself or a staff device.
    pub fn speaks_for_office(&self, id: &DeviceId) -> bool {
        self.is_office(id) || self.is_staff(id)
    }

    /// Every device that decides for the office: the office, then each staff device (revoked
    /// ones too), ordered by id.
    pub fn office_devices(&self) -> Vec<DeviceId> {
        let mut ids = vec![self.office.signing];
        ids.extend(
            self.members
                .values()
                .filter(|m| self.is_staff(&m.id))
                .map(|m| m.id),
        );
        ids
    }

    /// The staff devices not revoked: who receives every team's next key.
    pub fn staff(&self) -> impl Iterator<Item = &Member> {
        self.members
            .values()
            .filter(|m| m.revoked.is_none() && m.team == OFFICE_TEAM && m.id != self.office.signing)
    }

    /// Every team that has had a member, with its current epoch, ordered by team.
    pub fn teams(&self) -> impl Iterator<Item = (&str, u32)> {
        self.epochs.iter().map(|(t, e)| (t.as_str(), *e))
    }

    /// The newest list of places that took effect, with its statement's counter.
    pub fn places(&self) -> Option<(u64, &crate::Places)> {
        let s = &self.chain[self.places?];
        match &s.act {
            Act::Places(p) => Some((s.counter, p)),
            _ => None,
        }
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

    /// Reads the sealed names of the members whose team keys `ring` holds (the office holds
    /// every team's; a member its own team's); the others stay nameless.
    pub fn open_names(&mut self, ring: &Keyring) {
        for &i in &self.effective {
            if let Act::Admit(a) = &self.chain[i].act {
                let name = a.open_name(ring.get(&a.team, a.epoch));
                if let Some(member) = self.members.get_mut(&a.device.signing) {
                    member.name = name;
                }
            }
        }
    }

    /// Every team key the chain grants to the device holding `keys`, and every earlier epoch
    /// those unlock. The office receives every key; a revoked device none issued after.
    pub fn keyring(&self, keys: &DeviceKeys) -> Keyring {
        let me = keys.id();
        let mut ring = Keyring::default();
        for &i in &self.effective {
            // A list of places' key opens the list only, never a team's changes.
            let Some((team, epoch, grants)) = self.chain[i].team_grants() else {
                continue;
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
            let s = &self.chain[i];
            let (Some(earlier), Some((team, epoch, _))) = (s.earlier(), s.team_grants()) else {
                continue;
            };
            if ring.get(team, epoch - 1).is_some() {
                continue;
            }
            let earlier = ring
                .get(team, epoch)
                .and_then(|k| {
                    let bytes = STANDARD.decode(earlier).ok()?;
                    k.unwrap_earlier(&bytes).ok()
                })
                .filter(|k| k.epoch() == epoch - 1);
            if let Some(k) = earlier {
                ring.insert(k);
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

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use cairn_crypto::{DeviceId, DeviceKeys, TeamKey};

    use super::*;
    use crate::{Admit, DevicePublic, Grant, KeyGrant, Revoke, Rotate};

    pub(crate) const SERVER: &str = "https://127.0.0.1:8443";
    pub(crate) const FINGERPRINT: &str =
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    pub(crate) const EXPIRES: u64 = 4_102_444_800;

    /// An office issuing a consistent chain: it keeps each team's keys and members.
    pub(crate) struct Office {
        pub(crate) keys: DeviceKeys,
        pub(crate) chain: Vec<Statement>,
        team_keys: BTreeMap<(String, u32), [u8; 32]>,
        members: Vec<(DevicePublic, String)>,
    }

    impl Office {
        pub(crate) fn new() -> Office {
            Office {
                keys: DeviceKeys::generate(),
                chain: Vec::new(),
                team_keys: BTreeMap::new(),
                members: Vec::new(),
            }
        }

        pub(crate) fn public(&self) -> OfficeKeys {
            OfficeKeys::from_keys(&self.keys)
        }

        /// The team's current epoch (0 before its first member).
        pub(crate) fn epoch(&self, team: &str) -> u32 {
            self.team_keys
                .keys()
                .filter(|(t, _)| t == team)
                .map(|(_, e)| *e)
                .max()
                .unwrap_or(0)
        }

        /// The key of `team` at `epoch`, created on first use.
        pub(crate) fn key(&mut self, team: &str, epoch: u32) -> TeamKey {
            let bytes = *self
                .team_keys
                .entry((team.to_owned(), epoch))
                .or_insert_with(|| *TeamKey::generate(team, epoch).bytes());
            TeamKey::from_bytes(team, epoch, bytes)
        }

        /// Signs `act` as the next statement, linked to the chain's head.
        pub(crate) fn issue(&mut self, act: Act) -> Statement {
            let prev = self.chain.last().map_or([0; 32], Statement::hash);
            let s = Statement::issue(&self.keys, self.chain.len() as u64 + 1, prev, 1_000, act)
                .unwrap();
            self.chain.push(s.clone());
            s
        }

        /// An admit act granting `team`'s key at `epoch` to `device` and the office.
        pub(crate) fn admit_act(&mut self, device: &DevicePublic, team: &str, epoch: u32) -> Act {
            let key = self.key(team, epoch);
            let public = device.clone();
            Act::Admit(Admit {
                grants: vec![
                    Grant::new(&key, &public).unwrap(),
                    Grant::new(&key, &DevicePublic::from_keys(&self.keys)).unwrap(),
                ],
                device: public,
                name: Some("tablet".into()),
                sealed_name: None,
                team: team.to_owned(),
                epoch,
                server: SERVER.to_owned(),
                fingerprint: FINGERPRINT.to_owned(),
                expires_at: EXPIRES,
            })
        }

        /// A revoke act moving `team` to `epoch`, granted to its other members and the office.
        pub(crate) fn revoke_act(&mut self, device: &DeviceId, team: &str, epoch: u32) -> Act {
            let new = self.key(team, epoch);
            let old = self.key(team, epoch - 1);
            let mut grants: Vec<Grant> = self
                .members
                .iter()
                .filter(|(d, t)| t == team && d.signing != *device)
                .map(|(d, _)| Grant::new(&new, d).unwrap())
                .collect();
            grants.push(Grant::new(&new, &DevicePublic::from_keys(&self.keys)).unwrap());
            Act::Revoke(Revoke {
                device: *device,
                last_seq: 12,
                team: team.to_owned(),
                epoch,
                grants,
                earlier: STANDARD.encode(new.wrap_earlier(&old).unwrap()),
            })
        }

        /// Admits `device` into `team` at the team's current epoch.
        pub(crate) fn admit(&mut self, device: &DeviceKeys, team: &str) -> Statement {
            let epoch = self.epoch(team).max(1);
            let act = self.admit_act(&DevicePublic::from_keys(device), team, epoch);
            self.members
                .push((DevicePublic::from_keys(device), team.to_owned()));
            self.issue(act)
        }

        /// Revokes `device` from `team`, moving the team to its next epoch.
        pub(crate) fn revoke(&mut self, device: &DeviceKeys, team: &str) -> Statement {
            let epoch = self.epoch(team) + 1;
            let act = self.revoke_act(&device.id(), team, epoch);
            self.members.retain(|(d, _)| d.signing != device.id());
            self.issue(act)
        }

        pub(crate) fn roster(&self) -> Roster {
            Roster::build(&self.public(), &self.chain)
        }
    }

    /// The epochs of `team` a keyring holds, each checked against the office's key bytes.
    fn epochs_held(office: &mut Office, ring: &Keyring, team: &str) -> Vec<u32> {
        let held: Vec<u32> = ring
            .iter()
            .filter(|k| k.team() == team)
            .map(|k| k.epoch())
            .collect();
        for &e in &held {
            assert_eq!(
                ring.get(team, e).unwrap().bytes(),
                office.key(team, e).bytes(),
                "{team} epoch {e}"
            );
        }
        held
    }

    /// Office, devices A and B admitted into T03, C into T04, then A revoked: four statements.
    fn four() -> (Office, [DeviceKeys; 3]) {
        let mut office = Office::new();
        let devices = [
            DeviceKeys::generate(),
            DeviceKeys::generate(),
            DeviceKeys::generate(),
        ];
        office.admit(&devices[0], "T03");
        office.admit(&devices[1], "T03");
        office.admit(&devices[2], "T04");
        office.revoke(&devices[0], "T03");
        (office, devices)
    }

    /// A new device's public keys.
    pub(crate) fn fresh() -> DevicePublic {
        DevicePublic::from_keys(&DeviceKeys::generate())
    }

    fn heads(r: &Roster) -> (u64, usize) {
        (r.head(), r.problems.len())
    }

    #[test]
    fn the_chain_is_rebuilt_in_any_input_order() {
        let (office, [a, b, c]) = four();
        let reference = office.roster();
        assert!(reference.problems.is_empty(), "{:?}", reference.problems);
        assert_eq!(reference.head(), 4);
        assert_eq!(reference.chain(), &office.chain[..]);
        let ch = &office.chain;
        let orders: Vec<Vec<Statement>> = vec![
            ch.iter().rev().cloned().collect(),
            vec![ch[2].clone(), ch[0].clone(), ch[3].clone(), ch[1].clone()],
            vec![ch[1].clone(), ch[3].clone(), ch[2].clone(), ch[0].clone()],
            // Repeats change nothing, wherever they are.
            vec![
                ch[3].clone(),
                ch[0].clone(),
                ch[1].clone(),
                ch[0].clone(),
                ch[2].clone(),
                ch[3].clone(),
            ],
        ];
        for order in orders {
            let r = Roster::build(&office.public(), &order);
            assert!(r.problems.is_empty(), "{:?}", r.problems);
            assert_eq!(r.chain(), reference.chain());
            assert_eq!(r.head_hash(), ch[3].hash());
            assert_eq!(
                r.members().collect::<Vec<_>>(),
                reference.members().collect::<Vec<_>>()
            );
        }
        assert_eq!(reference.epoch("T03"), 2);
        assert_eq!(reference.epoch("T04"), 1);
        assert_eq!(reference.epoch("T05"), 0);
        assert_eq!(reference.member(&a.id()).unwrap().revoked, Some(12));
        assert_eq!(reference.member(&b.id()).unwrap().team, "T03");
        assert_eq!(reference.member(&c.id()).unwrap().team, "T04");
        assert_eq!(
            reference.members().count(),
            4,
            "three devices and the office"
        );
        assert!(reference.is_office(&office.keys.id()));
        assert_eq!(
            reference.member(&office.keys.id()).unwrap().team,
            OFFICE_TEAM
        );
        // The revoked device keeps what it wrote up to its last number, and connects no more.
        assert_eq!(reference.may_write(&a.id(), 12), Ok(()));
        assert_eq!(
            reference.may_write(&a.id(), 13),
            Err(Refusal::Revoked { last_seq: 12 })
        );
        assert!(matches!(
            reference.may_connect(&a.id()),
            Err(Refusal::Revoked { last_seq: 12 })
        ));
        assert_eq!(reference.may_connect(&b.id()).unwrap().team, "T03");
        let stranger = DeviceKeys::generate().id();
        assert_eq!(reference.may_write(&stranger, 1), Err(Refusal::NotMember));
        assert!(Roster::build(&office.public(), &[]).problems.is_empty());
    }

    #[test]
    fn a_broken_link_stops_the_chain_there_with_a_sentence() {
        let (mut office, [a, ..]) = four();
        let public = office.public();
        let ch = office.chain.clone();
        let stop_at_3 = |statements: &[Statement], why: &str| {
            let r = Roster::build(&public, statements);
            assert_eq!(r.head(), 2, "{why}: {:?}", r.problems);
            assert_eq!(r.problems.len(), 1, "{why}: {:?}", r.problems);
            let p = &r.problems[0];
            assert!(
                p.starts_with("roster statements ") && p.contains(" to 4 were ignored: "),
                "{why}: {p}"
            );
            // Statement 4 is ignored: A is not revoked.
            assert_eq!(r.member(&a.id()).unwrap().revoked, None, "{why}");
            assert_eq!(r.epoch("T03"), 1, "{why}");
        };

        // Statement 3 signed by another key.
        let mut impostor = Office::new();
        let act = impostor.admit_act(&fresh(), "T04", 1);
        let forged = Statement::issue(&impostor.keys, 3, ch[1].hash(), 1_000, act).unwrap();
        stop_at_3(
            &[ch[0].clone(), ch[1].clone(), forged, ch[3].clone()],
            "unsigned",
        );

        // Statement 3 altered after signing.
        let mut altered = ch[2].clone();
        altered.at += 1;
        stop_at_3(
            &[ch[0].clone(), ch[1].clone(), altered, ch[3].clone()],
            "altered",
        );

        // A gap: statement 3 missing.
        stop_at_3(&[ch[0].clone(), ch[1].clone(), ch[3].clone()], "gap");

        // Statement 3 signed by the office but naming another `prev`.
        let unlinked =
            Statement::issue(&office.keys, 3, ch[0].hash(), 1_000, ch[2].act.clone()).unwrap();
        stop_at_3(
            &[ch[0].clone(), ch[1].clone(), unlinked, ch[3].clone()],
            "prev",
        );

        // Two different statements 3, both signed and linked: neither is taken, in any order.
        let other = DeviceKeys::generate();
        let act = office.admit_act(&DevicePublic::from_keys(&other), "T04", 1);
        let twin = Statement::issue(&office.keys, 3, ch[1].hash(), 1_000, act).unwrap();
        for order in [
            vec![
                ch[0].clone(),
                ch[1].clone(),
                ch[2].clone(),
                twin.clone(),
                ch[3].clone(),
            ],
            vec![
                ch[3].clone(),
                twin.clone(),
                ch[1].clone(),
                ch[2].clone(),
                ch[0].clone(),
            ],
            vec![
                ch[2].clone(),
                ch[0].clone(),
                twin.clone(),
                ch[1].clone(),
                ch[2].clone(),
            ],
        ] {
            let r = Roster::build(&public, &order);
            assert_eq!(heads(&r), (2, 1), "{:?}", r.problems);
            assert!(
                r.problems[0].contains("two different statements"),
                "{:?}",
                r.problems
            );
            assert!(r.member(&other.id()).is_none());
        }

        // The first statement missing: nothing is taken.
        let r = Roster::build(&public, &ch[1..]);
        assert_eq!(heads(&r), (0, 1));
        assert!(
            r.problems[0].starts_with("roster statements 2 to 4"),
            "{:?}",
            r.problems
        );
        assert_eq!(r.members().count(), 1, "only the office");
    }

    #[test]
    fn contradicting_acts_take_no_effect_and_are_described() {
        let mut office = Office::new();
        let (a, b, c) = (
            DeviceKeys::generate(),
            DeviceKeys::generate(),
            DeviceKeys::generate(),
        );
        office.admit(&a, "T03"); // 1
        office.admit(&b, "T03"); // 2
        let act = office.admit_act(&DevicePublic::from_keys(&a), "T04", 1);
        office.issue(act); // 3: A again, into another team
        let act = office.admit_act(&DevicePublic::from_keys(&c), "T03", 2);
        office.issue(act); // 4: T03 is at epoch 1
        let act = office.revoke_act(&b.id(), "T03", 3);
        office.issue(act); // 5: skips epoch 2
        let act = office.revoke_act(&c.id(), "T03", 2);
        office.issue(act); // 6: C is not a member
        let act = office.revoke_act(&a.id(), "T04", 2);
        office.issue(act); // 7: A is a member of T03, not T04
        let itself = DevicePublic::from_keys(&office.keys);
        let act = office.admit_act(&itself, "T05", 1);
        office.issue(act); // 8: the office itself
        let act = office.admit_act(&DevicePublic::from_keys(&c), "T04", 1);
        office.issue(act); // 9: takes effect

        let r = office.roster();
        assert_eq!(r.head(), 9, "the chain itself is whole: {:?}", r.problems);
        let expected = [
            (3, "already a member with another team"),
            (4, "grants epoch 2 of team T03 whose current epoch is 1"),
            (5, "starts epoch 3 of team T03 whose current epoch is 1"),
            (6, "not a member of team T03"),
            (7, "not a member of team T04"),
            (8, "admits the office itself"),
        ];
        assert_eq!(r.problems.len(), expected.len(), "{:?}", r.problems);
        for ((n, why), p) in expected.iter().zip(&r.problems) {
            assert!(
                p.starts_with(&format!("roster statement {n} (device ")) && p.contains(why),
                "{n}: {p}"
            );
        }
        assert_eq!(r.member(&a.id()).unwrap().team, "T03");
        assert_eq!(r.member(&a.id()).unwrap().revoked, None);
        assert_eq!(r.member(&b.id()).unwrap().revoked, None);
        assert_eq!(r.member(&c.id()).unwrap().team, "T04");
        assert_eq!(r.epoch("T03"), 1);
        assert_eq!(r.epoch("T04"), 1);
        assert_eq!(r.epoch("T05"), 0);
        assert_eq!(r.member(&office.keys.id()).unwrap().team, OFFICE_TEAM);
        // A statement without effect grants nothing: A gets no T04 key, B no epoch 3.
        let ring = r.keyring(&a);
        assert_eq!(epochs_held(&mut office, &ring, "T03"), vec![1]);
        assert!(ring.get("T04", 1).is_none());
        let ring = r.keyring(&b);
        assert_eq!(epochs_held(&mut office, &ring, "T03"), vec![1]);
    }

    #[test]
    fn place_tells_where_a_statement_falls() {
        let (mut office, _) = four();
        let ch = office.chain.clone();
        let r = Roster::build(&office.public(), &ch[..2]);
        assert_eq!(r.place(&ch[0]), Placement::Known);
        assert_eq!(r.place(&ch[1]), Placement::Known);
        assert_eq!(r.place(&ch[2]), Placement::Next);
        assert_eq!(r.place(&ch[3]), Placement::Ahead);
        // Another statement 2, signed and linked to 1: a conflict.
        let act = office.admit_act(&fresh(), "T09", 1);
        let other2 = Statement::issue(&office.keys, 2, ch[0].hash(), 1_000, act.clone()).unwrap();
        assert_eq!(r.place(&other2), Placement::Conflict);
        // Statement 3 naming the wrong previous hash.
        let bad_prev = Statement::issue(&office.keys, 3, ch[0].hash(), 1_000, act.clone()).unwrap();
        assert_eq!(r.place(&bad_prev), Placement::Conflict);
        // Statement 3 not signed by the office, or altered: a conflict, even ahead.
        let forged =
            Statement::issue(&DeviceKeys::generate(), 3, ch[1].hash(), 1_000, act).unwrap();
        assert_eq!(r.place(&forged), Placement::Conflict);
        let mut altered = ch[3].clone();
        altered.counter = 9;
        assert_eq!(r.place(&altered), Placement::Conflict);
        // An empty roster: statement 1 is next, and must name zeros.
        let empty = Roster::build(&office.public(), &[]);
        assert_eq!(empty.head_hash(), [0; 32]);
        assert_eq!(empty.place(&ch[0]), Placement::Next);
        assert_eq!(empty.place(&ch[1]), Placement::Ahead);
        let full = office.roster();
        assert_eq!(full.place(&ch[3]), Placement::Known);
    }

    #[test]
    fn reconcile_never_rolls_the_roster_back() {
        let (mut office, _) = four();
        let public = office.public();
        let ch = office.chain.clone();
        let kept = |r: &Reconciled, held: &[Statement], why: &str| {
            assert_eq!(r.statements, held, "{why}");
            assert!(!r.warnings.is_empty(), "{why}");
        };

        // A shorter chain (an older head, which would hide the revocation).
        let r = reconcile(&public, &ch, &ch[..3]);
        kept(&r, &ch, "older head");
        assert!(
            r.warnings
                .last()
                .unwrap()
                .contains("older than statement 4"),
            "{:?}",
            r.warnings
        );
        // Nothing served at all.
        kept(&reconcile(&public, &ch[..2], &[]), &ch[..2], "empty");

        // Another statement at a counter this device holds.
        let act = office.admit_act(&fresh(), "T09", 1);
        let other3 = Statement::issue(&office.keys, 3, ch[1].hash(), 1_000, act).unwrap();
        let act = office.admit_act(&fresh(), "T09", 1);
        let other4 = Statement::issue(&office.keys, 4, other3.hash(), 1_000, act).unwrap();
        let forked = vec![ch[0].clone(), ch[1].clone(), other3, other4];
        let r = reconcile(&public, &ch, &forked);
        kept(&r, &ch, "fork");
        assert!(
            r.warnings
                .last()
                .unwrap()
                .contains("another roster statement 3"),
            "{:?}",
            r.warnings
        );

        // A broken chain: statement 3 altered, so statement 4 is unreachable.
        let mut altered = ch[2].clone();
        altered.at += 1;
        let broken = vec![ch[0].clone(), ch[1].clone(), altered, ch[3].clone()];
        let r = reconcile(&public, &ch, &broken);
        kept(&r, &ch, "broken");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.starts_with("roster statements 3 to 4")),
            "{:?}",
            r.warnings
        );

        // A longer chain that holds every held statement: taken, without a warning.
        let r = reconcile(&public, &ch[..2], &ch);
        assert_eq!(r.statements, ch);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // The same chain: taken.
        let r = reconcile(&public, &ch, &ch);
        assert_eq!((r.statements.len(), r.warnings.len()), (4, 0));
        // A longer chain with a broken tail: its good part is taken, the tail reported.
        let act = office.admit_act(&fresh(), "T03", 2);
        let mut bad5 = Statement::issue(&office.keys, 5, ch[3].hash(), 1_000, act).unwrap();
        bad5.office_signature[0] ^= 1;
        let served = [ch.clone(), vec![bad5]].concat();
        let r = reconcile(&public, &ch[..3], &served);
        assert_eq!(r.statements, ch);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    }

    #[test]
    fn a_device_holding_only_its_admission_at_counter_n() {
        let (mut office, _) = four();
        let me = DeviceKeys::generate();
        office.admit(&DeviceKeys::generate(), "T04"); // 5
        let mine = office.admit(&me, "T03"); // statement 6
        assert_eq!(mine.counter, 6);
        office.admit(&DeviceKeys::generate(), "T03"); // 7
        let public = office.public();
        let ch = office.chain.clone();
        let held = std::slice::from_ref(&mine);

        // Served the whole chain holding it: taken.
        let r = reconcile(&public, held, &ch);
        assert_eq!(r.statements, ch);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let roster = Roster::build(&public, &r.statements);
        assert_eq!(roster.member(&me.id()).unwrap().team, "T03");
        assert_eq!(roster.keyring(&me).newest("T03").unwrap().epoch(), 2);
        // Served up to and including it: taken.
        let r = reconcile(&public, held, &ch[..6]);
        assert_eq!((r.statements.len(), r.warnings.len()), (6, 0));
        // Served a chain that stops before it, or another statement 6: kept.
        for served in [&ch[..5], &ch[..0]] {
            let r = reconcile(&public, held, served);
            assert_eq!(r.statements, held);
            assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        }
        let act = office.admit_act(&fresh(), "T03", 2);
        let other6 = Statement::issue(&office.keys, 6, ch[4].hash(), 1_000, act).unwrap();
        let r = reconcile(&public, held, &[&ch[..5], &[other6][..]].concat());
        assert_eq!(r.statements, held);
        // On its own it builds no roster (statements 1 to 5 are missing), and says so.
        let alone = Roster::build(&public, held);
        assert_eq!(heads(&alone), (0, 1));
    }

    #[test]
    fn every_device_gets_the_keys_of_its_epochs() {
        let mut office = Office::new();
        let (a, b, late) = (
            DeviceKeys::generate(),
            DeviceKeys::generate(),
            DeviceKeys::generate(),
        );
        let other_team = DeviceKeys::generate();
        office.admit(&a, "T03"); // epoch 1
        office.admit(&b, "T03"); // epoch 1
        office.admit(&other_team, "T04");
        office.revoke(&a, "T03"); // epoch 2
        office.admit(&late, "T03"); // admitted at epoch 2
        let r = office.roster();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.epoch("T03"), 2);

        // Admitted at epoch 1 and kept: both epochs, epoch 2 granted after the revocation.
        let ring = r.keyring(&b);
        assert_eq!(epochs_held(&mut office, &ring, "T03"), vec![1, 2]);
        assert_eq!(ring.len(), 2, "no other team's key");
        // Admitted after the revocation: epoch 2 granted, epoch 1 through `earlier`.
        let ring = r.keyring(&late);
        assert_eq!(epochs_held(&mut office, &ring, "T03"), vec![1, 2]);
        assert_eq!(ring.newest("T03").unwrap().epoch(), 2);
        assert_eq!(ring.len(), 2);
        // The revoked device: epoch 1 only.
        let ring = r.keyring(&a);
        assert_eq!(epochs_held(&mut office, &ring, "T03"), vec![1]);
        assert_eq!(ring.len(), 1);
        // Another team: its own key only.
        let ring = r.keyring(&other_team);
        assert_eq!(epochs_held(&mut office, &ring, "T04"), vec![1]);
        assert_eq!(ring.len(), 1);
        // The office: everything.
        let ring = r.keyring(&office.keys);
        assert_eq!(epochs_held(&mut office, &ring, "T03"), vec![1, 2]);
        assert_eq!(epochs_held(&mut office, &ring, "T04"), vec![1]);
        assert_eq!(ring.len(), 3);
        // A stranger: nothing.
        assert!(r.keyring(&DeviceKeys::generate()).is_empty());

        // Three epochs: the late device walks back through two `earlier` links.
        let c = DeviceKeys::generate();
        office.revoke(&b, "T03"); // epoch 3
        office.admit(&c, "T03");
        let r = office.roster();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let ring = r.keyring(&c);
        assert_eq!(epochs_held(&mut office, &ring, "T03"), vec![1, 2, 3]);
        assert_eq!(epochs_held(&mut office, &r.keyring(&b), "T03"), vec![1, 2]);
        assert_eq!(
            epochs_held(&mut office, &r.keyring(&late), "T03"),
            vec![1, 2, 3]
        );
    }

    /// A sealed name opens for the office and the device's team, at its epoch only, and
    /// cannot be moved onto another admission; a plain name of an older statement stays.
    #[test]
    fn sealed_names_open_for_the_team_and_the_office_only() {
        let mut office = Office::new();
        let (a1, a2, b1) = (fresh(), fresh(), fresh());
        let mut sealed = |device: &DevicePublic, team: &str, name: &str| {
            let mut act = office.admit_act(device, team, 1);
            if let Act::Admit(a) = &mut act {
                let key = office.key(team, 1);
                a.name = None;
                a.sealed_name = Some(crate::seal_name(&key, &device.signing, name).unwrap());
            }
            act
        };
        let acts = [
            sealed(&a1, "T01", "alpha one"),
            sealed(&a2, "T01", "alpha two"),
            sealed(&b1, "T02", "bravo one"),
        ];
        for act in acts {
            office.issue(act);
        }
        let plain = office.admit_act(&fresh(), "T02", 1);
        let plain_id = match &plain {
            Act::Admit(a) => a.device.signing,
            _ => unreachable!(),
        };
        office.issue(plain);
        let mut roster = office.roster();
        assert!(roster.problems.is_empty(), "{:?}", roster.problems);
        let name = |r: &Roster, d: &DevicePublic| r.member(&d.signing).unwrap().name.clone();
        // Before opening: no sealed name is read; the plain one is.
        assert_eq!(name(&roster, &a1), None);
        assert_eq!(
            roster.member(&plain_id).unwrap().name.as_deref(),
            Some("tablet")
        );
        // A member of T01 holding T01's key reads its team's names only.
        let key_a = office.key("T01", 1);
        let mut ring = Keyring::default();
        ring.insert(office.key("T01", 1));
        roster.open_names(&ring);
        assert_eq!(name(&roster, &a1).as_deref(), Some("alpha one"));
        assert_eq!(name(&roster, &a2).as_deref(), Some("alpha two"));
        assert_eq!(name(&roster, &b1), None);
        // The office holds every team's key.
        let mut all = Keyring::default();
        all.insert(office.key("T01", 1));
        all.insert(office.key("T02", 1));
        let mut at_office = office.roster();
        at_office.open_names(&all);
        assert_eq!(name(&at_office, &b1).as_deref(), Some("bravo one"));
        // A sealed name moved onto another device's admission does not open.
        let epoch_2 = office.key("T01", 2);
        let Act::Admit(first) = &office.chain[0].act else {
            unreachable!()
        };
        let Act::Admit(second) = &office.chain[1].act else {
            unreachable!()
        };
        let moved = Admit {
            sealed_name: first.sealed_name.clone(),
            ..second.clone()
        };
        assert_eq!(moved.open_name(Some(&key_a)), None);
        assert_eq!(first.open_name(Some(&epoch_2)), None);
        assert!(!serde_json::to_string(&office.chain[0])
            .unwrap()
            .contains("alpha"));
    }
    /// A staff device joins the office's team; the office grants it every team's key and
    /// rotates every team when it is revoked. Grants to anyone else take no effect.
    #[test]
    fn staff_read_every_team_until_revoked() {
        let mut office = Office::new();
        let (field, other, staff, stranger) = (
            DeviceKeys::generate(),
            DeviceKeys::generate(),
            DeviceKeys::generate(),
            DeviceKeys::generate(),
        );
        office.admit(&field, "T03");
        office.admit(&other, "T04");
        let public = |k: &DeviceKeys| DevicePublic::from_keys(k);
        let grant = |office: &mut Office, team: &str, epoch: u32, to: &[&DeviceKeys]| {
            let key = office.key(team, epoch);
            Act::Grant(KeyGrant {
                team: team.to_owned(),
                epoch,
                grants: to
                    .iter()
                    .map(|d| Grant::new(&key, &public(d)).unwrap())
                    .collect(),
            })
        };
        // The office's own team starts at epoch 1 with no statement; the office can put its
        // key in the chain for itself.
        assert_eq!(office.roster().epoch(OFFICE_TEAM), 1);
        let itself = DeviceKeys::from_unlocked_bytes(&office.keys.to_unlocked_bytes()).unwrap();
        let own = grant(&mut office, OFFICE_TEAM, 1, &[&itself]);
        office.issue(own);
        office.admit(&staff, OFFICE_TEAM);
        for (team, _) in [("T03", 1), ("T04", 1)] {
            let act = grant(&mut office, team, 1, &[&staff]);
            office.issue(act);
        }
        let r = office.roster();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.is_staff(&staff.id()) && r.speaks_for_office(&staff.id()));
        assert!(!r.is_staff(&office.keys.id()) && r.speaks_for_office(&office.keys.id()));
        assert!(!r.speaks_for_office(&field.id()));
        assert_eq!(r.office_devices(), {
            let mut ids = vec![office.keys.id(), staff.id()];
            ids[1..].sort();
            ids
        });
        let ring = r.keyring(&staff);
        for team in ["T03", "T04", OFFICE_TEAM] {
            assert_eq!(epochs_held(&mut office, &ring, team), vec![1], "{team}");
        }
        let at_office = r.keyring(&office.keys);
        assert_eq!(epochs_held(&mut office, &at_office, OFFICE_TEAM), vec![1]);
        // A grant to a field device of another team, a stale epoch, or a team with no member:
        // no effect, and no key.
        let leak = grant(&mut office, "T03", 1, &[&other]);
        office.issue(leak);
        let stale = grant(&mut office, "T03", 2, &[&staff]);
        office.issue(stale);
        let empty = grant(&mut office, "T09", 1, &[&staff]);
        office.issue(empty);
        let r = office.roster();
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        assert!(
            r.problems[0].contains("neither the office"),
            "{:?}",
            r.problems
        );
        assert_eq!(r.keyring(&other).len(), 1, "T04's key only");
        assert!(r.keyring(&stranger).is_empty());

        // Revoking the staff device: its team moves on, and every other team rotates,
        // granted to the team's members and the office, never to the revoked device.
        office.revoke(&staff, OFFICE_TEAM);
        for (team, member) in [("T03", &field), ("T04", &other)] {
            let (new, old) = (office.key(team, 2), office.key(team, 1));
            let act = Act::Rotate(Rotate {
                team: team.to_owned(),
                epoch: 2,
                grants: vec![
                    Grant::new(&new, &public(member)).unwrap(),
                    Grant::new(&new, &public(&office.keys)).unwrap(),
                ],
                earlier: STANDARD.encode(new.wrap_earlier(&old).unwrap()),
            });
            office.issue(act);
        }
        let r = office.roster();
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        assert_eq!(
            (r.epoch("T03"), r.epoch("T04"), r.epoch(OFFICE_TEAM)),
            (2, 2, 2)
        );
        assert!(
            r.is_staff(&staff.id()),
            "a revoked staff device's old changes still speak"
        );
        assert_eq!(r.staff().count(), 0);
        let ring = r.keyring(&staff);
        assert_eq!(ring.len(), 3, "epoch 1 of each team, nothing after");
        assert_eq!(
            epochs_held(&mut office, &r.keyring(&field), "T03"),
            vec![1, 2]
        );
        let at_office = r.keyring(&office.keys);
        assert_eq!(epochs_held(&mut office, &at_office, "T04"), vec![1, 2]);
        // A rotation granting to the revoked staff device, or skipping an epoch: no effect.
        let (new, old) = (office.key("T03", 3), office.key("T03", 2));
        let act = Act::Rotate(Rotate {
            team: "T03".to_owned(),
            epoch: 3,
            grants: vec![Grant::new(&new, &public(&staff)).unwrap()],
            earlier: STANDARD.encode(new.wrap_earlier(&old).unwrap()),
        });
        office.issue(act);
        let r = office.roster();
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        assert_eq!(r.epoch("T03"), 2);
        assert_eq!(r.keyring(&staff).len(), 3);
    }
}
