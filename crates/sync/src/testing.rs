//! What the crate's tests share: a real server in this process, and vaults that use it.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::path::Path;

use cairn_crypto::{DeviceKeys, KeyFileCost, SecretString};
use cairn_protocol::{unix_now, DeviceLine, OfficeKeys};
use cairn_testkit::{LocalServer, ServerDir};
use cairn_vault::{Home, NewVault, Role, Vault};

use crate::Options;

/// A real server in this process, under `dir`, whose `server.toml` has `settings` set.
pub(crate) async fn server(
    dir: &Path,
    office: &DeviceKeys,
    settings: &[(&str, &str)],
) -> LocalServer {
    let srv = ServerDir::init_in(dir, OfficeKeys::from_keys(office));
    srv.configure(settings);
    srv.serve().await
}

/// A new vault under `dir/name` (a cheap key file: tests only).
pub(crate) fn vault(dir: &Path, name: &str, role: Role, team: &str) -> Vault {
    let pass = SecretString::from("test".to_owned());
    let new = NewVault {
        team: team.into(),
        name: Some(name.into()),
        role,
    };
    Home::new(dir.join(name))
        .create(
            &pass,
            KeyFileCost::LogN(2),
            new,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap()
}

/// An office vault with a server of its own, the office pointed at it.
pub(crate) struct Setup {
    pub(crate) office: Vault,
    pub(crate) server: LocalServer,
    pub(crate) url: String,
}

impl Setup {
    pub(crate) async fn start(dir: &Path, settings: &[(&str, &str)]) -> Setup {
        let mut office = vault(dir, "office", Role::Office, "office");
        let server = server(dir, office.keys(), settings).await;
        let url = server.url();
        let keys = OfficeKeys::from_keys(office.keys());
        crate::point_at_server(&mut office, &url, server.fingerprint(), &keys).unwrap();
        Setup {
            office,
            server,
            url,
        }
    }

    /// A field vault of `team` (a staff vault for team `office`) admitted by the office
    /// (which then syncs, so the server learns the admission) and joined to the server.
    pub(crate) async fn field(&mut self, dir: &Path, name: &str, team: &str) -> Vault {
        let role = if team == cairn_protocol::OFFICE_TEAM {
            Role::Staff
        } else {
            Role::Field
        };
        let mut device = vault(dir, name, role, team);
        let line = DeviceLine::new(device.keys(), Some(name.into())).unwrap();
        let to = crate::AdmitTo {
            team: team.into(),
            server: self.url.clone(),
            fingerprint: self.server.fingerprint().to_owned(),
            expires_at: unix_now() + 600,
        };
        let admission = crate::admit(&mut self.office, &line, &to).unwrap();
        crate::sync(&mut self.office, &Options::default(), &())
            .await
            .unwrap();
        crate::join(&mut device, admission, &Options::default())
            .await
            .unwrap();
        device
    }
}

/// Statement 1 of a new chain: the office admits `device` into the team of `key`.
pub(crate) fn admission(
    office: &DeviceKeys,
    device: &DeviceKeys,
    key: &cairn_crypto::TeamKey,
    server: &str,
    fingerprint: &str,
) -> cairn_protocol::Statement {
    let device = cairn_protocol::DevicePublic::from_keys(device);
    let expires_at = unix_now() + 600;
    cairn_testkit::admit(
        office,
        1,
        [0; 32],
        key,
        &device,
        server,
        fingerprint,
        expires_at,
    )
}
