//! The office's public keys, as handed from the office to the server administrator.
//!
//! Text form (written by `cairn office pubkey`, read by `cairn-server init --office-key`):
//!
//! ```text
//! cairn-office-v1
//! signing <64 hex digits: the office's Ed25519 key>
//! recipient <age1...: the office's age recipient>
//! ```

use std::fmt;
use std::str::FromStr;

use cairn_crypto::{DeviceId, DeviceKeys, PublicKeys};
use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::hexser::parse_device_id;
use crate::ProtocolError;

const HEADER: &str = "cairn-office-v1";

/// The office's public keys: the key that signs roster statements and receipts, and the recipient
/// every sealed change is encrypted to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawOfficeKeys")]
pub struct OfficeKeys {
    /// The office's Ed25519 key (its device id).
    #[serde(with = "crate::hexser::device_id")]
    pub signing: DeviceId,
    /// The office's age recipient (`age1...`).
    pub recipient: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOfficeKeys {
    signing: String,
    recipient: String,
}

impl TryFrom<RawOfficeKeys> for OfficeKeys {
    type Error = ProtocolError;

    fn try_from(raw: RawOfficeKeys) -> Result<Self, Self::Error> {
        OfficeKeys::new(&raw.signing, &raw.recipient)
    }
}

impl OfficeKeys {
    /// Checks and assembles office keys from their text forms.
    pub fn new(signing_hex: &str, recipient: &str) -> Result<Self, ProtocolError> {
        let signing = parse_device_id(signing_hex)
            .map_err(|e| malformed(format!("office keys: signing key: {e}")))?;
        // Checks that the key is a curve point and the recipient an age X25519 recipient.
        PublicKeys::parse(signing_hex, recipient)
            .map_err(|e| malformed(format!("office keys: {e}")))?;
        if recipient.trim() != recipient {
            return Err(malformed(
                "office keys: the recipient has surrounding spaces",
            ));
        }
        Ok(OfficeKeys {
            signing,
            recipient: recipient.to_owned(),
        })
    }

    /// The public keys of an office identity held on this machine.
    pub fn from_keys(office: &DeviceKeys) -> Self {
        OfficeKeys {
            signing: office.id(),
            recipient: office.public().recipient.to_string(),
        }
    }
}

impl fmt::Display for OfficeKeys {
    /// The text form, ending with a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        writeln!(f, "signing {}", self.signing)?;
        writeln!(f, "recipient {}", self.recipient)
    }
}

impl FromStr for OfficeKeys {
    type Err = ProtocolError;

    /// Parses the text form. Blank lines and surrounding spaces are tolerated; anything
    /// else out of place is refused with the line that is wrong.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |what: String| {
            malformed(format!(
                "office key file: {what}; export the office's public keys again"
            ))
        };
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        match lines.next() {
            Some(HEADER) => {}
            Some(_) => return Err(bad(format!("the first line is not `{HEADER}`"))),
            None => return Err(bad("it is empty".into())),
        }
        let mut signing = None;
        let mut recipient = None;
        for line in lines {
            let (key, value) = line
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .unwrap_or((line, ""));
            let slot = match key {
                "signing" => &mut signing,
                "recipient" => &mut recipient,
                other => return Err(bad(format!("unknown line `{}`", shorten(other)))),
            };
            if slot.replace(value).is_some() {
                return Err(bad(format!("`{key}` appears twice")));
            }
        }
        let signing = signing.ok_or_else(|| bad("the `signing` line is missing".into()))?;
        let recipient = recipient.ok_or_else(|| bad("the `recipient` line is missing".into()))?;
        OfficeKeys::new(signing, recipient).map_err(|e| bad(e.to_string()))
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(24).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let keys = OfficeKeys::from_keys(&DeviceKeys::generate());
        let text = keys.to_string();
        assert!(text.starts_with("cairn-office-v1\nsigning "));
        assert_eq!(text.parse::<OfficeKeys>().unwrap(), keys);
        let spaced = format!("\n  {}\n\n", text.replace(' ', "   "));
        assert_eq!(spaced.parse::<OfficeKeys>().unwrap(), keys);
    }

    #[test]
    fn clear_errors() {
        let keys = OfficeKeys::from_keys(&DeviceKeys::generate());
        let good = keys.to_string();
        let cases = [
            ("".to_string(), "empty"),
            ("hello\n".to_string(), "first line"),
            (good.replace("recipient", "recipent"), "unknown line"),
            (
                good.lines().take(2).collect::<Vec<_>>().join("\n"),
                "recipient` line is missing",
            ),
            (format!("{good}signing {}\n", keys.signing), "twice"),
            (
                good.replace(&keys.signing.to_string(), "abcd"),
                "64 lowercase hex",
            ),
            (good.replace(&keys.recipient, "age1nope"), "age recipient"),
        ];
        for (text, want) in cases {
            let err = text.parse::<OfficeKeys>().unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(
                err.contains("export the office's public keys again"),
                "{err}"
            );
        }
    }

    #[test]
    fn json_is_checked() {
        let keys = OfficeKeys::from_keys(&DeviceKeys::generate());
        let json = serde_json::to_string(&keys).unwrap();
        assert_eq!(serde_json::from_str::<OfficeKeys>(&json).unwrap(), keys);
        let bad = json.replace(&keys.recipient, "age1nope");
        assert!(serde_json::from_str::<OfficeKeys>(&bad).is_err());
    }
}
