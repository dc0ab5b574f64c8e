//! Roster statements for tests that play the office.

use cairn_crypto::{DeviceKeys, TeamKey};
use cairn_protocol::{unix_now, Act, Admit, DevicePublic, Grant, Statement};

/// The office admits `device` into `key`'s team at `server` as statement `counter` after the
/// statement whose hash is `prev`, granting the team key to the device and to the office.
#[allow(clippy::too_many_arguments)]
pub fn admit(
    office: &DeviceKeys,
    counter: u64,
    prev: [u8; 32],
    key: &TeamKey,
    device: &DevicePublic,
    server: &str,
    fingerprint: &str,
    expires_at: u64,
) -> Statement {
    let grants = [device.clone(), DevicePublic::from_keys(office)]
        .iter()
        .map(|to| Grant::new(key, to).expect("grant"))
        .collect();
    let act = Act::Admit(Admit {
        device: device.clone(),
        name: None,
        sealed_name: None,
        team: key.team().to_owned(),
        epoch: key.epoch(),
        grants,
        server: server.to_owned(),
        fingerprint: fingerprint.to_owned(),
        expires_at,
    });
    Statement::issue(office, counter, prev, unix_now(), act).expect("statement")
}
