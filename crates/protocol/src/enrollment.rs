//! Enrollment: a device presents an office-signed invite together with its own public keys,
//! signed with its own key. The device signature proves it holds the key it names and binds
//! that key to exactly one invite; the office signature inside the invite names the team.

use cairn_crypto::{verify_signature, DeviceId, DeviceKeys, PublicKeys};
use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::{Invite, ProtocolError};

/// The signature domain of enrollments.
pub const ENROLLMENT_DOMAIN: &str = "cairn enrollment v1";
const MAX_NAME: usize = 64;

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
}

/// A device's request to join the team named by an invite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The office-signed invite, as its one-line text.
    pub invite: Invite,
    /// The joining device's public keys.
    pub device: DevicePublic,
    /// A name a person gave the device, shown in the roster.
    pub name: Option<String>,
    /// The device's signature over [`Enrollment::signed_bytes`].
    #[serde(with = "crate::hexser::signature")]
    pub device_signature: [u8; 64],
}

/// What the device signs: its keys, its name and the invite id.
#[derive(Serialize)]
struct Claim<'a> {
    invite_id: &'a str,
    #[serde(with = "crate::hexser::device_id")]
    signing: &'a DeviceId,
    recipient: &'a str,
    name: &'a Option<String>,
}

impl Enrollment {
    /// Builds and signs an enrollment for this device.
    pub fn create(
        device: &DeviceKeys,
        invite: Invite,
        name: Option<String>,
    ) -> Result<Enrollment, ProtocolError> {
        if let Some(n) = &name {
            check_name(n)?;
        }
        let mut enrollment = Enrollment {
            invite,
            device: DevicePublic::from_keys(device),
            name,
            device_signature: [0; 64],
        };
        enrollment.device_signature = device.sign(ENROLLMENT_DOMAIN, &enrollment.signed_bytes());
        Ok(enrollment)
    }

    /// The bytes the device signs (with the domain [`ENROLLMENT_DOMAIN`]): the JSON object
    /// `{"invite_id", "signing", "recipient", "name"}`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let claim = Claim {
            invite_id: self.invite.id(),
            signing: &self.device.signing,
            recipient: &self.device.recipient,
            name: &self.name,
        };
        serde_json::to_vec(&claim).unwrap_or_default()
    }

    /// The joining device.
    pub fn device_id(&self) -> DeviceId {
        self.device.signing
    }

    /// The team named by the invite.
    pub fn team(&self) -> &str {
        &self.invite.body.team
    }

    /// Checks the device's signature and the shape of its keys and name.
    pub fn check_device_signature(&self) -> Result<(), ProtocolError> {
        PublicKeys::parse(&self.device.signing.to_string(), &self.device.recipient)
            .map_err(|e| malformed(format!("enrollment: {e}")))?;
        if let Some(n) = &self.name {
            check_name(n)?;
        }
        verify_signature(
            &self.device.signing,
            ENROLLMENT_DOMAIN,
            &self.signed_bytes(),
            &self.device_signature,
        )
        .map_err(|_| {
            ProtocolError::BadSignature(format!(
                "the enrollment of device {}",
                self.device.signing.short()
            ))
        })
    }

    /// Checks everything but the invite's expiry: the invite is signed by `office`, the
    /// device's signature holds, and the device is not the office itself.
    pub fn verify(&self, office: &DeviceId) -> Result<(), ProtocolError> {
        self.invite.check_signature(office)?;
        self.check_device_signature()?;
        if self.device.signing == *office {
            return Err(malformed(
                "enrollment: the office cannot enroll as a field device",
            ));
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), ProtocolError> {
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
    use super::*;

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn setup() -> (DeviceKeys, DeviceKeys, Enrollment) {
        let office = DeviceKeys::generate();
        let device = DeviceKeys::generate();
        let invite = Invite::issue(&office, "T03", "https://h:1", FP, 10).unwrap();
        let e = Enrollment::create(&device, invite, Some("tablet 2".into())).unwrap();
        (office, device, e)
    }

    #[test]
    fn create_verify_json_round_trip() {
        let (office, device, e) = setup();
        e.verify(&office.id()).unwrap();
        assert_eq!(e.device_id(), device.id());
        assert_eq!(e.team(), "T03");
        let json = serde_json::to_string(&e).unwrap();
        let back: Enrollment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        // Expiry is not the roster's concern.
        back.verify(&office.id()).unwrap();
    }

    #[test]
    fn every_tamper_is_caught() {
        let (office, _device, e) = setup();
        let mut renamed = e.clone();
        renamed.name = Some("other".into());
        assert!(matches!(
            renamed.verify(&office.id()),
            Err(ProtocolError::BadSignature(_))
        ));
        let mut rekeyed = e.clone();
        rekeyed.device.recipient = DeviceKeys::generate().public().recipient.to_string();
        assert!(matches!(
            rekeyed.verify(&office.id()),
            Err(ProtocolError::BadSignature(_))
        ));
        let mut stolen = e.clone();
        stolen.device.signing = DeviceKeys::generate().id();
        assert!(matches!(
            stolen.verify(&office.id()),
            Err(ProtocolError::BadSignature(_))
        ));
        // Moved to another invite of the same office.
        let other = Invite::issue(&office, "T03", "https://h:1", FP, 10).unwrap();
        let mut moved = e.clone();
        moved.invite = other;
        assert!(matches!(
            moved.verify(&office.id()),
            Err(ProtocolError::BadSignature(_))
        ));
        assert_eq!(
            e.verify(&DeviceKeys::generate().id()),
            Err(ProtocolError::NotSignedByOffice("invite"))
        );
    }

    #[test]
    fn bad_names_and_json() {
        let office = DeviceKeys::generate();
        let device = DeviceKeys::generate();
        let invite = Invite::issue(&office, "T03", "https://h:1", FP, 10).unwrap();
        for name in ["", "  ", "a\nb", &"x".repeat(65)] {
            assert!(Enrollment::create(&device, invite.clone(), Some(name.into())).is_err());
        }
        for json in [
            "{}",
            "[]",
            "null",
            r#"{"invite":"x","device":{},"name":null,"device_signature":""}"#,
        ] {
            assert!(serde_json::from_str::<Enrollment>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn office_cannot_enroll() {
        let office = DeviceKeys::generate();
        let invite = Invite::issue(&office, "T03", "https://h:1", FP, 10).unwrap();
        let e = Enrollment::create(&office, invite, None).unwrap();
        assert!(matches!(
            e.verify(&office.id()),
            Err(ProtocolError::Malformed(_))
        ));
    }
}
