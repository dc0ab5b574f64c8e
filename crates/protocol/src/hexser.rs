//! Serde helpers: device ids and signatures travel as lowercase hex in JSON.

use cairn_crypto::DeviceId;
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

pub(crate) mod device_id {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(id: &DeviceId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceId, D::Error> {
        let text = String::deserialize(d)?;
        parse_device_id(&text).map_err(D::Error::custom)
    }
}

pub(crate) mod signature {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(d)?;
        parse_signature(&text).map_err(D::Error::custom)
    }
}

/// Parses exactly 64 lowercase hex digits (no surrounding space: signed bytes must not vary).
pub(crate) fn parse_device_id(text: &str) -> Result<DeviceId, String> {
    let bytes = strict_hex(text, 32).ok_or("a device id is 64 lowercase hex digits")?;
    let mut id = [0u8; 32];
    id.copy_from_slice(&bytes);
    Ok(DeviceId(id))
}

/// Parses exactly 128 lowercase hex digits.
pub(crate) fn parse_signature(text: &str) -> Result<[u8; 64], String> {
    let bytes = strict_hex(text, 64).ok_or("a signature is 128 lowercase hex digits")?;
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&bytes);
    Ok(sig)
}

/// Decodes lowercase hex of exactly `len` bytes; anything else is `None`.
pub(crate) fn strict_hex(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 || !is_lower_hex(text) {
        return None;
    }
    hex::decode(text).ok()
}

pub(crate) fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
