//! The office's key in shares: any K of N rebuild it, fewer reveal nothing about it.
//!
//! The secret split is [`DeviceKeys::to_identity_bytes`]: the office's Ed25519 seed and X25519
//! secret, 64 bytes. Shamir's secret sharing comes from `blahaj`, the maintained fork of
//! `sharks` (no longer maintained): each byte is the constant term of its own random polynomial
//! of degree K − 1 over GF(256), and share `i` holds every polynomial's value at `x = i`. With
//! K − 1 shares every value of the secret stays equally likely. `vsss-rs` was the other
//! candidate: it has a GF(256) too, but is built for verifiable sharing over elliptic-curve
//! groups (Feldman, Pedersen) and pulls in big-integer and curve crates for it; here the keys
//! check below tells a wrong result, which is what matters. blahaj's field arithmetic uses log
//! and exp tables (not constant-time): a split or a recovery runs once, on the office's
//! machine, not where anyone can time it.
//!
//! A share is written as words a person can copy to paper and type back. Packed, it is 86 bytes:
//!
//! ```text
//! version 1 | split id 4 | threshold K 1 | shares N 1 | index 1 | office id 6 |
//!   keys check 4 | Shamir value 64 | CRC-32 of everything before it 4 (little-endian)
//! ```
//!
//! read as 11-bit numbers (the last padded with five zero bits), each a word of the BIP-39
//! English list: 63 words. The first four letters of a word name it. The CRC-32 catches every
//! error that stays within 32 consecutive bits, so every single mistyped word and every swap
//! of two neighbouring words (the unit tests try them all), and any other error but one in
//! about four billion. The keys check (four bytes of SHA-256 of the office's public keys)
//! catches what a checksum cannot: shares that each look sound but do not rebuild the office's
//! key (damaged consistently, or forged by a holder); it is computed from public keys only,
//! so it tells nothing of the secret.
//!
//! The text around the words (format tag, office, split, share, threshold) is for people; where
//! present it must agree with what the words say.

mod text;

use std::collections::BTreeMap;
use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::keys::IDENTITY_BYTES;
use crate::{CryptoError, DeviceKeys, PublicKeys};

/// The first line of a share's text: its format and version.
pub const SHARE_TAG: &str = "cairn office key share v1";
/// The fewest shares a split may need: one share alone would be the key.
pub const MIN_THRESHOLD: u8 = 2;
/// The most shares a split may make: more holders than an office can keep track of.
pub const MAX_SHARES: u8 = 16;
/// How many words a share is.
pub const SHARE_WORDS: usize = (PACKED * 8).div_ceil(BITS_PER_WORD);

const VERSION: u8 = 1;
const SPLIT_ID: usize = 4;
const OFFICE_ID: usize = 6;
const KEYS_CHECK: usize = 4;
const CHECKSUM: usize = 4;
/// Everything the checksum covers.
const BODY: usize = 1 + SPLIT_ID + 3 + OFFICE_ID + KEYS_CHECK + IDENTITY_BYTES;
const PACKED: usize = BODY + CHECKSUM;
const BITS_PER_WORD: usize = 11;
/// Words on a line of the text.
const WORDS_PER_LINE: usize = 7;
const KEYS_CHECK_LABEL: &[u8] = b"cairn office key share keys v1\0";

/// One share of the office's key. Its value is zeroized when dropped and never printed.
#[derive(Clone)]
pub struct KeyShare {
    split: [u8; SPLIT_ID],
    threshold: u8,
    count: u8,
    index: u8,
    office: [u8; OFFICE_ID],
    keys_check: [u8; KEYS_CHECK],
    value: Zeroizing<[u8; IDENTITY_BYTES]>,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyShare(office {}, split {}, {} of {}, threshold {})",
            self.office(),
            self.split_id(),
            self.index,
            self.count,
            self.threshold
        )
    }
}

/// Everything that can be wrong with a split, a share or a set of shares.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The threshold and count asked for are out of bounds.
    #[error("a split makes 2 to {MAX_SHARES} shares and needs at least {MIN_THRESHOLD} and at most all of them; {threshold} of {count} is not possible")]
    Bounds {
        /// The threshold asked for.
        threshold: u8,
        /// The number of shares asked for.
        count: u8,
    },
    /// The bytes are not text.
    #[error("it is not text{0}")]
    NotText(&'static str),
    /// The text names another format.
    #[error("it is in an unknown format (`{0}`); this cairn reads `{SHARE_TAG}`")]
    UnknownFormat(String),
    /// A line of the header does not parse.
    #[error("line {line}: {problem}")]
    BadLine {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A word is not in the word list.
    #[error("word {position} (`{word}`) is not in the word list: it is mistyped")]
    UnknownWord {
        /// Its position, from 1.
        position: usize,
        /// As typed.
        word: String,
    },
    /// Too few or too many words.
    #[error("it has {found} and a share has {SHARE_WORDS} words: {hint}")]
    WordCount {
        /// How many words it has ("1 word", "58 words").
        found: String,
        /// What that suggests.
        hint: &'static str,
    },
    /// The checksum does not match the words.
    #[error(
        "its checksum does not match its words: a word is mistyped, or words are out of order{0}"
    )]
    Checksum(String),
    /// The header says something else than the words.
    #[error("its header says {field} {said} but its words say {words}: one of them was changed")]
    HeaderMismatch {
        /// Which header line.
        field: &'static str,
        /// What the header says.
        said: String,
        /// What the words say.
        words: String,
    },
    /// The words hold something no split makes.
    #[error("it is not a share that cairn makes: {0}")]
    Invalid(String),
    /// No share was given.
    #[error("no share given")]
    NoShares,
    /// Fewer distinct shares than the split needs.
    #[error("{given}; this split needs {needed}")]
    NotEnough {
        /// How many were given, in words ("2 shares given").
        given: String,
        /// The split's threshold.
        needed: u8,
    },
    /// Shares of two splits (of one office or two) were given together.
    #[error("{0} and {1} are shares of two different splits: give shares of one split only")]
    MixedSplits(
        /// The first share: its name, split and office.
        String,
        /// The other.
        String,
    ),
    /// Two shares of one split disagree about something only one can be right about.
    #[error("{a} and {b} are both of split {split} but disagree ({what}): one of them is damaged or forged")]
    Conflicting {
        /// The first share's name.
        a: String,
        /// The other's.
        b: String,
        /// The split.
        split: String,
        /// What they disagree about.
        what: String,
    },
    /// The shares combine, but not into the office's key.
    #[error("the shares do not rebuild the key of office {0}: one of them is damaged or forged (each checks alone, but not together){1}")]
    WrongKey(
        /// The office the shares name.
        String,
        /// Which share does not fit, when that can be told.
        String,
    ),
    /// The keys could not be handled.
    #[error(transparent)]
    Keys(#[from] CryptoError),
}

impl KeyShare {
    /// The split's id, 8 hex digits: shares of one split carry the same.
    pub fn split_id(&self) -> String {
        hex::encode(self.split)
    }

    /// The office's short id (the first 12 hex digits of its id, as `DeviceId::short`).
    pub fn office(&self) -> String {
        hex::encode(self.office)
    }

    /// How many shares rebuild the key.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// How many shares the split made.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// This share's number, 1 to [`KeyShare::count`].
    pub fn index(&self) -> u8 {
        self.index
    }
}

/// Splits the office's key into `count` shares, any `threshold` of which rebuild it.
pub fn split(keys: &DeviceKeys, threshold: u8, count: u8) -> Result<Vec<KeyShare>, ShareError> {
    if threshold < MIN_THRESHOLD || threshold > count || count > MAX_SHARES {
        return Err(ShareError::Bounds { threshold, count });
    }
    let secret = keys.to_identity_bytes()?;
    let mut split = [0u8; SPLIT_ID];
    OsRng.fill_bytes(&mut split);
    let mut office = [0u8; OFFICE_ID];
    office.copy_from_slice(&keys.id().0[..OFFICE_ID]);
    let keys_check = keys_check(&keys.public());
    // Shares at x = 1, 2, ... N; blahaj draws the coefficients from the thread's CSPRNG.
    blahaj::Sharks(threshold)
        .dealer(secret.as_ref())
        .take(usize::from(count))
        .map(|share| {
            let bytes = Zeroizing::new(Vec::from(&share));
            let (index, y) = bytes
                .split_first()
                .filter(|(_, y)| y.len() == IDENTITY_BYTES)
                .ok_or_else(|| {
                    ShareError::Invalid("the dealer made a share of another length".into())
                })?;
            let mut value = Zeroizing::new([0u8; IDENTITY_BYTES]);
            value.copy_from_slice(y);
            Ok(KeyShare {
                split,
                threshold,
                count,
                index: *index,
                office,
                keys_check,
                value,
            })
        })
        .collect()
}

/// Rebuilds the office's keys from shares, each with the name it is known by (its file): at
/// least the split's threshold of distinct shares of one split. The same share given twice
/// counts once. The keys rebuilt must be the office's the shares name, or they are refused
/// (with more shares than needed, naming the one whose absence makes them the office's).
/// The vault key of the keys returned is new (see [`DeviceKeys::from_identity_bytes`]).
pub fn combine(shares: &[(String, KeyShare)]) -> Result<DeviceKeys, ShareError> {
    let (first_name, first) = shares.first().ok_or(ShareError::NoShares)?;
    let mut distinct: BTreeMap<u8, (&str, &KeyShare)> = BTreeMap::new();
    for (name, share) in shares {
        if share.split != first.split || share.office != first.office {
            let which = |name: &str, share: &KeyShare| {
                format!(
                    "{name} (split {} of office {})",
                    share.split_id(),
                    share.office()
                )
            };
            return Err(ShareError::MixedSplits(
                which(first_name, first),
                which(name, share),
            ));
        }
        let conflict = |other: &str, what: String| ShareError::Conflicting {
            a: other.to_owned(),
            b: name.clone(),
            split: share.split_id(),
            what,
        };
        if (share.threshold, share.count, share.keys_check)
            != (first.threshold, first.count, first.keys_check)
        {
            return Err(conflict(
                first_name,
                format!(
                    "any {} of {} against any {} of {}, or another keys check",
                    first.threshold, first.count, share.threshold, share.count
                ),
            ));
        }
        match distinct.get(&share.index) {
            Some((other, kept)) if kept.value != share.value => {
                return Err(conflict(
                    other,
                    format!("both are share {} but hold different values", share.index),
                ))
            }
            Some(_) => {}
            None => {
                distinct.insert(share.index, (name, share));
            }
        }
    }
    if distinct.len() < usize::from(first.threshold) {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let given = if distinct.len() == shares.len() {
            format!("{} share{} given", shares.len(), plural(shares.len()))
        } else {
            format!(
                "{} different share{} given ({} in all, the same share more than once)",
                distinct.len(),
                plural(distinct.len()),
                shares.len()
            )
        };
        return Err(ShareError::NotEnough {
            given,
            needed: first.threshold,
        });
    }
    let chosen: Vec<&KeyShare> = distinct.values().map(|(_, share)| *share).collect();
    if let Some(keys) = rebuild(first, &chosen)? {
        return Ok(keys);
    }
    // With more shares than needed, one that does not fit the others can be found: leave each
    // out in turn. Named, never dropped silently: the person decides to go on without it.
    let mut misfits = Vec::new();
    if chosen.len() > usize::from(first.threshold) {
        for (left_out, (name, _)) in distinct.values().enumerate() {
            let others: Vec<&KeyShare> = (chosen.iter().enumerate())
                .filter(|(i, _)| *i != left_out)
                .map(|(_, share)| *share)
                .collect();
            if rebuild(first, &others)?.is_some() {
                misfits.push(*name);
            }
        }
    }
    let detail = match misfits.as_slice() {
        [name] => {
            format!(": {name} does not fit the others; it is damaged or forged, leave it out")
        }
        _ => String::new(),
    };
    Err(ShareError::WrongKey(first.office(), detail))
}

/// The keys `shares` (distinct, of one split, at least its threshold) rebuild, if they are the
/// office's that `first` names.
fn rebuild(first: &KeyShare, shares: &[&KeyShare]) -> Result<Option<DeviceKeys>, ShareError> {
    let points: Vec<blahaj::Share> = shares
        .iter()
        .map(|share| {
            let mut bytes = Zeroizing::new(Vec::with_capacity(1 + IDENTITY_BYTES));
            bytes.push(share.index);
            bytes.extend_from_slice(share.value.as_ref());
            blahaj::Share::try_from(bytes.as_slice()).map_err(|e| ShareError::Invalid(e.to_owned()))
        })
        .collect::<Result<_, _>>()?;
    let secret = Zeroizing::new(
        blahaj::Sharks(first.threshold)
            .recover(&points)
            .map_err(|e| ShareError::Invalid(e.to_owned()))?,
    );
    let bytes: &[u8; IDENTITY_BYTES] = secret
        .as_slice()
        .try_into()
        .map_err(|_| ShareError::Invalid("the shares rebuild a secret of another length".into()))?;
    let keys = DeviceKeys::from_identity_bytes(bytes)?;
    let theirs =
        keys.id().0[..OFFICE_ID] == first.office && keys_check(&keys.public()) == first.keys_check;
    Ok(theirs.then_some(keys))
}

/// Four bytes of SHA-256 of the office's public keys.
fn keys_check(public: &PublicKeys) -> [u8; KEYS_CHECK] {
    let mut hash = Sha256::new();
    hash.update(KEYS_CHECK_LABEL);
    hash.update(public.signing.as_bytes());
    hash.update(public.recipient.to_string().as_bytes());
    let digest = hash.finalize();
    let mut out = [0u8; KEYS_CHECK];
    out.copy_from_slice(&digest[..KEYS_CHECK]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn words_of(text: &str) -> Vec<String> {
        let share = KeyShare::parse(text).unwrap();
        share.words().iter().map(|w| (*w).to_owned()).collect()
    }

    pub(super) fn named(shares: &[&KeyShare]) -> Vec<(String, KeyShare)> {
        shares
            .iter()
            .map(|s| (format!("share-{}.txt", s.index()), (*s).clone()))
            .collect()
    }

    pub(super) fn same_keys(a: &DeviceKeys, b: &DeviceKeys) -> bool {
        a.id() == b.id()
            && a.public().recipient.to_string() == b.public().recipient.to_string()
            && a.to_identity_bytes().unwrap() == b.to_identity_bytes().unwrap()
    }

    #[test]
    fn any_k_of_n_rebuild_the_keys() {
        let keys = DeviceKeys::generate();
        let shares = split(&keys, 3, 5).unwrap();
        assert_eq!(shares.len(), 5);
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    // Through their text, as they travel.
                    let picked: Vec<KeyShare> = [a, b, c]
                        .iter()
                        .map(|&i| KeyShare::parse(&shares[i].to_text()).unwrap())
                        .collect();
                    let back = combine(&named(&picked.iter().collect::<Vec<_>>())).unwrap();
                    assert!(same_keys(&back, &keys), "shares {a} {b} {c}");
                }
            }
        }
        // All five at once too, and 2 of 2, and 16 of 16.
        assert!(same_keys(
            &combine(&named(&shares.iter().collect::<Vec<_>>())).unwrap(),
            &keys
        ));
        let two = split(&keys, 2, 2).unwrap();
        assert!(same_keys(
            &combine(&named(&[&two[0], &two[1]])).unwrap(),
            &keys
        ));
        let all = split(&keys, 16, 16).unwrap();
        assert!(same_keys(
            &combine(&named(&all.iter().collect::<Vec<_>>())).unwrap(),
            &keys
        ));
    }

    #[test]
    fn a_share_names_what_it_belongs_to() {
        let keys = DeviceKeys::generate();
        let shares = split(&keys, 3, 5).unwrap();
        let text = shares[1].to_text();
        assert!(text.starts_with("cairn office key share v1\n"), "{}", *text);
        assert!(text.contains(&format!("office: {}\n", keys.id().short())));
        assert!(text.contains(&format!("split: {}\n", shares[1].split_id())));
        assert!(text.contains("share: 2 of 5\nthreshold: 3\n"));
        assert_eq!(words_of(&text).len(), SHARE_WORDS);
        assert_eq!(SHARE_WORDS, 63);
        let back = KeyShare::parse(&text).unwrap();
        assert_eq!((back.index(), back.count(), back.threshold()), (2, 5, 3));
        assert_eq!(back.office(), keys.id().short());
        // Every share of a split has the split's id; another split has another.
        assert!(shares.iter().all(|s| s.split_id() == shares[0].split_id()));
        assert_ne!(
            split(&keys, 3, 5).unwrap()[0].split_id(),
            shares[0].split_id()
        );
        // Its Debug shows no value.
        assert!(!format!("{back:?}").contains(&hex::encode(back.value.as_ref())));
    }

    #[test]
    fn fewer_than_k_are_refused() {
        let keys = DeviceKeys::generate();
        let shares = split(&keys, 3, 5).unwrap();
        let err = combine(&named(&[&shares[0], &shares[3]])).unwrap_err();
        assert_eq!(err.to_string(), "2 shares given; this split needs 3");
        // The same share twice counts once.
        let err = combine(&named(&[&shares[0], &shares[3], &shares[0]])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 different shares given (3 in all, the same share more than once); this split needs 3"
        );
        assert!(matches!(combine(&[]), Err(ShareError::NoShares)));
        // With the duplicate and a third share, it works.
        let back = combine(&named(&[&shares[0], &shares[3], &shares[0], &shares[4]])).unwrap();
        assert!(same_keys(&back, &keys));
    }

    #[test]
    fn shares_of_two_splits_are_refused() {
        let keys = DeviceKeys::generate();
        let one = split(&keys, 2, 3).unwrap();
        let two = split(&keys, 2, 3).unwrap();
        let mut given = named(&[&one[0]]);
        given.push(("other.txt".into(), two[1].clone()));
        let err = combine(&given).unwrap_err();
        assert!(matches!(err, ShareError::MixedSplits(..)), "{err}");
        let said = err.to_string();
        assert!(
            said.contains("share-1.txt") && said.contains("other.txt"),
            "{said}"
        );
        assert!(said.contains(&one[0].split_id()) && said.contains(&two[1].split_id()));
        // Another office's shares too.
        let stranger = split(&DeviceKeys::generate(), 2, 3).unwrap();
        assert!(combine(&named(&[&one[0], &stranger[1]])).is_err());
    }

    #[test]
    fn shares_that_check_alone_but_not_together_are_refused() {
        let keys = DeviceKeys::generate();
        let shares = split(&keys, 2, 3).unwrap();
        // A holder who changes the value of their share (and its checksum with it).
        let mut forged = shares[1].clone();
        forged.value[40] ^= 1;
        let forged = KeyShare::parse(&forged.to_text()).unwrap();
        let err = combine(&named(&[&shares[0], &forged])).unwrap_err();
        assert!(matches!(err, ShareError::WrongKey(..)), "{err}");
        // With one share more than needed, the one that does not fit is named.
        let three = split(&keys, 2, 4).unwrap();
        let mut bad = three[2].clone();
        bad.value[3] ^= 0x80;
        let err = combine(&named(&[&three[0], &bad, &three[3]])).unwrap_err();
        assert!(
            err.to_string().ends_with(
                ": share-3.txt does not fit the others; it is damaged or forged, leave it out"
            ),
            "{err}"
        );
        // Two different values under one number.
        let mut given = named(&[&shares[0], &shares[1]]);
        given.push(("again.txt".into(), forged));
        let err = combine(&given).unwrap_err();
        assert!(err.to_string().contains("hold different values"), "{err}");
    }

    #[test]
    fn bounds() {
        let keys = DeviceKeys::generate();
        for (k, n) in [(1, 3), (0, 0), (4, 3), (2, 17), (17, 17)] {
            assert!(
                matches!(split(&keys, k, n), Err(ShareError::Bounds { .. })),
                "{k} of {n}"
            );
        }
    }
}
