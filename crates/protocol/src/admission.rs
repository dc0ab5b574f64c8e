//! The admission line: what `cairn office admit` prints and `cairn join` takes.
//!
//! `cairn-admission-v2.` then base64url (no padding) of `{"office": {...}, "statement": {...}}`:
//! the office's public keys (which the device trusts, as it trusted the office that handed
//! it the line) and the office-signed statement admitting this device's keys. Nothing in it
//! is secret: the team key inside is granted to the device's own key, and the statement
//! admits no other key, so a captured admission admits nobody else.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_crypto::{DeviceKeys, TeamKey};
use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::{Act, Admit, OfficeKeys, ProtocolError, Statement};

/// The text every admission starts with.
pub const ADMISSION_PREFIX: &str = "cairn-admission-v2.";
/// Admission lines longer than this are refused before decoding.
const MAX_TEXT: usize = 16 * 1024;

/// An office-signed admission of one device, with the office's keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// The office's public keys.
    pub office: OfficeKeys,
    /// The statement admitting the device.
    pub statement: Statement,
}

impl Admission {
    /// Parses the one-line text form. Checks shape only; call [`Admission::open`] to trust it.
    pub fn parse(text: &str) -> Result<Admission, ProtocolError> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(malformed("admission: it is far too long to be one"));
        }
        let encoded = text.strip_prefix(ADMISSION_PREFIX).ok_or_else(|| {
            malformed(format!(
                "admission: it does not start with `{ADMISSION_PREFIX}`; paste the whole line the office gave"
            ))
        })?;
        let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| {
            malformed("admission: it is damaged or cut short; paste the whole line again")
        })?;
        let admission: Admission = serde_json::from_slice(&json)
            .map_err(|e| malformed(format!("admission: its content does not parse ({e})")))?;
        admission.admit()?;
        Ok(admission)
    }

    /// The one-line text form.
    pub fn to_text(&self) -> String {
        // Plain strings and integers cannot fail to serialize.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{ADMISSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// The admit act inside.
    pub fn admit(&self) -> Result<&Admit, ProtocolError> {
        match &self.statement.act {
            Act::Admit(a) => Ok(a),
            Act::Revoke(_) => Err(malformed(
                "admission: it carries a revocation, not an admission",
            )),
            Act::Places(_) => Err(malformed(
                "admission: it carries a list of places, not an admission",
            )),
            Act::Grant(_) | Act::Rotate(_) => Err(malformed(
                "admission: it carries a team's key, not an admission",
            )),
        }
    }

    /// Checks, for the device holding `keys`, that the office signed it, that it admits this
    /// device's own keys, and that it has not expired; then opens the team key granted to it.
    pub fn open(&self, keys: &DeviceKeys, now: u64) -> Result<TeamKey, ProtocolError> {
        let admit = self.admit()?;
        self.statement.verify(&self.office.signing)?;
        if admit.device != crate::DevicePublic::from_keys(keys) {
            return Err(ProtocolError::NotForThisDevice {
                code: admit.device.short_code(),
            });
        }
        if now >= admit.expires_at {
            return Err(ProtocolError::Expired {
                expired_at: admit.expires_at,
            });
        }
        admit
            .grants
            .iter()
            .filter(|g| g.device == admit.device.signing)
            .find_map(|g| g.open(keys, &admit.team, admit.epoch))
            .ok_or_else(|| malformed("admission: it carries no team key this device can open"))
    }
}

impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::roster::tests::{fresh, Office, EXPIRES};
    use crate::DevicePublic;

    /// An office, a device and the admission of that device into T03.
    fn admitted() -> (Office, DeviceKeys, Admission) {
        let mut office = Office::new();
        let device = DeviceKeys::generate();
        office.admit(&DeviceKeys::generate(), "T03");
        let statement = office.admit(&device, "T03");
        let admission = Admission {
            office: office.public(),
            statement,
        };
        (office, device, admission)
    }

    #[test]
    fn round_trip_and_it_opens_for_its_device() {
        let (mut office, device, admission) = admitted();
        let text = admission.to_text();
        assert!(text.starts_with(ADMISSION_PREFIX));
        assert_eq!(format!("{admission}"), text);
        let back = Admission::parse(&format!("\n  {text}  \n")).unwrap();
        assert_eq!(back, admission);
        assert_eq!(back.to_text(), text);
        let admit = back.admit().unwrap();
        assert_eq!(admit.device, DevicePublic::from_keys(&device));
        assert_eq!((admit.team.as_str(), admit.epoch), ("T03", 1));
        assert_eq!(back.statement.counter, 2);
        let key = back.open(&device, 1_000).unwrap();
        assert_eq!((key.team(), key.epoch()), ("T03", 1));
        assert_eq!(key.bytes(), office.key("T03", 1).bytes());
        // The last second before expiry still opens.
        back.open(&device, EXPIRES - 1).unwrap();
    }

    #[test]
    fn it_refuses_another_device_an_expired_or_forged_one() {
        let (mut office, device, admission) = admitted();
        let other = DeviceKeys::generate();
        assert_eq!(
            admission.open(&other, 1_000).unwrap_err(),
            ProtocolError::NotForThisDevice {
                code: DevicePublic::from_keys(&device).short_code()
            }
        );
        assert_eq!(
            admission.open(&device, EXPIRES).unwrap_err(),
            ProtocolError::Expired {
                expired_at: EXPIRES
            }
        );
        // Another office's keys embedded: the statement is not signed by them.
        let mut swapped = admission.clone();
        swapped.office = Office::new().public();
        assert!(matches!(
            swapped.open(&device, 1_000),
            Err(ProtocolError::NotSignedByOffice(_))
        ));
        // Altered after signing (here, renamed): refused as unsigned.
        let mut renamed = admission.clone();
        if let Act::Admit(a) = &mut renamed.statement.act {
            a.name = Some("someone else".into());
        }
        let renamed = Admission::parse(&renamed.to_text()).unwrap();
        assert!(matches!(
            renamed.open(&device, 1_000),
            Err(ProtocolError::NotSignedByOffice(_))
        ));
        // Signed, for this device, but its grant is for another key: no key, a sentence.
        let act = match office.admit_act(&fresh(), "T03", 1) {
            Act::Admit(mut a) => {
                a.device = DevicePublic::from_keys(&device);
                a
            }
            _ => unreachable!(),
        };
        let no_grant = Admission {
            office: office.public(),
            statement: office.issue(Act::Admit(act)),
        };
        assert!(matches!(
            no_grant.open(&device, 1_000),
            Err(ProtocolError::Malformed(_))
        ));
        // A revocation is no admission.
        let revoked = office.revoke(&device, "T03");
        let text = format!(
            "{ADMISSION_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(&serde_json::json!({
                    "office": office.public(), "statement": revoked
                }))
                .unwrap()
            )
        );
        assert!(matches!(
            Admission::parse(&text),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn damaged_lines_are_malformed_never_a_panic() {
        let (_, device, admission) = admitted();
        let text = admission.to_text();
        let mut bad = vec![
            String::new(),
            ADMISSION_PREFIX.to_owned(),
            "cairn-admission-v1.abc".to_owned(),
            text.replacen(ADMISSION_PREFIX, "", 1),
            format!("{text}!"),
            format!("{ADMISSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(b"{}")),
            format!("{ADMISSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(b"\xff\xfe")),
            "x".repeat(MAX_TEXT + 1),
        ];
        // Every cut short (the `=`-free base64 may still decode: then the JSON breaks).
        bad.extend(
            (0..text.len() - 1)
                .step_by(7)
                .map(|cut| text[..cut].to_owned()),
        );
        bad.push(text[..text.len() - 1].to_owned());
        // A changed character anywhere after the prefix.
        for i in (ADMISSION_PREFIX.len()..text.len()).step_by(11) {
            let mut b = text.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'-' } else { b'A' };
            bad.push(String::from_utf8(b).unwrap());
        }
        for line in &bad {
            match Admission::parse(line) {
                Err(ProtocolError::Malformed(m)) => assert!(m.starts_with("admission: "), "{m}"),
                // A change may land inside a string and still parse: opening must not panic.
                Ok(a) => {
                    assert_ne!(a, admission, "{line}");
                    let _ = a.open(&device, 1_000);
                }
                Err(e) => panic!("{line}: {e}"),
            }
        }
    }
}
