//! Roster statements: the office's signed, numbered acts (admit a device, revoke one), chained
//! so a server can neither reorder, drop from the middle, nor forge one.
//!
//! Statement `n` names `n` (its counter) and the hash of statement `n - 1` (`prev`; zeros for
//! the first). The office signs `serde_json::to_vec` of `{"counter","prev","at","act"}` under
//! [`ROSTER_DOMAIN`]. Each act carries the team key it concerns, granted (age-encrypted) to
//! each device that must hold it and to the office, so the chain alone, with a device's own
//! identity, gives every key that device may hold.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cairn_crypto::{verify_signature, DeviceId, DeviceKeys, TeamKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::device::check_name;
use crate::error::malformed;
use crate::{validate_team, DevicePublic, Places, ProtocolError};

/// The signature domain of roster statements.
pub const ROSTER_DOMAIN: &str = "cairn roster v2";
const MAX_SERVER: usize = 256;
/// The most grants one statement carries (a team's remaining members and the office).
pub const MAX_GRANTS: usize = 1000;
/// A granted key is an age file of about 200 to 450 bytes; anything far larger is refused.
const MAX_GRANT_TEXT: usize = 2048;

/// A team key granted to one device: an age file only that device opens, in base64.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The device it is granted to.
    #[serde(with = "crate::hexser::device_id")]
    pub device: DeviceId,
    /// [`TeamKey::grant`] in standard base64.
    pub key: String,
}

impl Grant {
    /// Grants `key` to `device`.
    pub fn new(key: &TeamKey, device: &DevicePublic) -> Result<Grant, ProtocolError> {
        let granted = key
            .grant(&device.age_recipient()?)
            .map_err(|e| malformed(format!("grant: {e}")))?;
        Ok(Grant {
            device: device.signing,
            key: STANDARD.encode(granted),
        })
    }

    /// Opens the grant with this device's keys.
    pub fn open(&self, keys: &DeviceKeys, team: &str, epoch: u32) -> Option<TeamKey> {
        let bytes = STANDARD.decode(&self.key).ok()?;
        TeamKey::accept(keys, team, epoch, &bytes).ok()
    }
}

/// The office admits a device into a team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admit {
    /// The device's keys, as its `cairn id` line named them.
    pub device: DevicePublic,
    /// The name its holder gave it, readable by all: only statements made before names were
    /// sealed carry it (the chain never changes); the office now fills `sealed_name` instead.
    pub name: Option<String>,
    /// The name sealed under the team key the grants carry ([`seal_name`], base64): only the
    /// office and the device's team read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_name: Option<String>,
    /// Its team.
    pub team: String,
    /// The team's current epoch, whose key the grants carry.
    pub epoch: u32,
    /// That key, granted to the device and to the office.
    pub grants: Vec<Grant>,
    /// The server's base URL, such as `https://127.0.0.1:8443`.
    pub server: String,
    /// Lowercase hex SHA-256 of the server certificate's DER: the device pins it.
    pub fingerprint: String,
    /// Unix seconds after which the server refuses to register the device with it.
    pub expires_at: u64,
}

/// What a sealed name binds besides the key: the device it names, so a name cannot be moved
/// onto another admission.
fn name_context(device: &DeviceId) -> Vec<u8> {
    let mut context = b"cairn device name v1\0".to_vec();
    context.extend_from_slice(&device.0);
    context
}

/// A sealed name is a short name plus the team sealing's overhead, in base64.
const MAX_SEALED_NAME: usize = 512;

/// Seals `device`'s name under its team's key, for [`Admit::sealed_name`].
pub fn seal_name(key: &TeamKey, device: &DeviceId, name: &str) -> Result<String, ProtocolError> {
    check_name(name)?;
    let sealed = key
        .seal(&name_context(device), name.as_bytes())
        .map_err(|e| malformed(format!("sealing a device name: {e}")))?;
    Ok(STANDARD.encode(sealed))
}

impl Admit {
    /// The device's name as the holder of `key` (its team's key at the admission's epoch)
    /// reads it: the sealed name if it opens to a valid name, else the plain one of an older
    /// statement. `None` for a key of another team or epoch.
    pub fn open_name(&self, key: Option<&TeamKey>) -> Option<String> {
        let Some(sealed) = &self.sealed_name else {
            return self.name.clone();
        };
        let key = key.filter(|k| k.team() == self.team && k.epoch() == self.epoch)?;
        let bytes = STANDARD.decode(sealed).ok()?;
        let name =
            String::from_utf8(key.open(&name_context(&self.device.signing), &bytes).ok()?).ok()?;
        check_name(&name).ok().map(|()| name)
    }
}

/// The office revokes a device: its changes numbered above `last_seq` are refused everywhere,
/// and its team moves to a new epoch whose key it never receives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// The revoked device.
    #[serde(with = "crate::hexser::device_id")]
    pub device: DeviceId,
    /// The highest change number of that device the office accepts (0: none).
    pub last_seq: u64,
    /// The device's team.
    pub team: String,
    /// The team's new epoch.
    pub epoch: u32,
    /// The new key, granted to every remaining member and to the office.
    pub grants: Vec<Grant>,
    /// The previous epoch's key sealed under the new one ([`TeamKey::wrap_earlier`], base64),
    /// so whoever holds the new key reads the team's whole history.
    pub earlier: String,
}

/// The office hands a team's current key to more devices: its staff devices (which read every
/// team), or itself, so that the chain and not only its vault keeps the key of its own team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGrant {
    /// The team whose key is granted.
    pub team: String,
    /// The team's current epoch, whose key the grants carry.
    pub epoch: u32,
    /// That key, granted to the office or to staff devices.
    pub grants: Vec<Grant>,
}

/// A team moves to a new epoch without revoking one of its members: revoking a staff device
/// rotates every team it read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// The team.
    pub team: String,
    /// The team's new epoch.
    pub epoch: u32,
    /// The new key, granted to the team's members, the staff devices and the office.
    pub grants: Vec<Grant>,
    /// The previous epoch's key sealed under the new one, as in [`Revoke::earlier`].
    pub earlier: String,
}

/// What a statement does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Act {
    /// A device joins a team (a staff device joins team `office`).
    Admit(Admit),
    /// A device is revoked.
    Revoke(Revoke),
    /// The office's whole list of places, replacing the one before (see [`crate::places`]).
    Places(Places),
    /// A team's current key, granted to more devices.
    Grant(KeyGrant),
    /// A team's new epoch, revoking nobody.
    Rotate(Rotate),
}

/// One office-signed roster statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Its place in the chain: 1, 2, 3... without gaps.
    pub counter: u64,
    /// The hash of statement `counter - 1` (zeros for the first), lowercase hex.
    #[serde(with = "hash_hex")]
    pub prev: [u8; 32],
    /// When the office made it, in Unix seconds.
    pub at: u64,
    /// What it does.
    pub act: Act,
    /// The office's signature over [`Statement::signed_bytes`].
    #[serde(with = "crate::hexser::signature")]
    pub office_signature: [u8; 64],
}

#[derive(Serialize)]
struct Signed<'a> {
    counter: u64,
    #[serde(with = "hash_hex")]
    prev: [u8; 32],
    at: u64,
    act: &'a Act,
}

impl Statement {
    /// Signs `act` as statement `counter` after the statement whose hash is `prev`.
    pub fn issue(
        office: &DeviceKeys,
        counter: u64,
        prev: [u8; 32],
        at: u64,
        act: Act,
    ) -> Result<Statement, ProtocolError> {
        let mut s = Statement {
            counter,
            prev,
            at,
            act,
            office_signature: [0; 64],
        };
        s.check_shape()?;
        s.office_signature = office.sign(ROSTER_DOMAIN, &s.signed_bytes());
        Ok(s)
    }

    /// The bytes the office signs (with the domain [`ROSTER_DOMAIN`]).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let signed = Signed {
            counter: self.counter,
            prev: self.prev,
            at: self.at,
            act: &self.act,
        };
        // Plain strings and integers cannot fail to serialize.
        serde_json::to_vec(&signed).unwrap_or_default()
    }

    /// The hash the next statement names as `prev`.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(ROSTER_DOMAIN.as_bytes());
        h.update([0]);
        h.update(self.signed_bytes());
        h.finalize().into()
    }

    /// Checks the shape and the office's signature.
    pub fn verify(&self, office: &DeviceId) -> Result<(), ProtocolError> {
        self.check_shape()?;
        verify_signature(
            office,
            ROSTER_DOMAIN,
            &self.signed_bytes(),
            &self.office_signature,
        )
        .map_err(|_| ProtocolError::NotSignedByOffice("roster statement"))
    }

    /// The device the act concerns (`None` for a list of places or a team's key, which
    /// concern no one device).
    pub fn device(&self) -> Option<DeviceId> {
        match &self.act {
            Act::Admit(a) => Some(a.device.signing),
            Act::Revoke(r) => Some(r.device),
            Act::Places(_) | Act::Grant(_) | Act::Rotate(_) => None,
        }
    }

    /// The team the act concerns (`None` for a list of places, which concerns every team).
    pub fn team(&self) -> Option<&str> {
        match &self.act {
            Act::Admit(a) => Some(&a.team),
            Act::Revoke(r) => Some(&r.team),
            Act::Grant(g) => Some(&g.team),
            Act::Rotate(r) => Some(&r.team),
            Act::Places(_) => None,
        }
    }

    /// The team, epoch and grants of a key the act hands out (`None` for a list of places,
    /// whose key opens the list only, never a team's changes).
    pub fn team_grants(&self) -> Option<(&str, u32, &[Grant])> {
        match &self.act {
            Act::Admit(a) => Some((&a.team, a.epoch, &a.grants)),
            Act::Revoke(r) => Some((&r.team, r.epoch, &r.grants)),
            Act::Grant(g) => Some((&g.team, g.epoch, &g.grants)),
            Act::Rotate(r) => Some((&r.team, r.epoch, &r.grants)),
            Act::Places(_) => None,
        }
    }

    /// The earlier epoch's key a new epoch carries (revocations and rotations).
    pub fn earlier(&self) -> Option<&str> {
        match &self.act {
            Act::Revoke(r) => Some(&r.earlier),
            Act::Rotate(r) => Some(&r.earlier),
            _ => None,
        }
    }

    fn check_shape(&self) -> Result<(), ProtocolError> {
        if self.counter == 0 {
            return Err(malformed("roster statement: counters start at 1"));
        }
        let (team, epoch, grants) = match &self.act {
            Act::Admit(a) => {
                if let Some(n) = &a.name {
                    check_name(n)?;
                }
                if a.sealed_name
                    .as_ref()
                    .is_some_and(|n| n.len() > MAX_SEALED_NAME)
                {
                    return Err(malformed("roster statement: sealed name far too long"));
                }
                check_server(&a.server, &a.fingerprint)?;
                (a.team.as_str(), a.epoch, a.grants.as_slice())
            }
            Act::Places(p) => return p.check_shape(),
            _ => {
                if self.earlier().is_some_and(|e| e.len() > MAX_GRANT_TEXT) {
                    return Err(malformed("roster statement: earlier key far too long"));
                }
                self.team_grants().unwrap_or(("", 0, &[]))
            }
        };
        // Staff devices are the members of the office's own team.
        if team != crate::OFFICE_TEAM {
            validate_team(team)?;
        }
        if epoch == 0 {
            return Err(malformed("roster statement: team epochs start at 1"));
        }
        if grants.len() > MAX_GRANTS || grants.iter().any(|g| g.key.len() > MAX_GRANT_TEXT) {
            return Err(malformed("roster statement: too many or too large grants"));
        }
        Ok(())
    }
}

/// Checks a server URL and certificate fingerprint as an admission names them.
pub(crate) fn check_server(server: &str, fingerprint: &str) -> Result<(), ProtocolError> {
    if server.len() > MAX_SERVER
        || !(server.starts_with("https://"))
        || server.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(malformed(
            "server: use the https:// address the server's administrator gave",
        ));
    }
    if fingerprint.len() != 64 || !crate::hexser::is_lower_hex(fingerprint) {
        return Err(malformed(
            "fingerprint: it must be the server certificate's SHA-256, in 64 lowercase hex digits",
        ));
    }
    Ok(())
}

pub(crate) mod hash_hex {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = crate::hexser::strict_hex(&text, 32)
            .ok_or_else(|| D::Error::custom("a hash is 64 lowercase hex digits"))?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::roster::tests::{fresh, Office, FINGERPRINT, SERVER};

    fn admit_of(s: &Statement) -> Admit {
        match &s.act {
            Act::Admit(a) => a.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn signed_linked_and_every_field_is_bound() {
        let mut office = Office::new();
        let device = DeviceKeys::generate();
        let s1 = office.admit(&device, "T03");
        let s2 = office.revoke(&device, "T03");
        assert_eq!((s1.counter, s1.prev), (1, [0; 32]));
        assert_eq!((s2.counter, s2.prev), (2, s1.hash()));
        assert_ne!(s1.hash(), s2.hash());
        for s in [&s1, &s2] {
            s.verify(&office.keys.id()).unwrap();
            assert_eq!(s.device(), Some(device.id()));
            assert_eq!(s.team(), Some("T03"));
            // JSON round trip, and the signed bytes are the JSON without the signature.
            let json = serde_json::to_string(s).unwrap();
            let back: Statement = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, s);
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
            let signed = String::from_utf8(s.signed_bytes()).unwrap();
            assert!(signed.starts_with(&format!("{{\"counter\":{},\"prev\":\"", s.counter)));
            assert!(!signed.contains("office_signature"));
        }
        assert!(matches!(
            s1.verify(&DeviceKeys::generate().id()),
            Err(ProtocolError::NotSignedByOffice(_))
        ));
        // Each field changed after signing: refused, and the hash changes too.
        let mut changed: Vec<Statement> = Vec::new();
        for edit in 0..6 {
            let mut s = s1.clone();
            let mut a = admit_of(&s);
            match edit {
                0 => s.counter = 3,
                1 => s.prev = [1; 32],
                2 => s.at += 1,
                3 => a.expires_at += 1,
                4 => a.grants.pop().map(drop).unwrap(),
                _ => a.server.push('x'),
            }
            if edit >= 3 {
                s.act = Act::Admit(a);
            }
            changed.push(s);
        }
        let mut moved = s2.clone();
        if let Act::Revoke(r) = &mut moved.act {
            r.last_seq += 1;
        }
        changed.push(moved);
        for s in changed {
            assert!(
                matches!(
                    s.verify(&office.keys.id()),
                    Err(ProtocolError::NotSignedByOffice(_))
                ),
                "{s:?}"
            );
            assert!(s.hash() != s1.hash() && s.hash() != s2.hash());
        }
        // A grant opens for its device only, at its epoch.
        let grant = &admit_of(&s1).grants[0];
        assert_eq!(grant.device, device.id());
        assert_eq!(
            grant.open(&device, "T03", 1).unwrap().bytes(),
            office.key("T03", 1).bytes()
        );
        assert!(grant.open(&device, "T03", 2).is_none());
        assert!(grant.open(&DeviceKeys::generate(), "T03", 1).is_none());
        let garbled = Grant {
            device: device.id(),
            key: "not base64!".into(),
        };
        assert!(garbled.open(&device, "T03", 1).is_none());
    }

    #[test]
    fn a_badly_shaped_statement_is_neither_issued_nor_accepted() {
        let mut office = Office::new();
        let good = office.admit_act(&fresh(), "T03", 1);
        let with = |f: &dyn Fn(&mut Admit)| {
            let mut a = match &good {
                Act::Admit(a) => a.clone(),
                _ => unreachable!(),
            };
            f(&mut a);
            Act::Admit(a)
        };
        let mut bad_acts = vec![
            with(&|a| a.team = "T 03".into()),
            with(&|a| a.team = String::new()),
            with(&|a| a.epoch = 0),
            with(&|a| a.server = "http://127.0.0.1:8443".into()),
            with(&|a| a.server = format!("{SERVER}/ x")),
            with(&|a| a.fingerprint = FINGERPRINT.to_uppercase()),
            with(&|a| a.fingerprint = FINGERPRINT[1..].into()),
            with(&|a| a.name = Some("\n".into())),
            with(&|a| a.grants[0].key = "A".repeat(MAX_GRANT_TEXT + 1)),
            with(&|a| a.grants = vec![a.grants[0].clone(); MAX_GRANTS + 1]),
        ];
        let device = DeviceKeys::generate();
        office.admit(&device, "T03");
        let mut revoke = match office.revoke_act(&device.id(), "T03", 2) {
            Act::Revoke(r) => r,
            _ => unreachable!(),
        };
        revoke.earlier = "A".repeat(MAX_GRANT_TEXT + 1);
        bad_acts.push(Act::Rotate(Rotate {
            team: revoke.team.clone(),
            epoch: revoke.epoch,
            grants: revoke.grants.clone(),
            earlier: revoke.earlier.clone(),
        }));
        bad_acts.push(Act::Grant(KeyGrant {
            team: "T 03".into(),
            epoch: 1,
            grants: Vec::new(),
        }));
        bad_acts.push(Act::Revoke(revoke));
        for act in bad_acts {
            assert!(
                matches!(
                    Statement::issue(&office.keys, 1, [0; 32], 1, act.clone()),
                    Err(ProtocolError::Malformed(_))
                ),
                "{act:?}"
            );
            // Signed anyway (by hand): still refused, before its signature is checked.
            let mut s = Statement::issue(&office.keys, 1, [0; 32], 1, good.clone()).unwrap();
            s.act = act;
            s.office_signature = office.keys.sign(ROSTER_DOMAIN, &s.signed_bytes());
            assert!(matches!(
                s.verify(&office.keys.id()),
                Err(ProtocolError::Malformed(_))
            ));
        }
        assert!(matches!(
            Statement::issue(&office.keys, 0, [0; 32], 1, good.clone()),
            Err(ProtocolError::Malformed(_))
        ));
        // Unknown fields, a short hash or an unknown act: the JSON does not parse.
        let s = Statement::issue(&office.keys, 1, [0; 32], 1, good).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        for bad in [
            json.replacen("{\"counter\"", "{\"extra\":1,\"counter\"", 1),
            json.replacen(&"0".repeat(64), &"0".repeat(62), 1),
            json.replacen(
                &"0".repeat(64),
                &"0".repeat(64).to_uppercase().replace('0', "A"),
                1,
            ),
            json.replacen("\"type\":\"admit\"", "\"type\":\"promote\"", 1),
            json.replacen("\"expires_at\"", "\"expires\"", 1),
        ] {
            assert!(serde_json::from_str::<Statement>(&bad).is_err(), "{bad}");
        }
    }
}
