//! A share as text: the 86 packed bytes as 63 words of the BIP-39 English list, with the lines
//! around them for people (see the parent module for the layout).

use std::fmt::Write as _;

use zeroize::Zeroizing;

use super::*;

impl KeyShare {
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
    pub(super) fn words(&self) -> Vec<&'static str> {
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
    use crate::shares::tests::{named, same_keys, words_of};

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
}
