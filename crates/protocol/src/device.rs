//! A device's public keys, and `cairn id`: the one public line a device hands to the office.
//!
//! Text form: `cairn-id-v2.` then base64url (no padding) of `{"signing","recipient","name"}`.
//! Nothing in it is secret. Its short code (20 digits, from SHA-256 of the keys) is what the
//! office compares by voice when the device is not in the room: a line swapped on the way
//! gives another code.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_crypto::{DeviceId, DeviceKeys};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::malformed;
use crate::ProtocolError;

/// The text a device line starts with.
pub const ID_PREFIX: &str = "cairn-id-v2.";
const MAX_NAME: usize = 64;
const MAX_TEXT: usize = 1024;

/// A device's public keys as they travel in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawDevicePublic")]
pub struct DevicePublic {
    /// The device's Ed25519 key, which is its id.
    #[serde(with = "crate::hexser::device_id")]
    pub signing: DeviceId,
    /// The device's age recipient (`age1...`).
    pub recipient: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevicePublic {
    signing: String,
    recipient: String,
}

impl TryFrom<RawDevicePublic> for DevicePublic {
    type Error = ProtocolError;

    fn try_from(raw: RawDevicePublic) -> Result<Self, Self::Error> {
        let keys = crate::OfficeKeys::new(&raw.signing, &raw.recipient)
            .map_err(|_| malformed("device keys: not an Ed25519 key and an age recipient"))?;
        Ok(DevicePublic {
            signing: keys.signing,
            recipient: keys.recipient,
        })
    }
}

impl DevicePublic {
    /// The public half of keys held on this device.
    pub fn from_keys(keys: &DeviceKeys) -> Self {
        DevicePublic {
            signing: keys.id(),
            recipient: keys.public().recipient.to_string(),
        }
    }

    /// The age recipient, parsed (checked when the keys were read).
    pub fn age_recipient(&self) -> Result<cairn_crypto::Recipient, ProtocolError> {
        self.recipient
            .parse()
            .map_err(|_| malformed("device keys: not an age recipient"))
    }

    /// The 20-digit code read aloud to compare a device line, in groups of five.
    pub fn short_code(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"cairn id v2\0");
        h.update(self.signing.0);
        h.update(self.recipient.as_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        let digits = format!("{:020}", u128::from_be_bytes(first) % 10u128.pow(20));
        digits
            .as_bytes()
            .chunks(5)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// What `cairn id` prints: a device's public keys and the name its holder gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceLine {
    /// The keys.
    #[serde(flatten)]
    pub keys: DevicePublic,
    /// A name a person gave the device, shown in the roster.
    pub name: Option<String>,
}

impl DeviceLine {
    /// This device's line.
    pub fn new(keys: &DeviceKeys, name: Option<String>) -> Result<Self, ProtocolError> {
        if let Some(n) = &name {
            check_name(n)?;
        }
        Ok(DeviceLine {
            keys: DevicePublic::from_keys(keys),
            name,
        })
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(malformed("device line: it is far too long to be one"));
        }
        let encoded = text.strip_prefix(ID_PREFIX).ok_or_else(|| {
            malformed(format!(
                "device line: it does not start with `{ID_PREFIX}`; paste the whole line the device printed"
            ))
        })?;
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| malformed("device line: it is damaged or cut short"))?;
        // `flatten` and `deny_unknown_fields` do not combine in serde: check the keys here.
        let raw: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&json)
            .map_err(|e| malformed(format!("device line: its content does not parse ({e})")))?;
        if let Some(k) = raw
            .keys()
            .find(|k| !["signing", "recipient", "name"].contains(&k.as_str()))
        {
            return Err(malformed(format!("device line: unknown field `{k}`")));
        }
        let line: DeviceLine = serde_json::from_value(serde_json::Value::Object(raw))
            .map_err(|e| malformed(format!("device line: its content does not parse ({e})")))?;
        if let Some(n) = &line.name {
            check_name(n)?;
        }
        Ok(line)
    }

    /// The one-line text form.
    pub fn to_text(&self) -> String {
        // Plain strings cannot fail to serialize.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }
}

impl fmt::Display for DeviceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
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

pub(crate) fn check_name(name: &str) -> Result<(), ProtocolError> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME
        || name.chars().any(char::is_control)
    {
        return Err(malformed(format!(
            "device name: use 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_the_code_follows_the_keys() {
        let keys = DeviceKeys::generate();
        let line = DeviceLine::new(&keys, Some("tablet 2".into())).unwrap();
        let back = DeviceLine::parse(&format!("  {}\n", line.to_text())).unwrap();
        assert_eq!(back, line);
        let code = line.keys.short_code();
        assert_eq!(code.len(), 23, "{code}");
        assert!(code
            .split('-')
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())));
        let other = DeviceLine::new(&DeviceKeys::generate(), None).unwrap();
        assert_ne!(other.keys.short_code(), code);
        // The same signing key with another recipient is another code.
        let mut swapped = line.clone();
        swapped.keys.recipient = other.keys.recipient.clone();
        assert_ne!(swapped.keys.short_code(), code);
    }

    #[test]
    fn damaged_lines_are_refused_with_a_sentence() {
        let line = DeviceLine::new(&DeviceKeys::generate(), None)
            .unwrap()
            .to_text();
        for bad in [
            String::new(),
            "cairn-id-v1.abc".to_owned(),
            line[..line.len() - 5].to_owned(),
            format!(
                "{ID_PREFIX}{}",
                URL_SAFE_NO_PAD.encode(b"{\"signing\":\"00\"}")
            ),
            format!(
                "{ID_PREFIX}{}",
                URL_SAFE_NO_PAD.encode(
                    serde_json::json!({"signing": DeviceKeys::generate().id().to_string(),
                        "recipient": DevicePublic::from_keys(&DeviceKeys::generate()).recipient,
                        "name": null, "extra": 1})
                    .to_string()
                )
            ),
            "x".repeat(5000),
        ] {
            assert!(
                matches!(DeviceLine::parse(&bad), Err(ProtocolError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(DeviceLine::new(&DeviceKeys::generate(), Some("\u{7}".into())).is_err());
    }
}
