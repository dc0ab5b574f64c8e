//! Drafts of the guided form: a case being recorded, or changes to one, kept as they are
//! typed so that a killed process or a power cut loses at most the answer being typed.
//!
//! A draft is this device's alone: it is never sealed, logged or synced. Each is a JSON
//! record encrypted under the vault key in table `drafts`, bound to its random id; the head
//! covers the table (`cairn check` finds a draft put back or taken away on disk). Saving the
//! case removes its draft in the same transaction as the case is written, so a kill leaves
//! either the draft or the case, never both and never neither.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use cairn_model::{Edit, Kind};

use crate::{Vault, VaultError};

/// The table of drafts: the id (random, in clear like every case's) and the record
/// encrypted under the vault key.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS drafts (
    id     BLOB PRIMARY KEY,
    record BLOB NOT NULL
) STRICT;
";

/// The most a draft record may be: a form's answers are one line each (long text goes
/// through `--set KEY=@FILE`), far below this.
const MAX_DRAFT_BYTES: usize = 1 << 20;

/// What a draft's row is encrypted for: bound to its id.
fn slot(id: &Uuid) -> Vec<u8> {
    let mut aad = b"cairn draft row v1\0".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// A form being filled, as last saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// Its id, random.
    pub id: Uuid,
    /// When it was last saved (RFC 3339, UTC).
    pub saved_at: String,
    /// The reference of the case being edited; `None` for a new case.
    pub case: Option<String>,
    /// A new case's kind, once chosen.
    pub kind: Option<String>,
    /// A new case's place code, once given.
    pub place: Option<String>,
    /// Each answer that differs from the case (every answer given, for a new case), as
    /// `--set` takes it; an empty value clears the field.
    pub answers: BTreeMap<String, String>,
    /// The fields already asked (answered or skipped), in the order they were.
    pub asked: Vec<String>,
}

impl Draft {
    /// A draft with nothing answered yet, for a new case (`case` `None`) or an edit.
    pub fn new(case: Option<String>, now: OffsetDateTime) -> Draft {
        Draft {
            id: Uuid::new_v4(),
            saved_at: crate::timestamps::rfc3339(now),
            case,
            kind: None,
            place: None,
            answers: BTreeMap::new(),
            asked: Vec::new(),
        }
    }

    /// The first 8 hex digits of its id: what lists show and commands take.
    pub fn short_id(&self) -> String {
        self.id.simple().to_string()[..8].to_owned()
    }
}

/// Whether a draft of `id` is here.
fn exists(
    conn: &rusqlite::Connection,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM drafts WHERE id = ?1)",
        [id.as_bytes().as_slice()],
        |r| r.get(0),
    )
    .map_err(|e| VaultError::sqlite(path, e))
}

/// Removes the draft `id` in the transaction open on `tx`: whether it was there.
pub(crate) fn remove(
    tx: &rusqlite::Connection,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    tx.execute(
        "DELETE FROM drafts WHERE id = ?1",
        [id.as_bytes().as_slice()],
    )
    .map(|n| n > 0)
    .map_err(|e| VaultError::sqlite(path, e))
}

impl Vault {
    /// Saves `draft` (replacing what was saved under its id), in a transaction of its own.
    pub fn save_draft(&mut self, draft: &Draft) -> Result<(), VaultError> {
        let path = self.home.database();
        let plain = serde_json::to_vec(draft).map_err(|e| VaultError::Corrupt {
            path: path.clone(),
            detail: format!("a draft cannot be written: {e}"),
        })?;
        let sealed = self.cipher.encrypt(&slot(&draft.id), &plain)?;
        let tx = crate::transactions::begin(&mut self.conn, &path)?;
        tx.execute(
            "INSERT INTO drafts (id, record) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            rusqlite::params![draft.id.as_bytes().as_slice(), sealed],
        )
        .map_err(|e| VaultError::sqlite(&path, e))?;
        crate::head::commit(&tx, &path)
    }

    /// Every draft kept here, the oldest saved first.
    pub fn drafts(&self) -> Result<Vec<Draft>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare("SELECT id, record FROM drafts")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, sealed) = row.map_err(sql)?;
            let damaged = |detail: &str| VaultError::Corrupt {
                path: path.clone(),
                detail: format!("a draft {detail}"),
            };
            let id = Uuid::from_slice(&id).map_err(|_| damaged("has no id"))?;
            let plain = self
                .cipher
                .decrypt(&slot(&id), &sealed)
                .map_err(|_| damaged("does not decrypt"))?;
            if plain.len() > MAX_DRAFT_BYTES {
                return Err(damaged("is too large"));
            }
            let draft: Draft =
                serde_json::from_slice(&plain).map_err(|_| damaged("is unreadable"))?;
            if draft.id != id {
                return Err(damaged("is filed under another id"));
            }
            out.push(draft);
        }
        out.sort_by(|a, b| (&a.saved_at, a.id).cmp(&(&b.saved_at, b.id)));
        Ok(out)
    }

    /// The draft whose id starts with `wanted` (hex digits, dashes ignored; 4 at least).
    pub fn draft(&self, wanted: &str) -> Result<Draft, VaultError> {
        let typed: String = wanted
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let unknown = || VaultError::UnknownDraft(wanted.trim().to_owned());
        if typed.len() < 4 || !typed.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let mut found: Vec<Draft> = self
            .drafts()?
            .into_iter()
            .filter(|d| d.id.simple().to_string().starts_with(&typed))
            .collect();
        match found.len() {
            0 => Err(unknown()),
            1 => Ok(found.remove(0)),
            _ => Err(VaultError::AmbiguousDraft(wanted.trim().to_owned())),
        }
    }

    /// Removes the draft `id`: whether it was here.
    pub fn discard_draft(&mut self, id: &Uuid) -> Result<bool, VaultError> {
        let path = self.home.database();
        let tx = crate::transactions::begin(&mut self.conn, &path)?;
        if !exists(&tx, id, &path)? {
            return Ok(false);
        }
        remove(&tx, id, &path)?;
        crate::head::commit(&tx, &path)?;
        Ok(true)
    }

    /// Records a new case from the draft `draft`, removing the draft in the same transaction
    /// as the case is written (see [`Vault::create_case`]).
    pub fn create_case_from_draft(
        &mut self,
        kind: Kind,
        place: &str,
        edits: &[Edit],
        now: OffsetDateTime,
        draft: &Uuid,
    ) -> Result<crate::Created, VaultError> {
        self.record_case(kind, place, edits, now, Some(draft))
    }

    /// Applies the edits of the draft `draft` to a case, removing the draft in the same
    /// transaction (see [`Vault::edit_case`]); with edits that change nothing, the draft goes
    /// alone.
    pub fn edit_case_from_draft(
        &mut self,
        case: &str,
        edits: &[Edit],
        now: OffsetDateTime,
        draft: &Uuid,
    ) -> Result<Option<u64>, VaultError> {
        let edits = self.as_allowed(edits)?;
        let (seq, ()) = self.in_case(case, now, |c| {
            remove(c.tx, draft, c.path)?;
            crate::failpoint::hit("draft:dropped");
            Ok((edits, ()))
        })?;
        if seq.is_none() {
            self.discard_draft(draft)?;
        }
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use super::*;

    #[test]
    fn a_short_id_is_the_start_of_the_id() {
        let draft = Draft::new(None, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(draft.short_id().len(), 8);
        assert!(draft.id.simple().to_string().starts_with(&draft.short_id()));
        assert_eq!(draft.saved_at, "1970-01-01T00:00:00Z");
    }

    /// The record as kept on disk: a draft saved by an earlier cairn must still read.
    #[test]
    fn the_record_format_is_frozen() {
        let golden = r#"{"id":"0190c0de-0000-4000-8000-0000000000aa","saved_at":"2026-12-07T09:40:00Z","case":null,"kind":"remains","place":"KHR","answers":{"found.lat":"31.5","person.sex":""},"asked":["found.lat","person.sex"]}"#;
        let draft: Draft = serde_json::from_str(golden).unwrap();
        assert_eq!(draft.short_id(), "0190c0de");
        assert_eq!(draft.answers["found.lat"], "31.5");
        assert_eq!(serde_json::to_string(&draft).unwrap(), golden);
        // A record with a field this cairn does not know is refused, not half-read.
        let extra = golden.replace(r#""case":null"#, r#""case":null,"x":1"#);
        assert!(serde_json::from_str::<Draft>(&extra).is_err());
    }

    #[test]
    fn a_row_is_bound_to_its_id() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_ne!(slot(&a), slot(&b));
    }
}
