//! What sync keeps in the vault, as typed records: each its own encrypted `meta` row with
//! one writing function, named on the record, which the sync client calls from one module.
//! A step of a sync changes only what it owns, so none writes back a stale copy of what
//! another step moved (one blob read at the start of a sync and written whole at its end
//! could put an older cursor back over the one a page stored).
//!
//! Reading is free: [`Vault::sync_state`] gives all of them at once, read in one snapshot, for
//! status and the command line.
//!
//! Vaults made before kept one `sync` record holding all of these; [`upgrade`] splits it at
//! open, in one transaction.

use cairn_protocol::{Receipt, Statement};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{store, Vault, VaultError};

const ENDPOINT: &str = "endpoint";
const PROGRESS: &str = "progress";
const OUTBOX: &str = "outbox";
const ROSTER: &str = "roster";
const RECEIPT: &str = "receipt";
const LAST_SYNC: &str = "last_sync";
pub(crate) const RESTORING: &str = "restoring";
/// The one record earlier vaults kept all of these in.
const LEGACY: &str = "sync";

/// Which server this vault syncs with, and whose signatures make its roster.
///
/// Written by [`Update::endpoint`](crate::Update::endpoint) only, which the sync client calls
/// from `join.rs` (joining, the office pointing at its server, a restore).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The server's URL, from the admission.
    pub server: Option<String>,
    /// SHA-256 fingerprint of the server's TLS certificate, pinned from the admission.
    pub fingerprint: Option<String>,
    /// The office's public keys in their text form (`cairn office pubkey`).
    pub office: Option<String>,
}

/// How far the pull got.
///
/// Written only inside the transaction of [`Vault::apply_pulled`], with the page it follows,
/// which the sync client calls from `pull.rs` only (the cold start from checkpoints goes
/// through it too, with no change).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullProgress {
    /// Server cursor after the last page applied here.
    pub cursor: u64,
}

/// How far the server took this device's own changes.
///
/// Written by [`Vault::update_outbox`] only, which the sync client calls from `push.rs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxProgress {
    /// Highest own change number the server has stored with no gap below it.
    pub acked: u64,
    /// The first own change the server acknowledged that the office's receipts do not
    /// confirm yet, watched so that it is sent again once the office has pulled without it.
    #[serde(default)]
    pub unconfirmed: Option<Unconfirmed>,
}

/// An own change the server acknowledged and the office's receipts do not confirm (see
/// [`OutboxProgress::unconfirmed`]). Receipt counters are the office's clock here: it issues a
/// new receipt after every pull that brought anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unconfirmed {
    /// The change's number (the office confirms 1 to `seq - 1`).
    pub seq: u64,
    /// How many times it was sent again.
    pub resent: u32,
    /// It is sent (again) only once a receipt newer than this one arrives: one the office
    /// made after a pull that should have carried it.
    pub after_receipt: u64,
}

/// The office-signed roster statements this device verified (for a device that just joined,
/// only its own admission): the sync client never lets a server take one back.
///
/// Written by [`Update::roster`](crate::Update::roster) only (with the team keys the chain
/// grants), which the sync client calls from `roster.rs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RosterChain {
    /// The statements, in the chain's order.
    pub statements: Vec<Statement>,
    /// What the server served of the roster that this device refused, from the last fetch.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What the last sync did.
///
/// Written by [`Vault::record_last_sync`] only, once at the end of a sync, which the sync
/// client calls from `engine.rs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    /// When it finished (RFC 3339).
    pub at: Option<String>,
    /// One line summing it up.
    pub summary: Option<String>,
    /// Changes the server seems to withhold, from its complete pull, one sentence each.
    #[serde(default)]
    pub delivery_warnings: Vec<String>,
}

/// Every sync record at once, read in one snapshot: for reading only (each record has its own
/// writer, see the record).
#[derive(Clone, Debug, Default)]
pub struct SyncState {
    /// See [`Endpoint`].
    pub endpoint: Endpoint,
    /// See [`PullProgress`].
    pub pull: PullProgress,
    /// See [`OutboxProgress`].
    pub outbox: OutboxProgress,
    /// See [`RosterChain`].
    pub roster: RosterChain,
    /// The newest office receipt received (for the office, the newest it issued): see
    /// [`Vault::keep_receipt`].
    pub receipt: Option<Receipt>,
    /// See [`LastSync`].
    pub last_sync: LastSync,
    /// An office restore from the server (`cairn office restore`) began and has not finished:
    /// the vault holds the office's chain and keys, perhaps not yet everything the server
    /// holds. Set by [`Vault::begin_restore`], cleared by [`Vault::finish_restore`].
    pub restoring: bool,
}

/// The one record of earlier vaults, in its shape then.
#[derive(Deserialize)]
struct Legacy {
    server: Option<String>,
    fingerprint: Option<String>,
    office: Option<String>,
    acked: u64,
    cursor: u64,
    last_sync_at: Option<String>,
    last_summary: Option<String>,
    roster: Vec<Statement>,
    #[serde(default)]
    roster_warnings: Vec<String>,
    #[serde(default)]
    receipt: Option<Receipt>,
    #[serde(default)]
    delivery_warnings: Vec<String>,
    #[serde(default)]
    unconfirmed: Option<Unconfirmed>,
    #[serde(default)]
    restoring: bool,
}

impl Legacy {
    fn split(self) -> SyncState {
        SyncState {
            endpoint: Endpoint {
                server: self.server,
                fingerprint: self.fingerprint,
                office: self.office,
            },
            pull: PullProgress {
                cursor: self.cursor,
            },
            outbox: OutboxProgress {
                acked: self.acked,
                unconfirmed: self.unconfirmed,
            },
            roster: RosterChain {
                statements: self.roster,
                warnings: self.roster_warnings,
            },
            receipt: self.receipt,
            last_sync: LastSync {
                at: self.last_sync_at,
                summary: self.last_summary,
                delivery_warnings: self.delivery_warnings,
            },
            restoring: self.restoring,
        }
    }
}

/// Reads every sync record in one snapshot (inside the caller's transaction if there is one).
/// `as_found`: as written, whatever `versions` says, and from the one record of an earlier
/// vault if it was never split (a vault opened as found is never written).
pub(crate) fn read_all(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    path: &std::path::Path,
    as_found: bool,
) -> Result<SyncState, VaultError> {
    crate::transactions::one_snapshot(conn, path, || {
        let read = Reader {
            conn,
            cipher,
            path,
            as_found,
        };
        if as_found {
            if let Some(legacy) = read.record::<Legacy>(LEGACY)? {
                return Ok(legacy.split());
            }
        }
        Ok(SyncState {
            endpoint: read.record(ENDPOINT)?.unwrap_or_default(),
            pull: read.record(PROGRESS)?.unwrap_or_default(),
            outbox: read.record(OUTBOX)?.unwrap_or_default(),
            roster: read.record(ROSTER)?.unwrap_or_default(),
            receipt: read.record(RECEIPT)?,
            last_sync: read.record(LAST_SYNC)?.unwrap_or_default(),
            restoring: read.record(RESTORING)?.unwrap_or_default(),
        })
    })
}

struct Reader<'a> {
    conn: &'a rusqlite::Connection,
    cipher: &'a cairn_crypto::LocalCipher,
    path: &'a std::path::Path,
    as_found: bool,
}

impl Reader<'_> {
    fn record<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, VaultError> {
        match self.as_found {
            true => store::read_meta_as_found(self.conn, self.cipher, key, self.path),
            false => store::read_meta(self.conn, self.cipher, key, self.path),
        }
    }
}

impl Vault {
    fn sync_record<T: DeserializeOwned + Default>(
        &self,
        key: &str,
        of: impl FnOnce(SyncState) -> T,
    ) -> Result<T, VaultError> {
        if self.as_found {
            // It may still be the one record of an earlier vault.
            return self.sync_state().map(of);
        }
        let path = self.home.database();
        Ok(store::read_meta(&self.conn, &self.cipher, key, &path)?.unwrap_or_default())
    }

    /// Every sync record, read in one snapshot (defaults if this vault never joined a server).
    pub fn sync_state(&self) -> Result<SyncState, VaultError> {
        read_all(
            &self.conn,
            &self.cipher,
            &self.home.database(),
            self.as_found,
        )
    }

    /// The server and office this vault syncs with ([`Endpoint`]).
    pub fn endpoint(&self) -> Result<Endpoint, VaultError> {
        self.sync_record(ENDPOINT, |s| s.endpoint)
    }

    /// The server cursor after the last page applied here ([`PullProgress`]).
    pub fn pull_cursor(&self) -> Result<u64, VaultError> {
        self.sync_record(PROGRESS, |s| s.pull)
            .map(|p: PullProgress| p.cursor)
    }

    /// How far the server took this device's changes ([`OutboxProgress`]).
    pub fn outbox_progress(&self) -> Result<OutboxProgress, VaultError> {
        self.sync_record(OUTBOX, |s| s.outbox)
    }

    /// The roster statements this vault holds ([`RosterChain`]).
    pub fn roster_chain(&self) -> Result<RosterChain, VaultError> {
        self.sync_record(ROSTER, |s| s.roster)
    }

    /// The newest office receipt held (see [`Vault::keep_receipt`]).
    pub fn receipt(&self) -> Result<Option<Receipt>, VaultError> {
        self.sync_record(RECEIPT, |s| s.receipt)
    }

    /// What the last sync did ([`LastSync`]).
    pub fn last_sync(&self) -> Result<LastSync, VaultError> {
        self.sync_record(LAST_SYNC, |s| s.last_sync)
    }

    /// Whether an office restore began and has not finished (see [`SyncState::restoring`]).
    pub fn is_restoring(&self) -> Result<bool, VaultError> {
        self.sync_record(RESTORING, |s| s.restoring)
    }

    /// Changes [`OutboxProgress`] by `change`, read and written under the write lock (another
    /// process may have moved it since this one last read it); written only if it changed.
    /// Returns it as stored. The only writer of that record: the sync client's push step calls
    /// it (`push.rs`), for what the server's answers and pages acknowledge and for the watch
    /// over unconfirmed changes.
    pub fn update_outbox(
        &mut self,
        change: impl FnOnce(&mut OutboxProgress),
    ) -> Result<OutboxProgress, VaultError> {
        let path = self.home.database();
        let Vault { conn, cipher, .. } = &*self;
        store::atomic(conn, &path, || {
            let held: OutboxProgress =
                store::read_meta(conn, cipher, OUTBOX, &path)?.unwrap_or_default();
            let mut changed = held.clone();
            change(&mut changed);
            if changed != held {
                store::write_meta(conn, cipher, OUTBOX, &changed, &path)?;
            }
            Ok(changed)
        })
    }

    /// Keeps `receipt` as the newest office receipt: one received from the office, or at the
    /// office the one it just issued (kept before it is sent, so that its number is never used
    /// twice). The only writer of that record: the sync client calls it from `receipt.rs`.
    pub fn keep_receipt(&mut self, receipt: &Receipt) -> Result<(), VaultError> {
        let path = self.home.database();
        store::write_meta(&self.conn, &self.cipher, RECEIPT, receipt, &path)
    }

    /// Records what a sync did, once at its end ([`LastSync`]). The only writer of that
    /// record: the sync client calls it from `engine.rs`. Nothing else is written with it.
    pub fn record_last_sync(&mut self, last: &LastSync) -> Result<(), VaultError> {
        let path = self.home.database();
        store::write_meta(&self.conn, &self.cipher, LAST_SYNC, last, &path)
    }
}

/// Writes the endpoint, for [`crate::Update`] only (inside its transaction).
pub(crate) fn write_endpoint(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    endpoint: &Endpoint,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    store::write_meta(conn, cipher, ENDPOINT, endpoint, path)
}

/// Writes the roster chain, for [`crate::Update`] only (inside its transaction).
pub(crate) fn write_roster(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    chain: &RosterChain,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    store::write_meta(conn, cipher, ROSTER, chain, path)
}

/// Moves the pull cursor to `cursor` inside the transaction that applies the page it follows
/// ([`Vault::apply_pulled`] only). Never back: the server's cursors only grow, and another
/// process's pull may have moved it further meanwhile.
pub(crate) fn advance_cursor(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    cursor: u64,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let held: PullProgress = store::read_meta(conn, cipher, PROGRESS, path)?.unwrap_or_default();
    if cursor > held.cursor {
        store::write_meta(conn, cipher, PROGRESS, &PullProgress { cursor }, path)?;
    }
    Ok(())
}

/// Splits the one `sync` record of a vault made before into the records above, in one
/// transaction, and deletes it: a crash leaves either the old record or the new ones.
pub(crate) fn upgrade(vault: &Vault) -> Result<(), VaultError> {
    let path = vault.home.database();
    let Vault { conn, cipher, .. } = vault;
    if !store::has_meta(conn, LEGACY, &path)? {
        return Ok(());
    }
    store::atomic(conn, &path, || {
        // Another process may have split it meanwhile.
        let Some(legacy) = store::read_meta::<Legacy>(conn, cipher, LEGACY, &path)? else {
            return Ok(());
        };
        let state = legacy.split();
        store::write_meta(conn, cipher, ENDPOINT, &state.endpoint, &path)?;
        store::write_meta(conn, cipher, PROGRESS, &state.pull, &path)?;
        store::write_meta(conn, cipher, OUTBOX, &state.outbox, &path)?;
        store::write_meta(conn, cipher, ROSTER, &state.roster, &path)?;
        if let Some(receipt) = &state.receipt {
            store::write_meta(conn, cipher, RECEIPT, receipt, &path)?;
        }
        store::write_meta(conn, cipher, LAST_SYNC, &state.last_sync, &path)?;
        if state.restoring {
            store::write_meta(conn, cipher, RESTORING, &true, &path)?;
        }
        crate::failpoint::hit("upgrade:split");
        store::delete_meta(conn, cipher, LEGACY, &path)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use cairn_crypto::{DeviceKeys, KeyFileCost, SecretString};
    use cairn_protocol::Held;
    use rusqlite::Connection;

    use super::*;
    use crate::{Home, NewVault, Role};

    fn pass() -> SecretString {
        SecretString::from("pass".to_owned())
    }

    fn field(home: &Home) -> Vault {
        let new = NewVault {
            team: "T03".into(),
            name: None,
            role: Role::Field,
        };
        let now = time::OffsetDateTime::now_utc();
        home.create(&pass(), KeyFileCost::LogN(4), new, now)
            .unwrap()
    }

    fn keys_in_meta(home: &Home) -> Vec<String> {
        let conn = Connection::open(home.database()).unwrap();
        let mut stmt = conn.prepare("SELECT key FROM meta ORDER BY key").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// A vault as earlier cairn left it: its sync state in the one `sync` record, written in
    /// that record's shape (field names as they were then). Returns what it holds.
    fn with_old_record(home: &Home) -> (Vec<Statement>, Receipt) {
        let vault = field(home);
        let office = DeviceKeys::generate();
        let chain = cairn_testkit::roster(&office, &[(vault.keys(), "T03")])
            .chain()
            .to_vec();
        let held = vec![Held {
            device: vault.keys().id(),
            upto: 4,
        }];
        let receipt = Receipt::issue(&office, 3, 1_700_000_000, held);
        let old = serde_json::json!({
            "server": "https://127.0.0.1:4433",
            "fingerprint": "ab".repeat(32),
            "office": "office-keys",
            "acked": 5,
            "cursor": 27,
            "last_sync_at": "2026-12-01T10:00:00Z",
            "last_summary": "sent 5, received 3, refused 0, still pending 0",
            "roster": chain,
            "roster_warnings": ["a warning"],
            "receipt": receipt,
            "delivery_warnings": ["change 2 of device x has not arrived"],
            "unconfirmed": {"seq": 5, "resent": 1, "after_receipt": 3},
        });
        let path = home.database();
        store::write_meta(&vault.conn, &vault.cipher, LEGACY, &old, &path).unwrap();
        (chain, receipt)
    }

    /// An earlier vault's one `sync` record is split into the typed records at open and
    /// deleted, everything it held kept; until then a vault opened as found reads it as it is.
    #[test]
    fn the_one_sync_record_of_an_earlier_vault_is_split_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        let (chain, receipt) = with_old_record(&home);
        assert!(keys_in_meta(&home).contains(&LEGACY.to_owned()));

        let (found, problem) = home.open_as_found(home.unlock(&pass()).unwrap()).unwrap();
        assert!(problem.is_none(), "{problem:?}");
        assert_eq!(found.pull_cursor().unwrap(), 27, "read as found");
        assert_eq!(found.roster_chain().unwrap().statements, chain);
        drop(found);
        assert!(
            keys_in_meta(&home).contains(&LEGACY.to_owned()),
            "nothing written"
        );

        let vault = home.open(&pass()).unwrap();
        let keys = keys_in_meta(&home);
        assert!(!keys.contains(&LEGACY.to_owned()), "{keys:?}");
        let state = vault.sync_state().unwrap();
        assert_eq!(
            state.endpoint,
            Endpoint {
                server: Some("https://127.0.0.1:4433".into()),
                fingerprint: Some("ab".repeat(32)),
                office: Some("office-keys".into()),
            }
        );
        assert_eq!(vault.endpoint().unwrap(), state.endpoint);
        assert_eq!(vault.pull_cursor().unwrap(), 27);
        let unconfirmed = Unconfirmed {
            seq: 5,
            resent: 1,
            after_receipt: 3,
        };
        assert_eq!(
            vault.outbox_progress().unwrap(),
            OutboxProgress {
                acked: 5,
                unconfirmed: Some(unconfirmed),
            }
        );
        let roster = vault.roster_chain().unwrap();
        assert_eq!(roster.statements, chain);
        assert_eq!(roster.warnings, ["a warning"]);
        assert_eq!(vault.receipt().unwrap(), Some(receipt));
        let last = vault.last_sync().unwrap();
        assert_eq!(last.at.as_deref(), Some("2026-12-01T10:00:00Z"));
        assert!(last.summary.unwrap().starts_with("sent 5"));
        assert_eq!(last.delivery_warnings.len(), 1);
        assert!(!vault.is_restoring().unwrap());
        vault.check().unwrap();
        drop(vault);
        // Split once: opening again finds nothing to do and changes nothing.
        let before = keys_in_meta(&home);
        let vault = home.open(&pass()).unwrap();
        assert_eq!(keys_in_meta(&home), before);
        assert_eq!(vault.pull_cursor().unwrap(), 27);
    }

    /// The split is one transaction: cut off before its end (here: the old record cannot be
    /// deleted), the vault holds the old record only, as before, and the next open splits it.
    #[test]
    fn a_split_cut_off_leaves_the_old_record_alone() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        with_old_record(&home);
        let before = keys_in_meta(&home);
        let refuse = "CREATE TRIGGER keep_sync BEFORE DELETE ON meta WHEN OLD.key = 'sync'
                      BEGIN SELECT RAISE(ABORT, 'kept'); END;";
        Connection::open(home.database())
            .unwrap()
            .execute_batch(refuse)
            .unwrap();
        assert!(home.open(&pass()).is_err());
        assert_eq!(keys_in_meta(&home), before, "neither split nor deleted");

        Connection::open(home.database())
            .unwrap()
            .execute_batch("DROP TRIGGER keep_sync")
            .unwrap();
        let vault = home.open(&pass()).unwrap();
        assert_eq!(vault.pull_cursor().unwrap(), 27);
        assert_eq!(vault.outbox_progress().unwrap().acked, 5);
        assert!(!keys_in_meta(&home).contains(&LEGACY.to_owned()));
        vault.check().unwrap();
    }

    /// The outbox record is changed under the write lock: two handles on one vault, each
    /// changing its own field from a copy read before the other's write, keep both changes
    /// (a whole record written from a stale copy would lose one).
    #[test]
    fn outbox_changes_from_two_handles_are_both_kept() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        drop(field(&home));
        let mut push = home.open(&pass()).unwrap();
        let mut resend = home.open(&pass()).unwrap();
        let stale = resend.outbox_progress().unwrap();
        push.update_outbox(|o| o.acked = 9).unwrap();
        let watch = Unconfirmed {
            seq: stale.acked + 1,
            resent: 0,
            after_receipt: 2,
        };
        let stored = resend
            .update_outbox(|o| o.unconfirmed = Some(watch.clone()))
            .unwrap();
        assert_eq!(stored.acked, 9, "the other handle's acked is kept");
        let reopened = home.open(&pass()).unwrap().outbox_progress().unwrap();
        assert_eq!((reopened.acked, reopened.unconfirmed), (9, Some(watch)));
    }

    /// The cursor moves only with a page applied, and never back; nothing else of the sync
    /// records moves with it.
    #[test]
    fn the_cursor_moves_only_forward_with_an_applied_page() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        let mut vault = field(&home);
        let roster = cairn_testkit::roster(&DeviceKeys::generate(), &[(vault.keys(), "T03")]);
        vault.update_outbox(|o| o.acked = 3).unwrap();
        vault.apply_pulled(&[], 12, &roster).unwrap();
        assert_eq!(vault.pull_cursor().unwrap(), 12);
        vault.apply_pulled(&[], 7, &roster).unwrap();
        assert_eq!(vault.pull_cursor().unwrap(), 12, "never back");
        let state = vault.sync_state().unwrap();
        assert_eq!(state.outbox.acked, 3);
        assert_eq!(state.last_sync, LastSync::default());
    }
}
