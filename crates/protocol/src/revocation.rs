//! Revocation: the office's signed word that a device may no longer write or read.
//!
//! `last_seq` is the highest change number of that device the office still accepts: changes
//! made before the loss was noticed stay valid, anything numbered after is refused everywhere.

use cairn_crypto::{verify_signature, DeviceId, DeviceKeys};
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// The signature domain of revocations.
pub const REVOCATION_DOMAIN: &str = "cairn revocation v1";

/// An office-signed revocation of one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The revoked device.
    #[serde(with = "crate::hexser::device_id")]
    pub device: DeviceId,
    /// The highest change number of that device the office accepts (0: none).
    pub last_seq: u64,
    /// When the office revoked it, in Unix seconds.
    pub at: u64,
    /// The office's signature over [`Revocation::signed_bytes`].
    #[serde(with = "crate::hexser::signature")]
    pub office_signature: [u8; 64],
}

#[derive(Serialize)]
struct Signed<'a> {
    #[serde(with = "crate::hexser::device_id")]
    device: &'a DeviceId,
    last_seq: u64,
    at: u64,
}

impl Revocation {
    /// Issues a revocation signed by the office.
    pub fn issue(office: &DeviceKeys, device: DeviceId, last_seq: u64, at: u64) -> Revocation {
        let mut r = Revocation {
            device,
            last_seq,
            at,
            office_signature: [0; 64],
        };
        r.office_signature = office.sign(REVOCATION_DOMAIN, &r.signed_bytes());
        r
    }

    /// The bytes the office signs (with the domain [`REVOCATION_DOMAIN`]): the JSON object
    /// `{"device", "last_seq", "at"}`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let signed = Signed {
            device: &self.device,
            last_seq: self.last_seq,
            at: self.at,
        };
        serde_json::to_vec(&signed).unwrap_or_default()
    }

    /// Checks the office's signature.
    pub fn verify(&self, office: &DeviceId) -> Result<(), ProtocolError> {
        verify_signature(
            office,
            REVOCATION_DOMAIN,
            &self.signed_bytes(),
            &self.office_signature,
        )
        .map_err(|_| ProtocolError::NotSignedByOffice("revocation"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_verify_tamper() {
        let office = DeviceKeys::generate();
        let lost = DeviceKeys::generate().id();
        let r = Revocation::issue(&office, lost, 41, 1_700_000_000);
        r.verify(&office.id()).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: Revocation = serde_json::from_str(&json).unwrap();
        back.verify(&office.id()).unwrap();
        let mut raised = r.clone();
        raised.last_seq = 100;
        assert!(raised.verify(&office.id()).is_err());
        assert!(r.verify(&DeviceKeys::generate().id()).is_err());
        assert!(serde_json::from_str::<Revocation>("{}").is_err());
    }
}
