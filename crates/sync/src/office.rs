//! The office's side: admitting devices and revoking them (its receipts: `receipt.rs`).
//!
//! The office writes the roster: each act is the next statement of its chain, signed, granting
//! the team key it concerns to the devices that must hold it and to the office itself. The
//! chain lives in the office's vault and reaches the server at the office's next sync (a
//! revocation is sent at once).
//!
//! Staff devices are members of the office's own team (`office`): admitting one grants it
//! every team's current key too, every later key the office issues is granted to each staff
//! device not revoked, and revoking one starts a new epoch of every team.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cairn_crypto::{device_tag, DeviceId, TeamKey};
use cairn_protocol::{
    unix_now, validate_team, Act, Admission, Admit, DeviceLine, DevicePublic, Grant, KeyGrant,
    Member, OfficeKeys, PlaceList, Places, Revoke, Roster, Rotate, Statement, OFFICE_TEAM,
};
use cairn_vault::{Role, Vault};

use crate::engine::{client_for, sync, Options};
use crate::join::point_at_server;
use crate::roster::stored_roster;
use crate::SyncError;

/// What a revocation did.
#[derive(Clone, Debug)]
pub struct Revoked {
    /// The device revoked.
    pub device: DeviceId,
    /// Its last change that stays valid; later ones are refused.
    pub last_seq: u64,
    /// The team's new epoch, whose key the device never receives.
    pub epoch: u32,
    /// For a staff device, which read every team: each other team's new epoch, started by
    /// the same revocation (empty for a field device).
    pub rotated: Vec<(String, u32)>,
}

/// Where an admitted device goes.
#[derive(Clone, Debug)]
pub struct AdmitTo {
    /// Its team ([`OFFICE_TEAM`] admits a staff device).
    pub team: String,
    /// The server's base URL.
    pub server: String,
    /// The server certificate's SHA-256, lowercase hex.
    pub fingerprint: String,
    /// Unix seconds after which the server refuses to register it.
    pub expires_at: u64,
}

/// A member's public keys, to grant it a key.
fn public(m: &Member) -> DevicePublic {
    DevicePublic {
        signing: m.id,
        recipient: m.recipient.clone(),
    }
}

/// `key` granted to every staff device not revoked, but `except`.
fn staff_grants(
    roster: &Roster,
    key: &TeamKey,
    except: Option<&DeviceId>,
) -> Result<Vec<Grant>, SyncError> {
    roster
        .staff()
        .filter(|m| Some(&m.id) != except)
        .map(|m| Ok(Grant::new(key, &public(m))?))
        .collect()
}

fn office_only(vault: &Vault) -> Result<OfficeKeys, SyncError> {
    if vault.settings().role != Role::Office {
        return Err(SyncError::OfficeOnly);
    }
    Ok(OfficeKeys::from_keys(vault.keys()))
}

/// The key of `team`'s current epoch (a new team gets epoch 1, made here: the caller stores
/// it with the statement that grants it).
fn team_key(vault: &Vault, roster: &Roster, team: &str) -> Result<TeamKey, SyncError> {
    let epoch = roster.epoch(team).max(1);
    if let Some(k) = vault.keyring().get(team, epoch) {
        return Ok(TeamKey::from_bytes(team, epoch, *k.bytes()));
    }
    if roster.epoch(team) > 0 {
        return Err(SyncError::Protocol(format!(
            "the office's vault lacks the key of team {team}'s epoch {epoch}"
        )));
    }
    Ok(TeamKey::generate(team, epoch))
}

/// Appends `acts` to the office's chain and stores them with the keys they grant, in one
/// transaction: a key is never kept without its statement, nor a statement without its key.
fn append(
    vault: &mut Vault,
    roster: &Roster,
    acts: Vec<Act>,
    keys: &[&TeamKey],
) -> Result<Vec<Statement>, SyncError> {
    let (mut counter, mut prev) = (roster.head(), roster.head_hash());
    let mut statements = Vec::with_capacity(acts.len());
    for act in acts {
        counter += 1;
        let statement = Statement::issue(vault.keys(), counter, prev, unix_now(), act)?;
        prev = statement.hash();
        statements.push(statement);
    }
    crate::roster::keep_issued(vault, &statements, keys)?;
    Ok(statements)
}

/// The one statement [`append`] made of one act.
fn one(mut statements: Vec<Statement>) -> Result<Statement, SyncError> {
    statements
        .pop()
        .ok_or_else(|| SyncError::Protocol("no roster statement was made".into()))
}

/// Admits the device whose `cairn id` line is `line` into a team, and returns the admission
/// line to hand back to it. The office's vault is pointed at the server if it was not yet.
pub fn admit(vault: &mut Vault, line: &DeviceLine, to: &AdmitTo) -> Result<Admission, SyncError> {
    let office = office_only(vault)?;
    let staff = to.team == OFFICE_TEAM;
    if !staff {
        validate_team(&to.team)?;
    }
    if vault.endpoint()?.server.is_none() {
        point_at_server(vault, &to.server, &to.fingerprint, &office)?;
    }
    let roster = stored_roster(vault)?;
    let device = &line.keys;
    if device.signing == office.signing {
        return Err(SyncError::Protocol("the office cannot admit itself".into()));
    }
    if let Some(member) = roster.member(&device.signing) {
        if member.revoked.is_some() {
            return Err(SyncError::AlreadyMember(format!(
                "device {} was revoked; it cannot be admitted again: a new vault, with keys of its own, can be",
                device.signing.short()
            )));
        }
        if member.team != to.team || member.recipient != device.recipient {
            return Err(SyncError::AlreadyMember(format!(
                "device {} is already a member of team {}",
                device.signing.short(),
                member.team
            )));
        }
    }
    let tag = device_tag(&device.signing.0);
    if let Some(other) = roster
        .members()
        .find(|m| m.team == to.team && m.id != device.signing && device_tag(&m.id.0) == tag)
    {
        return Err(SyncError::AlreadyMember(format!(
            "device {} of team {} has the same reference tag {tag}; the new device needs a new vault, with other keys",
            other.id.short(),
            to.team
        )));
    }
    let key = team_key(vault, &roster, &to.team)?;
    let office_public = DevicePublic {
        signing: office.signing,
        recipient: office.recipient.clone(),
    };
    let act = Act::Admit(Admit {
        device: device.clone(),
        // Sealed under the team key: only the office and the device's team read it.
        name: None,
        sealed_name: line
            .name
            .as_deref()
            .map(|n| cairn_protocol::seal_name(&key, &device.signing, n))
            .transpose()?,
        team: to.team.clone(),
        epoch: key.epoch(),
        // The device, the office, and every staff device (which reads every team).
        grants: [
            vec![Grant::new(&key, device)?, Grant::new(&key, &office_public)?],
            staff_grants(&roster, &key, Some(&device.signing))?,
        ]
        .concat(),
        server: to.server.trim_end_matches('/').to_owned(),
        fingerprint: to.fingerprint.to_ascii_lowercase(),
        expires_at: to.expires_at,
    });
    let mut acts = vec![act];
    // A staff device reads every team: each one's current key, granted in the statements
    // after its admission (they reach the server at the office's next sync).
    let mut keys = vec![key];
    if staff {
        for (team, epoch) in roster.teams().filter(|(t, _)| *t != OFFICE_TEAM) {
            let held = vault.keyring().get(team, epoch).ok_or_else(|| {
                SyncError::Protocol(format!(
                    "the office's vault lacks the key of team {team}'s epoch {epoch}"
                ))
            })?;
            let k = TeamKey::from_bytes(team, epoch, *held.bytes());
            acts.push(Act::Grant(KeyGrant {
                team: team.to_owned(),
                epoch,
                grants: vec![Grant::new(&k, device)?],
            }));
            keys.push(k);
        }
    }
    let key = &keys[0];
    // A team's first member: the list of places was sealed for no key it holds, so the office
    // seals it again, now for this team too, as the next statement (stored with the admission,
    // in one transaction; it goes out at the next sync).
    if roster.epoch(&to.team) == 0 {
        if let Some(list) = crate::roster::office_places(vault)?.filter(|l| !l.places.is_empty()) {
            acts.push(places_act(vault, &roster, &list, Some(key))?);
        }
    }
    let statement = append(vault, &roster, acts, &keys.iter().collect::<Vec<_>>())?.swap_remove(0);
    Ok(Admission { office, statement })
}

/// `list` sealed for the office and for every team of `roster` at its current epoch, and for
/// `new`, a team key not in the roster yet.
fn places_act(
    vault: &Vault,
    roster: &Roster,
    list: &PlaceList,
    new: Option<&TeamKey>,
) -> Result<Act, SyncError> {
    let office = OfficeKeys::from_keys(vault.keys());
    let mut keys: Vec<TeamKey> = Vec::new();
    for (team, epoch) in roster.teams() {
        let key = vault.keyring().get(team, epoch).ok_or_else(|| {
            SyncError::Protocol(format!(
                "the office's vault lacks the key of team {team}'s epoch {epoch}"
            ))
        })?;
        keys.push(TeamKey::from_bytes(team, epoch, *key.bytes()));
    }
    keys.extend(new.map(|k| TeamKey::from_bytes(k.team(), k.epoch(), *k.bytes())));
    let office_public = DevicePublic {
        signing: office.signing,
        recipient: office.recipient,
    };
    let places = Places::seal(list, &office_public, &keys.iter().collect::<Vec<_>>())?;
    Ok(Act::Places(places))
}

/// Makes `list` the office's list of places: the next statement of the roster, the list
/// sealed for the office and for every team at its current epoch. Goes out at the next sync.
/// (A revocation needs no new one: the remaining members and later ones hold the epoch it was
/// sealed at, and the revoked device read it already; the next list is sealed at the new epoch.)
pub fn set_places(vault: &mut Vault, list: &PlaceList) -> Result<Statement, SyncError> {
    // Before any admission the office is pointed at no server yet: its own chain all the same.
    let roster = Roster::build(&office_only(vault)?, &vault.roster_chain()?.statements);
    let act = places_act(vault, &roster, list, None)?;
    one(append(vault, &roster, vec![act], &[])?)
}

/// Revokes the member named `query` (its name, or the start of its id: see [`Roster::find`]). Syncs first, so
/// what the device already delivered stays valid and nothing later does: the cut-off is the
/// highest `n` such that the office holds its changes `1..=n`, refused ones included (every
/// replica refuses those too); starts a new epoch
/// of its team, granted to every other member, the office and every staff device; then hands
/// the server the statements at once. Revoking a staff device, which read every team, also
/// starts a new epoch of every other team (a rotation each), all in one transaction.
pub async fn revoke(
    vault: &mut Vault,
    query: &str,
    options: &Options,
) -> Result<Revoked, SyncError> {
    let office = office_only(vault)?;
    let client = client_for(&vault.endpoint()?, options.timeouts)?;
    sync(vault, options, &()).await.map_err(|(e, _)| e)?;
    let roster = crate::roster::named_roster(vault)?;
    // By name or by the start of its id; never the office, nor a device already revoked.
    let member = roster.find(query, |m| {
        !roster.is_office(&m.id) && roster.may_connect(&m.id).is_ok()
    })?;
    let (device, team) = (member.id, member.team.clone());
    let last_seq = vault.contiguous_seq(&device)?;
    let staff = team == OFFICE_TEAM;
    let office_public = DevicePublic {
        signing: office.signing,
        recipient: office.recipient.clone(),
    };
    let (old, new, grants, earlier) = next_epoch(vault, &roster, &team, &office_public, &device)?;
    let epoch = new.epoch();
    let mut acts = vec![Act::Revoke(Revoke {
        device,
        last_seq,
        team,
        epoch,
        grants,
        earlier,
    })];
    let mut keys = vec![old, new];
    let mut rotated = Vec::new();
    if staff {
        // It read every team: each starts a new epoch it never receives.
        let teams: Vec<String> = roster
            .teams()
            .filter(|(t, _)| *t != OFFICE_TEAM)
            .map(|(t, _)| t.to_owned())
            .collect();
        for t in teams {
            let (old, new, grants, earlier) =
                next_epoch(vault, &roster, &t, &office_public, &device)?;
            rotated.push((t.clone(), new.epoch()));
            acts.push(Act::Rotate(Rotate {
                team: t,
                epoch: new.epoch(),
                grants,
                earlier,
            }));
            keys.extend([old, new]);
        }
    }
    let statements = append(vault, &roster, acts, &keys.iter().collect::<Vec<_>>())?;
    // What the office holds of the device above a gap (the server withheld a change) is
    // refused everywhere from now on: taken out here too.
    vault.cut_off(&device, last_seq)?;
    client.post_roster(vault.keys(), &statements).await?;
    Ok(Revoked {
        device,
        last_seq,
        epoch,
        rotated,
    })
}

/// The keys of `team`'s current and next epoch, the next one granted to the office, every
/// member of the team and every staff device (but `leaving`, and none revoked), and the
/// current one sealed under the next (`earlier`, base64).
fn next_epoch(
    vault: &Vault,
    roster: &Roster,
    team: &str,
    office: &DevicePublic,
    leaving: &DeviceId,
) -> Result<(TeamKey, TeamKey, Vec<Grant>, String), SyncError> {
    let old = team_key(vault, roster, team)?;
    // A key of the next epoch already here was made by a revocation cut off before its
    // statement was stored (earlier cairn stored them apart): never granted, it is the one
    // to grant, since this vault seals with it.
    let next = old.epoch() + 1;
    let new = match vault.keyring().get(team, next) {
        Some(orphan) => TeamKey::from_bytes(team, next, *orphan.bytes()),
        None => TeamKey::generate(team, next),
    };
    let mut grants = vec![Grant::new(&new, office)?];
    for m in roster.members() {
        let reads = m.team == team || roster.is_staff(&m.id);
        if reads && !roster.is_office(&m.id) && m.revoked.is_none() && m.id != *leaving {
            grants.push(Grant::new(&new, &public(m))?);
        }
    }
    let earlier = new
        .wrap_earlier(&old)
        .map_err(|e| SyncError::Protocol(e.to_string()))?;
    Ok((old, new, grants, STANDARD.encode(earlier)))
}

/// Puts the key of the office's own team, at its current epoch, in the office's chain as a
/// grant to the office itself when the chain holds none (an office made before this, or a
/// new one at its first sync): the server then keeps it, and an office restored from the
/// server reads its own cases and editions again. Recorded in the vault; it reaches the server
/// with the next roster post.
pub(crate) fn grant_own_team(vault: &mut Vault) -> Result<(), SyncError> {
    let office = office_only(vault)?;
    let roster = Roster::build(&office, &vault.roster_chain()?.statements);
    let epoch = roster.epoch(OFFICE_TEAM);
    // Read from the chain, not opened: the office made each of those grants itself.
    let granted = roster.chain().iter().any(|s| {
        s.team_grants().is_some_and(|(team, e, grants)| {
            team == OFFICE_TEAM && e == epoch && grants.iter().any(|g| g.device == office.signing)
        })
    });
    if granted {
        return Ok(());
    }
    let Some(key) = vault.keyring().get(OFFICE_TEAM, epoch) else {
        // Nothing to grant: this vault never held it (it was restored without it).
        return Ok(());
    };
    let key = TeamKey::from_bytes(OFFICE_TEAM, epoch, *key.bytes());
    let office_public = DevicePublic {
        signing: office.signing,
        recipient: office.recipient.clone(),
    };
    let act = Act::Grant(KeyGrant {
        team: OFFICE_TEAM.to_owned(),
        epoch,
        grants: vec![Grant::new(&key, &office_public)?],
    });
    append(vault, &roster, vec![act], &[])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use cairn_crypto::{DeviceKeys, SealedChange};
    use cairn_model::{Edit, Kind};

    use super::*;
    use crate::testing::{vault, Setup};
    use crate::Options;

    /// A staff device is granted every team's key, a team's first member admitted after it
    /// included; revoking it moves every team to its next epoch, granted to the members, the
    /// other staff device and the office, never to it, and the server refuses it.
    #[tokio::test]
    async fn staff_read_every_team_and_their_revocation_rotates_every_team() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let a = setup.field(dir.path(), "a", "T03").await;
        let mut rana = setup.field(dir.path(), "rana", OFFICE_TEAM).await;
        let mut omar = setup.field(dir.path(), "omar", OFFICE_TEAM).await;
        let b = setup.field(dir.path(), "b", "T04").await;
        let options = Options::default();
        for staff in [&mut rana, &mut omar] {
            crate::sync(staff, &options, &()).await.unwrap();
            for team in ["T03", "T04", OFFICE_TEAM] {
                assert!(staff.keyring().get(team, 1).is_some(), "{team}");
            }
        }
        let roster = stored_roster(&setup.office).unwrap();
        assert!(roster.problems.is_empty(), "{:?}", roster.problems);
        assert_eq!(roster.staff().count(), 2);

        let revoked = revoke(&mut setup.office, "rana", &options).await.unwrap();
        assert_eq!(revoked.epoch, 2);
        assert_eq!(
            revoked.rotated,
            [("T03".to_owned(), 2), ("T04".to_owned(), 2)]
        );
        let roster = stored_roster(&setup.office).unwrap();
        assert!(roster.problems.is_empty(), "{:?}", roster.problems);
        let epochs: Vec<(&str, u32)> = roster.teams().collect();
        assert_eq!(epochs, [("T03", 2), ("T04", 2), (OFFICE_TEAM, 2)]);
        let held = |keys: &cairn_crypto::DeviceKeys, team: &str| {
            roster.keyring(keys).get(team, 2).is_some()
        };
        for team in ["T03", "T04", OFFICE_TEAM] {
            assert!(!held(rana.keys(), team), "{team}");
            assert!(held(omar.keys(), team), "{team}");
            assert!(held(setup.office.keys(), team), "{team}");
        }
        assert!(held(a.keys(), "T03") && !held(a.keys(), "T04"));
        assert!(held(b.keys(), "T04") && !held(b.keys(), OFFICE_TEAM));
        // Posted at once: the server refuses the revoked staff device now.
        match crate::sync(&mut rana, &options, &()).await {
            Err((SyncError::Refused { code, .. }, _)) => {
                assert_eq!(code, Some(cairn_protocol::ErrorCode::Revoked))
            }
            other => panic!("{other:?}"),
        }
        crate::sync(&mut omar, &options, &()).await.unwrap();
        assert!(omar.keyring().get("T04", 2).is_some());
    }

    /// A one-field edit, sealed, is the same size whatever the team's size: under 600 bytes
    /// in a team of 12 devices and in one of 100.
    #[test]
    fn a_one_field_edit_takes_at_most_600_bytes_in_teams_of_12_and_100() {
        let dir = tempfile::tempdir().unwrap();
        let mut office = vault(dir.path(), "office", Role::Office, "office");
        let mut a = vault(dir.path(), "a", Role::Field, "T03");
        let to = AdmitTo {
            team: "T03".into(),
            server: "https://127.0.0.1:1".into(),
            fingerprint: "ab".repeat(32),
            expires_at: unix_now() + 600,
        };
        let line = DeviceLine::new(a.keys(), None).unwrap();
        let admission = admit(&mut office, &line, &to).unwrap();
        let key = admission.open(a.keys(), unix_now()).unwrap();
        a.add_keys([&key]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let case = a.create_case(Kind::Killed, "KHR", &[], now).unwrap();
        let mut members = 1;
        let mut sizes = Vec::new();
        for (team, sex) in [(12, "male"), (100, "female")] {
            while members < team {
                let other = DeviceLine::new(&DeviceKeys::generate(), None).unwrap();
                match admit(&mut office, &other, &to) {
                    // Four-letter tags: among 100 devices, two share one about once in 200
                    // runs, and the office refuses the second: draw again.
                    Err(SyncError::AlreadyMember(why)) if why.contains("reference tag") => {}
                    other => {
                        other.unwrap();
                        members += 1;
                    }
                }
            }
            let roster = stored_roster(&office).unwrap();
            assert_eq!(roster.members().filter(|m| m.team == "T03").count(), team);
            let seq = a
                .edit_case(&case.reference, &[Edit::set("person.sex", sex)], now)
                .unwrap()
                .unwrap();
            let (_, bytes) = a.outbox(seq - 1, 1).unwrap().pop().unwrap();
            let sealed = SealedChange::from_bytes(&bytes).unwrap();
            assert_eq!((sealed.team.as_str(), sealed.epoch), ("T03", 1));
            assert!(bytes.len() <= 600, "team of {team}: {} bytes", bytes.len());
            sizes.push(bytes.len());
        }
        // Only the edit's own bytes differ (the value, the dependency on the previous edit),
        // never the sealing: nothing in it grows with the team.
        assert!(sizes[0].abs_diff(sizes[1]) <= 32, "{sizes:?}");
        eprintln!(
            "one-field edit sealed: team of 12 {} B, team of 100 {} B",
            sizes[0], sizes[1]
        );
    }
}
