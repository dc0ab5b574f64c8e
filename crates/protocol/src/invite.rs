//! One-time invites: the office's permission for one device to join one team.
//!
//! An invite is one line of text, `cairn-invite-v1.` followed by the base64url (no padding)
//! of `{"body": {...}, "signature": "<hex>"}`. The office signs `serde_json::to_vec(&body)`
//! under the domain [`INVITE_DOMAIN`]. The body carries the server's address and certificate
//! fingerprint (so the device can pin it) and the office's public keys (which the device
//! trusts, since the invite is handed over in person). The server checks the signature
//! against the office key in its own configuration, never the one embedded.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_crypto::{verify_signature, DeviceId, DeviceKeys};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::hexser::is_lower_hex;
use crate::{OfficeKeys, ProtocolError};

/// The text every invite starts with.
pub const INVITE_PREFIX: &str = "cairn-invite-v1.";
/// The signature domain of invites.
pub const INVITE_DOMAIN: &str = "cairn invite v1";
/// Invites longer than this are refused before decoding.
const MAX_TEXT: usize = 8 * 1024;
const MAX_SERVER: usize = 256;

/// What the office signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    /// Format version: 1.
    pub version: u32,
    /// 16 random bytes as 32 lowercase hex digits; the server accepts each id once.
    pub id: String,
    /// The team the device joins.
    pub team: String,
    /// The server's base URL, such as `https://127.0.0.1:8443`.
    pub server: String,
    /// Lowercase hex SHA-256 of the server certificate's DER: the device pins it.
    pub fingerprint: String,
    /// Unix seconds after which the server refuses the invite.
    pub expires_at: u64,
    /// The office's public keys.
    pub office: OfficeKeys,
}

/// An office-signed invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The signed content.
    pub body: InviteBody,
    /// The office's signature over `serde_json::to_vec(&body)`.
    pub signature: [u8; 64],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    body: InviteBody,
    #[serde(with = "crate::hexser::signature")]
    signature: [u8; 64],
}

impl Invite {
    /// Issues a new invite signed by the office. `server` is the base URL
    /// (`https://host:port`), `fingerprint` the server certificate's SHA-256 (lowercase hex).
    pub fn issue(
        office: &DeviceKeys,
        team: &str,
        server: &str,
        fingerprint: &str,
        expires_at: u64,
    ) -> Result<Invite, ProtocolError> {
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let body = InviteBody {
            version: 1,
            id: hex::encode(id),
            team: team.to_owned(),
            server: server.trim_end_matches('/').to_owned(),
            fingerprint: fingerprint.to_ascii_lowercase(),
            expires_at,
            office: OfficeKeys::from_keys(office),
        };
        check_body(&body)?;
        let signature = office.sign(INVITE_DOMAIN, &body.signed_bytes());
        Ok(Invite { body, signature })
    }

    /// Parses the one-line text form. Checks shape only; call [`Invite::verify`] to trust it.
    pub fn parse(text: &str) -> Result<Invite, ProtocolError> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(malformed("invite: it is far too long to be an invite"));
        }
        let encoded = text.strip_prefix(INVITE_PREFIX).ok_or_else(|| {
            malformed(format!(
                "invite: it does not start with `{INVITE_PREFIX}`; paste the whole invite line"
            ))
        })?;
        let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| {
            malformed("invite: it is damaged or cut short; paste the whole invite line again")
        })?;
        let wire: Wire = serde_json::from_slice(&json)
            .map_err(|e| malformed(format!("invite: its content does not parse ({e})")))?;
        check_body(&wire.body)?;
        Ok(Invite {
            body: wire.body,
            signature: wire.signature,
        })
    }

    /// The one-line text form.
    pub fn to_text(&self) -> String {
        let wire = Wire {
            body: self.body.clone(),
            signature: self.signature,
        };
        // Serializing plain strings and integers cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// The invite's id (32 hex digits).
    pub fn id(&self) -> &str {
        &self.body.id
    }

    /// Checks the office's signature only (not the expiry). Used when rebuilding a roster:
    /// a device enrolled before its invite expired stays a member.
    pub fn check_signature(&self, office: &DeviceId) -> Result<(), ProtocolError> {
        check_body(&self.body)?;
        if self.body.office.signing != *office {
            return Err(ProtocolError::NotSignedByOffice("invite"));
        }
        verify_signature(
            office,
            INVITE_DOMAIN,
            &self.body.signed_bytes(),
            &self.signature,
        )
        .map_err(|_| ProtocolError::NotSignedByOffice("invite"))
    }

    /// Checks the shape, the office's signature and the expiry, in that order, so each
    /// failure has its own error: `Malformed`, `NotSignedByOffice`, `Expired`.
    pub fn verify(&self, office: &DeviceId, now: u64) -> Result<(), ProtocolError> {
        self.check_signature(office)?;
        if now >= self.body.expires_at {
            return Err(ProtocolError::Expired {
                expired_at: self.body.expires_at,
            });
        }
        Ok(())
    }
}

impl InviteBody {
    /// The bytes the office signs (with the domain [`INVITE_DOMAIN`]).
    pub fn signed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for Invite {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for Invite {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Invite::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Checks a team name: 1 to 32 characters of ASCII letters, digits, `-` and `_`; `office` is
/// reserved for the office itself.
pub fn validate_team(team: &str) -> Result<(), ProtocolError> {
    let ok_chars = team
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if team.is_empty() || team.len() > 32 || !ok_chars {
        return Err(malformed(
            "team name: use 1 to 32 letters, digits, `-` or `_` (for example T03)",
        ));
    }
    if team == crate::OFFICE_TEAM {
        return Err(malformed(
            "team name: `office` is reserved for the office itself",
        ));
    }
    Ok(())
}

fn check_body(body: &InviteBody) -> Result<(), ProtocolError> {
    if body.version != 1 {
        return Err(malformed(format!(
            "invite: version {} is not supported by this program; update Cairn",
            body.version
        )));
    }
    if body.id.len() != 32 || !is_lower_hex(&body.id) {
        return Err(malformed("invite: its id is not 32 lowercase hex digits"));
    }
    validate_team(&body.team).map_err(|e| malformed(format!("invite: {e}")))?;
    let server_ok = body.server.starts_with("https://")
        && body.server.len() > "https://".len()
        && body.server.len() <= MAX_SERVER
        && !body
            .server
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
    if !server_ok {
        return Err(malformed(
            "invite: the server address must be an https:// URL without spaces",
        ));
    }
    if body.fingerprint.len() != 64 || !is_lower_hex(&body.fingerprint) {
        return Err(malformed(
            "invite: the certificate fingerprint is not 64 lowercase hex digits",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn invite(office: &DeviceKeys) -> Invite {
        Invite::issue(office, "T03", "https://127.0.0.1:8443/", FP, 2_000).unwrap()
    }

    #[test]
    fn issue_parse_verify() {
        let office = DeviceKeys::generate();
        let inv = invite(&office);
        assert_eq!(inv.body.server, "https://127.0.0.1:8443");
        let text = inv.to_text();
        assert!(text.starts_with(INVITE_PREFIX));
        assert!(!text.contains(char::is_whitespace));
        let back = Invite::parse(&format!("  {text}\n")).unwrap();
        assert_eq!(back, inv);
        back.verify(&office.id(), 1_999).unwrap();
        assert_eq!(
            back.verify(&office.id(), 2_000),
            Err(ProtocolError::Expired { expired_at: 2_000 })
        );
        let other = DeviceKeys::generate();
        assert_eq!(
            back.verify(&other.id(), 0),
            Err(ProtocolError::NotSignedByOffice("invite"))
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let office = DeviceKeys::generate();
        let mut inv = invite(&office);
        inv.body.team = "T04".into();
        assert_eq!(
            inv.verify(&office.id(), 0),
            Err(ProtocolError::NotSignedByOffice("invite"))
        );
        // An invite re-signed by another key that claims to be the office.
        let mallory = DeviceKeys::generate();
        let mut forged = invite(&mallory);
        forged.body.office = OfficeKeys::from_keys(&office);
        assert_eq!(
            forged.verify(&office.id(), 0),
            Err(ProtocolError::NotSignedByOffice("invite"))
        );
    }

    #[test]
    fn issue_checks_its_input() {
        let office = DeviceKeys::generate();
        for (team, server, fp) in [
            ("", "https://x", FP),
            ("office", "https://x", FP),
            ("T 3", "https://x", FP),
            ("T3", "http://x", FP),
            ("T3", "https://", FP),
            ("T3", "https://x y", FP),
            ("T3", "https://x", "abc"),
        ] {
            let err = Invite::issue(&office, team, server, fp, 1).unwrap_err();
            assert!(
                matches!(err, ProtocolError::Malformed(_)),
                "{team} {server} {fp}"
            );
        }
    }

    #[test]
    fn malformed_text_is_refused_clearly_never_panics() {
        let office = DeviceKeys::generate();
        let text = invite(&office).to_text();
        let check = |t: &str| match Invite::parse(t) {
            Err(ProtocolError::Malformed(m)) => m,
            other => panic!("{t:?}: {other:?}"),
        };
        assert!(check("").contains("does not start"));
        assert!(check("cairn-invite-v2.abc").contains("does not start"));
        assert!(check("cairn-invite-v1.@@@").contains("damaged"));
        for cut in (INVITE_PREFIX.len()..text.len()).step_by(7) {
            check(&text[..cut]);
        }
        let huge = format!("{INVITE_PREFIX}{}", "A".repeat(MAX_TEXT));
        assert!(check(&huge).contains("too long"));
        let json = |s: &str| format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(s));
        check(&json("{}"));
        check(&json("[1,2]"));
        check(&json("null"));
        // Unknown fields are refused: the signed bytes are the re-serialized body.
        let wire: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(&text[INVITE_PREFIX.len()..])
                .unwrap(),
        )
        .unwrap();
        let mut extra = wire.clone();
        extra["body"]["extra"] = serde_json::json!(1);
        check(&json(&extra.to_string()));
        let mut v2 = wire;
        v2["body"]["version"] = serde_json::json!(2);
        assert!(check(&json(&v2.to_string())).contains("update Cairn"));
    }
}
