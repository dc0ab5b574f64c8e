//! A vault's home directory: creating, unlocking and destroying it.

use std::fs;
use std::path::{Path, PathBuf};

use cairn_crypto::{lock_keys, unlock_keys, DeviceKeys, KeyFileCost, LocalCipher, SecretString};
use rand::RngCore;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::{store, NewVault, Settings, VaultError};

use crate::files::{
    restrict_dir, restrict_files, sync_dir, write_in_place, write_synced, DATABASE, KEY_FILE,
};

/// The directory that holds one vault: `keys.age` and `vault.db` (with its WAL).
#[derive(Clone, Debug)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// A home at `dir` (which may not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The passphrase-locked key file.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.dir.join(DATABASE)
    }

    /// Whether anything of a vault is here.
    pub fn exists(&self) -> bool {
        self.key_file().exists() || self.database().exists()
    }

    /// Creates a vault. The key file appears last, by an atomic rename, so an interrupted
    /// `init` never leaves something that looks like a vault.
    pub fn create(
        &self,
        passphrase: &SecretString,
        cost: KeyFileCost,
        new: NewVault,
        now: time::OffsetDateTime,
    ) -> Result<Vault, VaultError> {
        self.create_with(passphrase, cost, new, now, DeviceKeys::generate(), None)
    }

    /// Creates a vault holding `keys` and `keyring` instead of new ones: a second vault of
    /// the same device (for tests: another office device, or an office restored, before
    /// restoring exists).
    #[doc(hidden)]
    pub fn create_replica(
        &self,
        passphrase: &SecretString,
        cost: KeyFileCost,
        new: NewVault,
        now: time::OffsetDateTime,
        keys: DeviceKeys,
        keyring: cairn_crypto::Keyring,
    ) -> Result<Vault, VaultError> {
        self.create_with(passphrase, cost, new, now, keys, Some(keyring))
    }

    /// Creates a vault holding `keys` instead of new ones, and otherwise as [`Home::create`]
    /// makes one (an empty store, the keyring a new vault of its role starts with): the
    /// office's vault rebuilt from its key's shares (`cairn office key recover`).
    pub fn create_with_keys(
        &self,
        passphrase: &SecretString,
        cost: KeyFileCost,
        new: NewVault,
        now: time::OffsetDateTime,
        keys: DeviceKeys,
    ) -> Result<Vault, VaultError> {
        self.create_with(passphrase, cost, new, now, keys, None)
    }

    fn create_with(
        &self,
        passphrase: &SecretString,
        cost: KeyFileCost,
        new: NewVault,
        now: time::OffsetDateTime,
        keys: DeviceKeys,
        keyring: Option<cairn_crypto::Keyring>,
    ) -> Result<Vault, VaultError> {
        if self.key_file().exists() {
            return Err(VaultError::AlreadyExists(self.dir.clone()));
        }
        if self.database().exists() {
            return Err(VaultError::Incomplete(self.dir.clone()));
        }
        fs::create_dir_all(&self.dir).map_err(|e| VaultError::io("create", &self.dir, e))?;
        restrict_dir(&self.dir)?;

        let locked = lock_keys(&keys, passphrase, cost)?;
        let pending = self.dir.join("keys.age.tmp");
        write_synced(&pending, &locked)?;

        let db = self.database();
        let mut conn = store::create(&db, &crate::schema::MADE)?;
        crate::head::attach(&conn, &keys, &self.dir)?;
        let settings = Settings {
            team: new.team,
            name: new.name,
            role: new.role,
            created_at: crate::timestamps::rfc3339(now),
            next_reference: 1,
        };
        let cipher = keys.local_cipher();
        let keyring = keyring.unwrap_or_else(|| crate::keyring::initial(&settings));
        let tx = crate::transactions::begin(&mut conn, &db)?;
        crate::head::seed(&tx, &cipher, &db)?;
        store::write_settings(&tx, &cipher, &settings, &db)?;
        crate::keyring::write(&tx, &cipher, &keyring, &db)?;
        store::write_meta(&tx, &cipher, crate::head::MARKER, &1u64, &db)?;
        crate::head::commit(&tx, &db)?;
        drop(tx);

        fs::rename(&pending, self.key_file()).map_err(|e| VaultError::io("rename", &pending, e))?;
        sync_dir(&self.dir)?;
        Ok(Vault {
            home: self.clone(),
            conn,
            keys,
            cipher,
            settings,
            keyring,
            completed: None,
            as_found: false,
            deciders: Default::default(),
        })
    }

    /// Unlocks the vault with the passphrase.
    pub fn open(&self, passphrase: &SecretString) -> Result<Vault, VaultError> {
        let keys = self.unlock(passphrase)?;
        self.open_unlocked(keys)
    }

    /// Derives the vault's keys from the passphrase (the slow, memory-hard step), without
    /// opening the store: what the unlock agent keeps.
    pub fn unlock(&self, passphrase: &SecretString) -> Result<DeviceKeys, VaultError> {
        let locked = self.read_key_file()?;
        Ok(unlock_keys(&locked, passphrase)?)
    }

    /// SHA-256 of the key file as it is now. The unlock agent hands its keys only to a
    /// request naming this digest, so keys kept for a vault wiped and made again at the same
    /// place are never offered to the new one.
    pub fn key_file_digest(&self) -> Result<[u8; 32], VaultError> {
        let locked = self.read_key_file()?;
        Ok(Sha256::digest(&locked).into())
    }

    /// Opens the vault with keys already derived (by [`Home::unlock`], kept by the agent).
    /// Keys of another vault fail to decrypt its settings and are refused. Every record must
    /// be the version the vault last wrote (see [`Vault::completed`] for the one exception,
    /// a write earlier cairn left half done, which is completed here). The database must be
    /// the state its head file records (see `head.rs`); a vault made before heads gets one.
    pub fn open_unlocked(&self, keys: DeviceKeys) -> Result<Vault, VaultError> {
        let (conn, cipher, db) = self.connect(&keys)?;
        let headed = crate::head::headed(&conn, &db)?;
        if headed {
            // Records first (their findings say most), then the head, and only then is a
            // cut-off write completed: never one the head does not vouch for.
            store::refuse_tampered(&conn, &cipher, &db)?;
            crate::head::verify(&conn, &keys, &self.dir, &db)?;
        }
        let completed = store::open_records(&conn, &cipher, &db)?;
        let settings = store::read_settings(&conn, &cipher, &db)?;
        let keyring = crate::keyring::read(&conn, &cipher, &db)?;
        let vault = Vault {
            home: self.clone(),
            conn,
            keys,
            cipher,
            settings,
            keyring,
            completed,
            as_found: false,
            deciders: Default::default(),
        };
        crate::blob_layout::upgrade(&vault)?;
        crate::sync_state::upgrade(&vault)?;
        if !headed {
            crate::head_carry::carry_over(&vault.conn, &vault.keys, &self.dir, &db)?;
        }
        Ok(vault)
    }

    /// Opens the vault only to read out what it holds, even when its records are not the
    /// versions it last wrote (tampering, damage): each is taken as found, and nothing can
    /// be written through it (the connection is query-only). Returns with it why it does not
    /// check, if it does not.
    pub fn open_as_found(
        &self,
        keys: DeviceKeys,
    ) -> Result<(Vault, Option<VaultError>), VaultError> {
        let (conn, cipher, db) = self.connect(&keys)?;
        let sound = || {
            if crate::head::headed(&conn, &db)? {
                store::refuse_tampered(&conn, &cipher, &db)?;
                crate::head::verify(&conn, &keys, &self.dir, &db)?;
            }
            // The half-done write earlier cairn could leave is completed, as at any open.
            store::open_records(&conn, &cipher, &db)
        };
        let (completed, problem) = match sound() {
            Ok(completed) => (completed, None),
            Err(e @ (VaultError::Tampered { .. } | VaultError::RolledBack { .. })) => {
                (None, Some(e))
            }
            Err(e) => return Err(e),
        };
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(|e| VaultError::sqlite(&db, e))?;
        let missing = |what: &str| VaultError::Corrupt {
            path: db.clone(),
            detail: format!("no {what}"),
        };
        let settings = store::read_meta_as_found(&conn, &cipher, "settings", &db)?
            .ok_or_else(|| missing("settings"))?;
        let keyring = store::read_meta_as_found(&conn, &cipher, crate::keyring::SLOT, &db)?
            .ok_or_else(|| missing("keyring"))?;
        let vault = Vault {
            home: self.clone(),
            conn,
            keys,
            cipher,
            settings,
            keyring,
            completed,
            as_found: true,
            deciders: Default::default(),
        };
        Ok((vault, problem))
    }

    /// The database opened for these keys, its modes closed up.
    fn connect(&self, keys: &DeviceKeys) -> Result<(Connection, LocalCipher, PathBuf), VaultError> {
        self.check_complete()?;
        let db = self.database();
        // A vault copied or unpacked with looser modes is closed up again.
        restrict_dir(&self.dir)?;
        restrict_files(&self.dir)?;
        let conn = store::open(&db, &crate::schema::ADDED)?;
        let cipher = keys.local_cipher();
        // Format 2 is carried over to 3 (at rest) before the head sees it; 3 gets its head.
        crate::at_rest::upgrade(&conn, &cipher, &db)?;
        crate::head::attach(&conn, keys, &self.dir)?;
        Ok((conn, cipher, db))
    }

    fn check_complete(&self) -> Result<(), VaultError> {
        match (self.key_file().exists(), self.database().exists()) {
            (true, true) => Ok(()),
            (false, false) => Err(VaultError::NotFound(self.dir.clone())),
            _ => Err(VaultError::Incomplete(self.dir.clone())),
        }
    }

    fn read_key_file(&self) -> Result<Vec<u8>, VaultError> {
        self.check_complete()?;
        let path = self.key_file();
        fs::read(&path).map_err(|e| VaultError::io("read", &path, e))
    }

    /// Destroys the vault: the key file first (overwritten, synced, removed), so that whatever
    /// remains on disk if this is interrupted is ciphertext nobody can open; then the data.
    /// Needs no passphrase: someone about to lose a device must be able to do it fast.
    pub fn wipe(&self) -> Result<(), VaultError> {
        let key_path = self.key_file();
        for path in [key_path.clone(), self.dir.join("keys.age.tmp")] {
            if let Ok(meta) = fs::metadata(&path) {
                let mut noise = vec![0u8; meta.len() as usize];
                rand::rngs::OsRng.fill_bytes(&mut noise);
                write_in_place(&path, &noise)?;
                fs::remove_file(&path).map_err(|e| VaultError::io("remove", &path, e))?;
            }
        }
        sync_dir(&self.dir)?;
        for name in [
            DATABASE,
            "vault.db-wal",
            "vault.db-shm",
            "vault.db-journal",
            crate::head::FILE,
            "vault.head.tmp",
        ] {
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(VaultError::io("remove", &path, e)),
            }
        }
        sync_dir(&self.dir)?;
        // Leave the directory if the person keeps other files in it.
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}

/// An unlocked vault.
pub struct Vault {
    pub(crate) home: Home,
    pub(crate) conn: Connection,
    pub(crate) keys: DeviceKeys,
    pub(crate) cipher: LocalCipher,
    pub(crate) settings: Settings,
    pub(crate) keyring: cairn_crypto::Keyring,
    /// The record whose cut-off write opening completed, if any.
    completed: Option<String>,
    /// Opened by [`Home::open_as_found`]: records are read as found, nothing is written.
    pub(crate) as_found: bool,
    /// The devices deciding for the office, with the roster head they were read from
    /// ([`Vault::office_devices`]): building the roster checks every statement's signature,
    /// and an export or a page of a sync asks once per case.
    pub(crate) deciders: std::sync::Mutex<Option<(crate::cases::RosterHead, Vec<[u8; 32]>)>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.home.dir.display())
    }
}

impl Vault {
    /// The home this vault lives in.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// This device's keys.
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `sql` on the database as the vault's owner can, through the head (so the vault
    /// still opens and checks): for tests that play a hostile device, which holds its own
    /// keys. Product code never writes around the vault's own steps.
    #[doc(hidden)]
    pub fn execute_as_owner(
        &mut self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<usize, VaultError> {
        let path = self.home.database();
        store::atomic(&self.conn, &path, || {
            self.conn
                .execute(sql, params)
                .map_err(|e| VaultError::sqlite(&path, e))
        })
    }

    /// What opening repaired, as a sentence to show: a write that earlier cairn left half
    /// done when it was killed (its record written, the versions not yet), now completed.
    pub fn completed(&self) -> Option<String> {
        self.completed.as_ref().map(|record| {
            format!("the vault's last write of its {record} record had been cut off before it was complete (by a crash of an earlier cairn); it was completed now and nothing was lost")
        })
    }
}
