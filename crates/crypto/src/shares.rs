//! The office's key in shares: any K of N rebuild it, fewer reveal nothing about it.
//!
//! The secret split is [`DeviceKeys::to_identity_bytes`]: the office's Ed25519 seed and X25519
//! secret, 64 bytes. Shamir's secret sharing comes from `blahaj`, the maintained fork of
//! `sharks` (the original has had no release since 2021): each byte is the constant term of
//! its own random polynomial of degree K − 1 over GF(256), and share `i` holds every
//! polynomial's value at `x = i`. With K − 1 shares every value of the secret stays equally
//! likely. `vsss-rs` was the other candidate; its prime-field shares over elliptic-curve
//! scalars would need a 64-byte secret cut into scalars, for nothing a byte-wise field lacks.
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

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

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
    #[error("the shares do not rebuild the key of office {0}: one of them is damaged or forged (each checks alone, but not together)")]
    WrongKey(String),
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

    /// The share as text for a file, paper or a QR code: the format tag, a few lines for
    /// people, the header and the words.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::new());
        let (i, n, k, office) = (self.index, self.count, self.threshold, self.office());
        let _ = write!(
            text,
            "{SHARE_TAG}\n\
             # Share {i} of {n} of the key of Cairn office {office}. Any {k} shares of this\n\
             # split rebuild it (`cairn office key recover`); fewer reveal nothing about it.\n\
             # Keep it apart from the other shares. To type it, the first 4 letters of a word do.\n\
             office: {office}\nsplit: {}\nshare: {i} of {n}\nthreshold: {k}\n",
            self.split_id()
        );
        let words = self.words();
        for (line, chunk) in words.chunks(WORDS_PER_LINE).enumerate() {
            let _ = write!(text, "{:2}", line * WORDS_PER_LINE + 1);
            for word in chunk {
                let _ = write!(text, " {word:<8}");
            }
            let end = text.trim_end().len();
            text.truncate(end);
            text.push('\n');
        }
        text
    }

    /// The share's words.
    fn words(&self) -> Vec<&'static str> {
        let packed = self.pack();
        let list = bip39::Language::English.word_list();
        (0..SHARE_WORDS)
            .map(|w| list[usize::from(read_bits(packed.as_ref(), w * BITS_PER_WORD))])
            .collect()
    }

    fn pack(&self) -> Zeroizing<[u8; PACKED]> {
        let mut out = Zeroizing::new([0u8; PACKED]);
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&[VERSION]);
        put(&self.split);
        put(&[self.threshold, self.count, self.index]);
        put(&self.office);
        put(&self.keys_check);
        put(self.value.as_ref());
        let crc = crc32fast::hash(&out[..BODY]).to_le_bytes();
        out[BODY..].copy_from_slice(&crc);
        out
    }

    /// Reads a share from a file's bytes: [`KeyShare::parse`], after checking it is text.
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyShare, ShareError> {
        const PNG: &[u8] = b"\x89PNG";
        match std::str::from_utf8(bytes) {
            Ok(text) => KeyShare::parse(text),
            Err(_) if bytes.starts_with(PNG) => Err(ShareError::NotText(
                " but a PNG image: give the share's text file, or write the text its QR code holds to a file",
            )),
            Err(_) => Err(ShareError::NotText(": a share is the text of a share file")),
        }
    }

    /// Reads a share from its text: lines starting with `#` are comments, `name: value` lines
    /// are the header (checked against the words), every other line holds words (numbers
    /// among them are skipped). The words alone are a share.
    pub fn parse(text: &str) -> Result<KeyShare, ShareError> {
        let mut header: Vec<(usize, &str, &str)> = Vec::new();
        let mut typed: Vec<Zeroizing<String>> = Vec::new();
        let mut first = true;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if std::mem::take(&mut first) && line.to_ascii_lowercase().starts_with("cairn") {
                if line != SHARE_TAG {
                    return Err(ShareError::UnknownFormat(clip(line)));
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                header.push((n + 1, name.trim(), value.trim()));
                continue;
            }
            for token in line.split(|c: char| c.is_whitespace() || c == ',') {
                let token = token.trim_end_matches(['.', ')']);
                if token.is_empty() || token.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                typed.push(Zeroizing::new(token.to_lowercase()));
            }
        }
        if typed.len() != SHARE_WORDS {
            let hint = match typed.len() {
                0 => "it holds no words (not a share, or cut off before its words)",
                n if n < SHARE_WORDS => "words are missing (a cut-off file, or a line left out)",
                _ => "there are words too many",
            };
            let found = match typed.len() {
                1 => "1 word".to_owned(),
                n => format!("{n} words"),
            };
            return Err(ShareError::WordCount { found, hint });
        }
        let mut numbers = Vec::with_capacity(SHARE_WORDS);
        for (i, word) in typed.iter().enumerate() {
            let number = word_number(word).ok_or_else(|| ShareError::UnknownWord {
                position: i + 1,
                word: clip(word),
            })?;
            numbers.push(number);
        }
        let share = unpack(&numbers).map_err(|e| match e {
            ShareError::Checksum(_) => ShareError::Checksum(suggest(&numbers)),
            other => other,
        })?;
        for (line, name, value) in header {
            share.check_header(line, name, value)?;
        }
        Ok(share)
    }

    /// A header line must say what the words say.
    fn check_header(&self, line: usize, name: &str, value: &str) -> Result<(), ShareError> {
        let (field, words) = match name.to_ascii_lowercase().as_str() {
            "office" => ("office", self.office()),
            "split" => ("split", self.split_id()),
            "share" => ("share", format!("{} of {}", self.index, self.count)),
            "threshold" => ("threshold", self.threshold.to_string()),
            _ => {
                return Err(ShareError::BadLine {
                    line,
                    problem: format!(
                        "`{}` is not a line of a share (office, split, share, threshold)",
                        clip(name)
                    ),
                })
            }
        };
        let said = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if !said.eq_ignore_ascii_case(&words) {
            return Err(ShareError::HeaderMismatch {
                field,
                said: clip(&said),
                words,
            });
        }
        Ok(())
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
/// counts once. The keys rebuilt must be the office's the shares name, or they are refused.
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
    let points: Vec<blahaj::Share> = distinct
        .values()
        .map(|(_, share)| {
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
    if keys.id().0[..OFFICE_ID] != first.office || keys_check(&keys.public()) != first.keys_check {
        return Err(ShareError::WrongKey(first.office()));
    }
    Ok(keys)
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

/// A typed word's number in the list: the word, or a start of at least four letters that
/// only one word has (BIP-39 words differ in their first four).
fn word_number(word: &str) -> Option<u16> {
    let language = bip39::Language::English;
    if let Some(n) = language.find_word(word) {
        return Some(n);
    }
    if word.chars().count() < 4 {
        return None;
    }
    let mut matches = language.words_by_prefix_iter(word);
    match (matches.next(), matches.next()) {
        (Some(only), None) => language.find_word(only),
        _ => None,
    }
}

/// The 11 bits at bit `at` of `bytes` (big-endian bit order; bits past the end read 0).
fn read_bits(bytes: &[u8], at: usize) -> u16 {
    (0..BITS_PER_WORD).fold(0u16, |acc, i| {
        let bit = at + i;
        let set = bytes
            .get(bit / 8)
            .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0);
        (acc << 1) | u16::from(set)
    })
}

/// The packed bytes of word numbers, and whether the padding bits after them were all zero.
fn bytes_of(numbers: &[u16]) -> (Zeroizing<[u8; PACKED]>, bool) {
    let mut out = Zeroizing::new([0u8; PACKED]);
    let mut padding_clear = true;
    for (w, number) in numbers.iter().enumerate() {
        for i in 0..BITS_PER_WORD {
            if number & (1 << (BITS_PER_WORD - 1 - i)) == 0 {
                continue;
            }
            let bit = w * BITS_PER_WORD + i;
            match out.get_mut(bit / 8) {
                Some(byte) => *byte |= 0x80 >> (bit % 8),
                None => padding_clear = false,
            }
        }
    }
    (out, padding_clear)
}

/// Whether packed bytes carry their checksum.
fn sound(packed: &[u8; PACKED]) -> bool {
    crc32fast::hash(&packed[..BODY]).to_le_bytes() == packed[BODY..]
}

/// The share the word numbers spell, checked.
fn unpack(numbers: &[u16]) -> Result<KeyShare, ShareError> {
    let (packed, padding_clear) = bytes_of(numbers);
    if !padding_clear || !sound(&packed) {
        return Err(ShareError::Checksum(String::new()));
    }
    let mut at = 0;
    let mut take = |n: usize| {
        let part = &packed[at..at + n];
        at += n;
        part
    };
    let version = take(1)[0];
    if version != VERSION {
        return Err(ShareError::Invalid(format!(
            "its words say format version {version}, and this cairn reads version {VERSION}"
        )));
    }
    let mut split = [0u8; SPLIT_ID];
    split.copy_from_slice(take(SPLIT_ID));
    let [threshold, count, index] = [take(1)[0], take(1)[0], take(1)[0]];
    let mut office = [0u8; OFFICE_ID];
    office.copy_from_slice(take(OFFICE_ID));
    let mut keys_check = [0u8; KEYS_CHECK];
    keys_check.copy_from_slice(take(KEYS_CHECK));
    let mut value = Zeroizing::new([0u8; IDENTITY_BYTES]);
    value.copy_from_slice(take(IDENTITY_BYTES));
    if threshold < MIN_THRESHOLD || threshold > count || count > MAX_SHARES {
        return Err(ShareError::Invalid(format!(
            "it says any {threshold} of {count} shares"
        )));
    }
    if index == 0 || index > count {
        return Err(ShareError::Invalid(format!(
            "it says share {index} of {count}"
        )));
    }
    Ok(KeyShare {
        split,
        threshold,
        count,
        index,
        office,
        keys_check,
        value,
    })
}

/// Which single word, changed, would make the checksum match: said only when exactly one
/// change does (a hint for the person holding the paper, never applied by itself).
fn suggest(numbers: &[u16]) -> String {
    let list = bip39::Language::English.word_list();
    let mut found = None;
    let mut trial = numbers.to_vec();
    for position in 0..numbers.len() {
        for candidate in 0..list.len() as u16 {
            if candidate == numbers[position] {
                continue;
            }
            trial[position] = candidate;
            let (packed, padding_clear) = bytes_of(&trial);
            if padding_clear && sound(&packed) {
                if found.is_some() {
                    return String::new();
                }
                found = Some((position, candidate));
            }
        }
        trial[position] = numbers[position];
    }
    match found {
        Some((position, candidate)) => format!(
            " (word {} may be `{}` and not `{}`: check it on the paper)",
            position + 1,
            list[usize::from(candidate)],
            list[usize::from(numbers[position])]
        ),
        None => String::new(),
    }
}

/// A piece of untrusted text short enough for a message.
fn clip(text: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(text: &str) -> Vec<String> {
        let share = KeyShare::parse(text).unwrap();
        share.words().iter().map(|w| (*w).to_owned()).collect()
    }

    fn named(shares: &[&KeyShare]) -> Vec<(String, KeyShare)> {
        shares
            .iter()
            .map(|s| (format!("share-{}.txt", s.index()), (*s).clone()))
            .collect()
    }

    fn same_keys(a: &DeviceKeys, b: &DeviceKeys) -> bool {
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
    fn the_words_alone_are_a_share_and_four_letters_name_a_word() {
        let keys = DeviceKeys::generate();
        let shares = split(&keys, 2, 3).unwrap();
        let words = words_of(&shares[0].to_text());
        let short: Vec<String> = words
            .iter()
            .map(|w| w.chars().take(4).collect::<String>().to_uppercase())
            .collect();
        let typed = short.join(" ");
        let back = KeyShare::parse(&typed).unwrap();
        assert_eq!(back.index(), 1);
        assert!(same_keys(
            &combine(&named(&[&back, &shares[2]])).unwrap(),
            &keys
        ));
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
    fn every_single_mistyped_word_and_neighbour_swap_is_caught() {
        let keys = DeviceKeys::generate();
        let share = &split(&keys, 3, 5).unwrap()[0];
        let good: Vec<u16> = share
            .words()
            .iter()
            .map(|w| bip39::Language::English.find_word(w).unwrap())
            .collect();
        assert!(unpack(&good).is_ok());
        let mut trial = good.clone();
        // The CRC is affine: whether an error is caught depends only on the error, so trying
        // every change of every word of one share tries every single-word error.
        for position in 0..SHARE_WORDS {
            for candidate in 0..2048u16 {
                if candidate == good[position] {
                    continue;
                }
                trial[position] = candidate;
                assert!(
                    matches!(unpack(&trial), Err(ShareError::Checksum(_))),
                    "word {position} changed to {candidate} passed"
                );
            }
            trial[position] = good[position];
        }
        for position in 0..SHARE_WORDS - 1 {
            if good[position] == good[position + 1] {
                continue;
            }
            trial.swap(position, position + 1);
            assert!(unpack(&trial).is_err(), "swap at {position} passed");
            trial.swap(position, position + 1);
        }
    }

    #[test]
    fn a_mistyped_word_is_named_or_caught() {
        let keys = DeviceKeys::generate();
        let shares = split(&keys, 3, 5).unwrap();
        let text = shares[0].to_text();
        let words = words_of(&text);
        // A word not in the list.
        let mut typo = words.clone();
        typo[9] = "zzzzq".into();
        let err = KeyShare::parse(&typo.join(" ")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "word 10 (`zzzzq`) is not in the word list: it is mistyped"
        );
        // Another word of the list: the checksum catches it and names the likely one.
        let other = if words[20] == "abandon" {
            "ability"
        } else {
            "abandon"
        };
        let mut typo = words.clone();
        typo[20] = other.into();
        let err = KeyShare::parse(&typo.join(" ")).unwrap_err();
        let said = err.to_string();
        assert!(
            said.starts_with("its checksum does not match its words"),
            "{said}"
        );
        assert!(
            said.contains(&format!("word 21 may be `{}` and not `{other}`", words[20])),
            "{said}"
        );
    }

    #[test]
    fn a_truncated_share_is_refused() {
        let keys = DeviceKeys::generate();
        let text = split(&keys, 3, 5).unwrap()[0].to_text();
        let cut = &text[..text.len() - 30];
        let err = KeyShare::parse(cut).unwrap_err();
        assert!(
            err.to_string()
                .contains("and a share has 63 words: words are missing"),
            "{err}"
        );
        let header_only: String = text.lines().take(8).collect::<Vec<_>>().join("\n");
        assert!(KeyShare::parse(&header_only)
            .unwrap_err()
            .to_string()
            .contains("it has 0 words and a share has 63 words"));
        let err = KeyShare::from_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff").unwrap_err();
        assert!(err.to_string().contains("PNG image"), "{err}");
        let err = KeyShare::from_bytes(&[0xff, 0xfe, 0x00, 0x80]).unwrap_err();
        assert!(err.to_string().starts_with("it is not text"), "{err}");
        let err = KeyShare::parse("cairn office key share v9\nabandon").unwrap_err();
        assert!(err.to_string().contains("unknown format"), "{err}");
    }

    #[test]
    fn a_changed_header_is_refused() {
        let keys = DeviceKeys::generate();
        let text = split(&keys, 3, 5).unwrap()[1].to_text();
        let err = KeyShare::parse(&text.replace("share: 2 of 5", "share: 3 of 5")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "its header says share 3 of 5 but its words say 2 of 5: one of them was changed"
        );
        let err = KeyShare::parse(&text.replace("threshold: 3", "threshold: 2")).unwrap_err();
        assert!(matches!(
            err,
            ShareError::HeaderMismatch {
                field: "threshold",
                ..
            }
        ));
        let err = KeyShare::parse(&text.replace("office:", "team:")).unwrap_err();
        assert!(
            err.to_string().contains("`team` is not a line of a share"),
            "{err}"
        );
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
        assert!(matches!(err, ShareError::WrongKey(_)), "{err}");
        // Two different values under one number.
        let mut given = named(&[&shares[0], &shares[1]]);
        given.push(("again.txt".into(), forged));
        let err = combine(&given).unwrap_err();
        assert!(err.to_string().contains("hold different values"), "{err}");
    }

    /// A holder's file is hostile until read: mutated shares never panic, an accepted one
    /// writes out as text that reads back the same, and what a message quotes of the file
    /// carries no control characters (a terminal escape in a word is not replayed).
    #[test]
    fn mutated_shares_are_refused_or_read_never_a_panic() {
        use rand::{Rng as _, SeedableRng as _};
        let keys = DeviceKeys::generate();
        let text = split(&keys, 3, 5).unwrap()[2].to_text();
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let mut accepted = 0;
        for _ in 0..1000 {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..bytes.len());
                match rng.gen_range(0..3) {
                    0 => bytes[at] = rng.gen(),
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, rng.gen()),
                }
            }
            match KeyShare::from_bytes(&bytes) {
                Ok(share) => {
                    accepted += 1;
                    let again = KeyShare::parse(&share.to_text()).unwrap();
                    assert_eq!(again.to_text(), share.to_text());
                }
                Err(e) => assert!(!e.to_string().chars().any(char::is_control), "{e:?}"),
            }
        }
        // Changes to comments, spacing and numbers leave the share as it was.
        assert!(accepted > 0);
        let escape = text.replacen("threshold: 3", "threshold: \x1b[2J3", 1);
        let err = KeyShare::parse(&escape).unwrap_err().to_string();
        assert!(!err.contains('\x1b'), "{err}");
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
