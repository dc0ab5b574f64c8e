//! The first step of applying a page: parse, verify, decrypt and screen every change, on all
//! cores, before the transaction.

use cairn_crypto::{CryptoError, SealedChange, SealedKind};

use super::report::Refused;

/// A change to apply.
pub(super) struct Received<'a> {
    pub(super) sealed: SealedChange,
    /// As received (and stored): borrowed from the page, never copied.
    pub(super) bytes: &'a [u8],
    /// The Automerge change, screened when it was opened.
    pub(super) change: Box<cairn_model::ScreenedChange>,
    /// Its author's team, as the roster says (`None` for the office).
    pub(super) team: Option<String>,
}

/// What examining one received change found.
pub(super) enum Opened {
    Readable(SealedChange, Content),
    Unreadable(SealedChange),
    /// Refused; with the change when its author's signature held.
    Refused(Refused, Option<SealedChange>),
}

/// What a readable change carries, checked.
pub(super) enum Content {
    /// An Automerge change to a case, screened.
    Change(Box<cairn_model::ScreenedChange>),
    /// An office record: an edition signed by the office.
    Record(Box<crate::SignedEdition>),
}

/// Parses, verifies, decrypts and checks the inner author of every change, on all cores.
pub(super) fn open_all(
    page: &[Vec<u8>],
    keys: &cairn_crypto::Keyring,
    office: Option<&[u8; 32]>,
) -> Vec<Opened> {
    crate::cores::on_all_cores(
        page,
        |bytes| open_one(bytes, keys, office),
        || {
            Opened::Refused(
                Refused {
                    author: "?".into(),
                    seq: 0,
                    reason: "internal error while opening".into(),
                },
                None,
            )
        },
    )
}

fn open_one(bytes: &[u8], keys: &cairn_crypto::Keyring, office: Option<&[u8; 32]>) -> Opened {
    let mut sealed = match SealedChange::from_bytes(bytes) {
        Ok(s) => s,
        Err(e) => {
            return Opened::Refused(
                Refused {
                    author: "?".into(),
                    seq: 0,
                    reason: e.to_string(),
                },
                None,
            )
        }
    };
    let refused = |reason: String| Refused {
        author: sealed.author.short(),
        seq: sealed.seq,
        reason,
    };
    let opened = sealed.open(keys);
    // The received bytes are kept whole beside it: a second copy of the ciphertext would only
    // add to what a batch holds in memory.
    drop(std::mem::take(&mut sealed.ciphertext));
    let plain = match opened {
        Ok(p) => p,
        Err(CryptoError::NotARecipient { .. }) => return Opened::Unreadable(sealed),
        Err(e) => return Opened::Refused(refused(e.to_string()), None),
    };
    // The signature held: from here on the author answers for the content.
    if sealed.kind == SealedKind::OfficeRecord {
        return match crate::editions::received_edition(&sealed, &plain, office) {
            Ok(edition) => Opened::Readable(sealed, Content::Record(Box::new(edition))),
            Err(reason) => Opened::Refused(refused(reason), Some(sealed)),
        };
    }
    let reason = match cairn_model::ScreenedChange::new(&plain) {
        Ok(change) if change.screened().actor == sealed.author.0 => {
            return Opened::Readable(sealed, Content::Change(Box::new(change)))
        }
        Ok(_) => "its content claims another author than its signature".to_string(),
        Err(e) => e.to_string(),
    };
    Opened::Refused(refused(reason), Some(sealed))
}
