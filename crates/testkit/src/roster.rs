//! Roster statements for tests that play the office.

use cairn_crypto::{DeviceKeys, TeamKey};
use cairn_protocol::{unix_now, Act, Admit, DevicePublic, Grant, OfficeKeys, Roster, Statement};

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

/// The roster of an office that admitted each device into its team, in order (every team
/// at epoch 1): what a replica's verdicts come from in tests that need no server.
pub fn roster(office: &DeviceKeys, members: &[(&DeviceKeys, &str)]) -> Roster {
    let mut chain: Vec<Statement> = Vec::new();
    for (device, team) in members {
        let key = TeamKey::generate(team, 1);
        let prev = chain.last().map_or([0; 32], Statement::hash);
        chain.push(admit(
            office,
            chain.len() as u64 + 1,
            prev,
            &key,
            &DevicePublic::from_keys(device),
            "https://127.0.0.1:1",
            &"0".repeat(64),
            unix_now() + 600,
        ));
    }
    let roster = Roster::build(&OfficeKeys::from_keys(office), &chain);
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    roster
}
