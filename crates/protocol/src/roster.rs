//! The roster: who may write, and whom to encrypt to, rebuilt from signed statements.
//!
//! The server stores and serves the statements, but every device (and the server itself)
//! rebuilds the roster by checking each signature, so a compromised server cannot add a
//! reader or a writer: it can only withhold statements, which at worst keeps a device out.
//! The result does not depend on the order of the statements.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cairn_crypto::DeviceId;
use serde::{Deserialize, Serialize};

use crate::{Enrollment, OfficeKeys, Revocation};

/// The team the office belongs to.
pub const OFFICE_TEAM: &str = "office";

/// One signed roster statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Statements are few (one per device and revocation) and built rarely; boxing would only
// make every match and construction noisier.
#[allow(clippy::large_enum_variant)]
pub enum Statement {
    /// A device joined a team with an office-signed invite.
    Enrollment(Enrollment),
    /// The office revoked a device.
    Revocation(Revocation),
}

/// One member of the roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The device id (its Ed25519 key).
    pub id: DeviceId,
    /// Its team (`office` for the office).
    pub team: String,
    /// Its age recipient.
    pub recipient: String,
    /// The name given at enrollment.
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
            Refusal::NotMember => f.write_str("the device is not enrolled in this office's roster"),
            Refusal::Revoked { last_seq } => write!(
                f,
                "the device was revoked by the office; changes numbered above {last_seq} are refused"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// The checked roster.
#[derive(Clone, Debug)]
pub struct Roster {
    office: OfficeKeys,
    members: BTreeMap<DeviceId, Member>,
    as_of: u64,
    /// Statements that failed a check and were ignored, one sentence each.
    pub problems: Vec<String>,
}

impl Roster {
    /// Checks every statement and builds the roster. A statement that fails is ignored and
    /// reported in `problems`. An invite used by two different devices excludes both (the
    /// server should have accepted only one). A device enrolled twice with different teams or
    /// keys is excluded too. Revocations apply whatever their order; the lowest `last_seq`
    /// wins. `now` is recorded as the time the roster was built.
    pub fn build(office: &OfficeKeys, statements: &[Statement], now: u64) -> Roster {
        let mut problems = Vec::new();
        let mut by_invite: BTreeMap<&str, Vec<&Enrollment>> = BTreeMap::new();
        let mut revocations = Vec::new();
        for statement in statements {
            match statement {
                Statement::Enrollment(e) => match e.verify(&office.signing) {
                    Ok(()) => by_invite.entry(e.invite.id()).or_default().push(e),
                    Err(err) => problems.push(format!(
                        "enrollment of device {} ignored: {err}",
                        e.device.signing.short()
                    )),
                },
                Statement::Revocation(r) => match r.verify(&office.signing) {
                    Ok(()) => revocations.push(r),
                    Err(err) => problems.push(format!(
                        "revocation of device {} ignored: {err}",
                        r.device.short()
                    )),
                },
            }
        }

        // One invite, one device.
        let mut by_device: BTreeMap<DeviceId, Vec<&Enrollment>> = BTreeMap::new();
        for (invite_id, enrollments) in by_invite {
            let devices: BTreeSet<DeviceId> = enrollments.iter().map(|e| e.device_id()).collect();
            if devices.len() > 1 {
                problems.push(format!(
                    "invite {invite_id} was used by {} devices; all of them are excluded, issue each a new invite",
                    devices.len()
                ));
                continue;
            }
            for e in enrollments {
                by_device.entry(e.device_id()).or_default().push(e);
            }
        }

        let mut members = BTreeMap::new();
        members.insert(
            office.signing,
            Member {
                id: office.signing,
                team: OFFICE_TEAM.to_owned(),
                recipient: office.recipient.clone(),
                name: None,
                revoked: None,
            },
        );
        for (id, mut enrollments) in by_device {
            // Deterministic whatever the order the server sent: the lowest invite id first,
            // and for one invite presented twice (the device signed two names), the lowest
            // signed claim, so the member's name does not depend on the order either.
            enrollments.sort_by(|a, b| {
                a.invite
                    .id()
                    .cmp(b.invite.id())
                    .then_with(|| a.signed_bytes().cmp(&b.signed_bytes()))
            });
            let Some(&first) = enrollments.first() else {
                continue;
            };
            let consistent = enrollments
                .iter()
                .all(|e| e.team() == first.team() && e.device.recipient == first.device.recipient);
            if !consistent {
                problems.push(format!(
                    "device {} is enrolled with different teams or keys; it is excluded until the office sorts it out",
                    id.short()
                ));
                continue;
            }
            members.insert(
                id,
                Member {
                    id,
                    team: first.team().to_owned(),
                    recipient: first.device.recipient.clone(),
                    name: first.name.clone(),
                    revoked: None,
                },
            );
        }

        for r in revocations {
            if r.device == office.signing {
                problems.push("a revocation of the office itself was ignored".to_owned());
                continue;
            }
            match members.get_mut(&r.device) {
                Some(member) => {
                    member.revoked = Some(member.revoked.map_or(r.last_seq, |s| s.min(r.last_seq)));
                }
                None => problems.push(format!(
                    "revocation of device {} ignored: it is not a member",
                    r.device.short()
                )),
            }
        }

        Roster {
            office: office.clone(),
            members,
            as_of: now,
            problems,
        }
    }

    /// The office's keys this roster was checked against.
    pub fn office(&self) -> &OfficeKeys {
        &self.office
    }

    /// When the roster was built (Unix seconds), as passed to [`Roster::build`].
    pub fn as_of(&self) -> u64 {
        self.as_of
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

    /// The age recipients a change of `team` is sealed to: the office and every member of
    /// the team that is not revoked. Sorted, without duplicates.
    pub fn recipients_for_team(&self, team: &str) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        out.insert(self.office.recipient.clone());
        for m in self.members.values() {
            if m.team == team && m.revoked.is_none() {
                out.insert(m.recipient.clone());
            }
        }
        out.into_iter().collect()
    }

    /// Whose changes `reader` receives when pulling: `None` means everyone's (the office);
    /// otherwise the office and every member of the reader's team, revoked ones included
    /// (their changes up to `last_seq` stay valid). Empty for a non-member.
    pub fn readable_authors(&self, reader: &DeviceId) -> Option<Vec<DeviceId>> {
        if self.is_office(reader) {
            return None;
        }
        let Some(me) = self.members.get(reader) else {
            return Some(Vec::new());
        };
        Some(
            self.members
                .values()
                .filter(|m| m.team == me.team || m.id == self.office.signing)
                .map(|m| m.id)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Invite;
    use cairn_crypto::DeviceKeys;

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    struct World {
        office: DeviceKeys,
        keys: OfficeKeys,
    }

    impl World {
        fn new() -> Self {
            let office = DeviceKeys::generate();
            let keys = OfficeKeys::from_keys(&office);
            World { office, keys }
        }
        fn invite(&self, team: &str) -> Invite {
            Invite::issue(&self.office, team, "https://h:1", FP, 10).unwrap()
        }
        fn enroll(&self, device: &DeviceKeys, team: &str) -> Statement {
            Statement::Enrollment(Enrollment::create(device, self.invite(team), None).unwrap())
        }
    }

    #[test]
    fn members_teams_and_recipients() {
        let w = World::new();
        let a = DeviceKeys::generate();
        let b = DeviceKeys::generate();
        let c = DeviceKeys::generate();
        let statements = vec![w.enroll(&a, "T1"), w.enroll(&b, "T1"), w.enroll(&c, "T2")];
        let roster = Roster::build(&w.keys, &statements, 99);
        assert!(roster.problems.is_empty(), "{:?}", roster.problems);
        assert_eq!(roster.as_of(), 99);
        assert_eq!(roster.member(&w.office.id()).unwrap().team, OFFICE_TEAM);
        assert_eq!(roster.member(&a.id()).unwrap().team, "T1");
        let r1 = roster.recipients_for_team("T1");
        assert_eq!(r1.len(), 3);
        assert!(r1.contains(&w.keys.recipient));
        assert!(r1.contains(&a.public().recipient.to_string()));
        assert!(!r1.contains(&c.public().recipient.to_string()));
        let readable = roster.readable_authors(&a.id()).unwrap();
        assert_eq!(readable.len(), 3);
        assert!(readable.contains(&w.office.id()) && readable.contains(&b.id()));
        assert!(!readable.contains(&c.id()));
        assert_eq!(roster.readable_authors(&w.office.id()), None);
        assert_eq!(
            roster.readable_authors(&DeviceKeys::generate().id()),
            Some(vec![])
        );
        assert!(roster.may_write(&a.id(), 1_000).is_ok());
        assert_eq!(
            roster.may_write(&DeviceKeys::generate().id(), 1),
            Err(Refusal::NotMember)
        );
        assert!(roster.may_write(&w.office.id(), 5).is_ok());
    }

    #[test]
    fn revocation_limits_writes_and_recipients_in_any_order() {
        let w = World::new();
        let a = DeviceKeys::generate();
        let revoke = Statement::Revocation(Revocation::issue(&w.office, a.id(), 5, 7));
        let looser = Statement::Revocation(Revocation::issue(&w.office, a.id(), 9, 8));
        for statements in [
            vec![w.enroll(&a, "T1"), revoke.clone(), looser.clone()],
            vec![looser.clone(), revoke.clone(), w.enroll(&a, "T1")],
        ] {
            let roster = Roster::build(&w.keys, &statements, 0);
            assert!(roster.problems.is_empty(), "{:?}", roster.problems);
            assert!(roster.may_write(&a.id(), 5).is_ok());
            assert_eq!(
                roster.may_write(&a.id(), 6),
                Err(Refusal::Revoked { last_seq: 5 })
            );
            assert_eq!(
                roster.may_connect(&a.id()).unwrap_err(),
                Refusal::Revoked { last_seq: 5 }
            );
            assert_eq!(
                roster.recipients_for_team("T1"),
                vec![w.keys.recipient.clone()]
            );
            // Its earlier changes still reach its team.
            assert!(roster.readable_authors(&w.office.id()).is_none());
        }
    }

    #[test]
    fn forged_statements_are_ignored_and_reported() {
        let w = World::new();
        let mallory = World::new();
        let a = DeviceKeys::generate();
        let b = DeviceKeys::generate();
        let mut tampered = Enrollment::create(&b, w.invite("T1"), None).unwrap();
        tampered.name = Some("changed".into());
        let statements = vec![
            mallory.enroll(&a, "T1"),
            Statement::Enrollment(tampered),
            Statement::Revocation(Revocation::issue(&mallory.office, w.office.id(), 0, 0)),
            Statement::Revocation(Revocation::issue(&w.office, w.office.id(), 0, 0)),
            Statement::Revocation(Revocation::issue(
                &w.office,
                DeviceKeys::generate().id(),
                0,
                0,
            )),
        ];
        let roster = Roster::build(&w.keys, &statements, 0);
        assert_eq!(roster.members().count(), 1, "only the office");
        assert_eq!(roster.problems.len(), 5, "{:?}", roster.problems);
        assert!(roster.problems[0].contains("not signed by this office"));
        assert!(roster.may_connect(&w.office.id()).is_ok());
    }

    #[test]
    fn one_invite_used_twice_excludes_every_user() {
        let w = World::new();
        let invite = w.invite("T1");
        let a = DeviceKeys::generate();
        let b = DeviceKeys::generate();
        let ea = Enrollment::create(&a, invite.clone(), None).unwrap();
        let eb = Enrollment::create(&b, invite, None).unwrap();
        let statements = vec![
            Statement::Enrollment(ea.clone()),
            Statement::Enrollment(ea.clone()),
            Statement::Enrollment(eb),
        ];
        let roster = Roster::build(&w.keys, &statements, 0);
        assert!(roster.member(&a.id()).is_none() && roster.member(&b.id()).is_none());
        assert_eq!(roster.problems.len(), 1);
        assert!(roster.problems[0].contains("used by 2 devices"));
        // The same enrollment twice is just one.
        let roster = Roster::build(
            &w.keys,
            &[Statement::Enrollment(ea.clone()), Statement::Enrollment(ea)],
            0,
        );
        assert!(roster.problems.is_empty());
        assert!(roster.member(&a.id()).is_some());
    }

    #[test]
    fn one_invite_signed_with_two_names_gives_one_name_in_any_order() {
        // Found by the `roster` fuzz target (fuzz/regressions/roster/): the member's name
        // came from whichever enrollment the server happened to list first.
        let w = World::new();
        let a = DeviceKeys::generate();
        let invite = w.invite("T1");
        let first = Enrollment::create(&a, invite.clone(), Some("first".into())).unwrap();
        let second = Enrollment::create(&a, invite, Some("second".into())).unwrap();
        let mut statements = vec![Statement::Enrollment(second), Statement::Enrollment(first)];
        let forward = Roster::build(&w.keys, &statements, 0);
        assert!(forward.problems.is_empty(), "{:?}", forward.problems);
        statements.reverse();
        let backward = Roster::build(&w.keys, &statements, 0);
        assert_eq!(
            forward.member(&a.id()).unwrap().name,
            backward.member(&a.id()).unwrap().name
        );
        assert!(forward.members().eq(backward.members()));
    }

    #[test]
    fn a_device_in_two_teams_is_excluded() {
        let w = World::new();
        let a = DeviceKeys::generate();
        let roster = Roster::build(&w.keys, &[w.enroll(&a, "T1"), w.enroll(&a, "T2")], 0);
        assert!(roster.member(&a.id()).is_none());
        assert_eq!(roster.problems.len(), 1);
        let roster = Roster::build(&w.keys, &[w.enroll(&a, "T1"), w.enroll(&a, "T1")], 0);
        assert_eq!(roster.member(&a.id()).unwrap().team, "T1");
    }

    #[test]
    fn statements_json_is_tagged() {
        let w = World::new();
        let a = DeviceKeys::generate();
        let statements = vec![
            w.enroll(&a, "T1"),
            Statement::Revocation(Revocation::issue(&w.office, a.id(), 3, 4)),
        ];
        let json = serde_json::to_string(&statements).unwrap();
        assert!(json.contains(r#""type":"enrollment""#) && json.contains(r#""type":"revocation""#));
        let back: Vec<Statement> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, statements);
        assert!(serde_json::from_str::<Statement>(r#"{"type":"other"}"#).is_err());
    }
}
