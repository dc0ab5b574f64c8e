//! Printing: a closed pipe (`cairn case list | head`) is not an error, and nothing a case
//! holds reaches the terminal as a control sequence.
//!
//! Case fields come from other devices and from imported files: an escape character in one
//! (`ESC [2J`, a window title, a hyperlink) would be run by the office's terminal, and a line
//! break would forge a line of output. Every text output goes through [`print`] or [`eprint`],
//! which escape every control character but the line breaks the output itself is made of;
//! every value shown on a line of its own goes through [`escape`] first, which escapes line
//! breaks too. JSON output stays exact: serde escapes the C0 controls, and [`json`] writes the
//! others (DEL, C1, bidirectional overrides) as `\u` escapes, which read back the same.

use std::borrow::Cow;
use std::io::Write;

use crate::error::CliError;

/// Whether `c` must not reach a terminal as it is: a control character (C0, DEL, C1; ESC
/// starts every ANSI sequence, and U+009B is one on its own) or a bidirectional embedding,
/// override or isolate, which reorders the text after it.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Escapes each character of `text` for which `unsafe_char` holds and `keep` does not, as
/// Rust writes it: `\n`, `\t`, `\u{1b}`.
fn escape_where(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let bad = |c: char| unsafe_char(c) && !keep(c);
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !bad(c) => out.push(c),
            '\n' | '\r' | '\t' => out.extend(c.escape_default()),
            c => out.extend(c.escape_unicode()),
        }
    }
    Cow::Owned(out)
}

/// A value from a case (or a device's name) as it is shown on one line: every control
/// character escaped, line breaks too.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_where(text, |_| false)
}

/// Text for the terminal: its own line breaks kept, every other control character escaped.
pub fn terminal(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c == '\n')
}

/// Writes text to standard output, treating a closed pipe as success.
pub fn print(text: &str) -> Result<(), CliError> {
    let text = terminal(text);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::failure(format!("cannot write the output: {e}"))),
    }
}

/// Writes one line to standard error (a warning, an error), escaped as [`print`] does.
pub fn eprint(line: &str) {
    eprintln!("{}", terminal(line));
}

/// Prints a value as pretty JSON followed by a newline.
pub fn json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let mut bytes = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut bytes, SafeJson(Default::default()));
    value
        .serialize(&mut serializer)
        .map_err(|e| CliError::failure(format!("cannot encode JSON: {e}")))?;
    bytes.push(b'\n');
    let text = String::from_utf8(bytes)
        .map_err(|e| CliError::failure(format!("cannot encode JSON: {e}")))?;
    print(&text)
}

/// serde_json's pretty formatter, writing inside strings every character [`unsafe_char`]
/// names as a `\u` escape (serde_json does so for C0 only).
struct SafeJson(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(unsafe_char) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Milliseconds since the epoch as RFC 3339 in UTC.
pub fn time_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Devices as people know them: the roster's names beside short ids (see
/// [`cairn_protocol::Roster::label`]); short ids alone before the vault joined.
pub struct Names(Option<cairn_protocol::Roster>);

impl Names {
    /// The names of the roster `vault` holds.
    pub fn of(vault: &cairn_vault::Vault) -> Result<Names, CliError> {
        Ok(Names(cairn_sync::held_roster(vault)?))
    }

    /// `tablet 3 (3f9a0c12ab34)`, or the short id alone; `-` for no device. Escaped for a
    /// terminal ([`escape`]): a name is text someone typed.
    pub fn label(&self, id: &str) -> String {
        let label = match &self.0 {
            _ if id.is_empty() => "-".to_owned(),
            Some(roster) => roster.label(id),
            None => id.chars().take(12).collect(),
        };
        escape(&label).into_owned()
    }

    /// Who wrote a record, as people read it: the device that signed it (its
    /// [`Names::label`]), and, when the name its writer typed is neither that device's id nor
    /// its name, `on behalf of` that name: `tablet 3 (3f9a0c12ab34) on behalf of office`.
    pub fn signer(&self, signer: &str, typed: Option<&str>) -> String {
        let label = self.label(signer);
        let typed = typed.map(str::trim).unwrap_or_default();
        let own = typed.is_empty()
            || (typed.len() >= 8 && signer.starts_with(typed))
            || self.name(signer) == Some(typed);
        if own {
            label
        } else {
            format!("{label} on behalf of {}", escape(typed))
        }
    }

    /// The device's name, if it has one.
    pub fn name(&self, id: &str) -> Option<&str> {
        self.0.as_ref().and_then(|roster| roster.name_of(id))
    }
}

/// A file name as a device recorded it, made safe to write anywhere (an export's folder) or to
/// send in a header: letters and digits (ASCII ones only when `ascii`), `.`, `-` and `_` kept,
/// anything else `_`, no leading dot, at most 80 characters; `file` when nothing is left.
pub fn safe_file_name(name: &str, ascii: bool) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            let letter = if ascii {
                c.is_ascii_alphanumeric()
            } else {
                c.is_alphanumeric()
            };
            if letter || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    match safe.trim_start_matches('.') {
        "" => "file".to_owned(),
        kept => kept.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_file_name_cannot_leave_its_folder_or_break_a_header() {
        for (name, on_disk, in_header) in [
            ("scene 1.jpg", "scene_1.jpg", "scene_1.jpg"),
            ("../../etc/passwd", "_.._etc_passwd", "_.._etc_passwd"),
            ("..", "file", "file"),
            ("", "file", "file"),
            (".hidden", "hidden", "hidden"),
            ("a\\b\u{0}c", "a_b_c", "a_b_c"),
            ("صورة.jpg", "صورة.jpg", "____.jpg"),
            (
                "a\"; filename=x.html\r\nX: y",
                "a___filename_x.html__X__y",
                "a___filename_x.html__X__y",
            ),
        ] {
            assert_eq!(safe_file_name(name, false), on_disk, "{name}");
            assert_eq!(safe_file_name(name, true), in_header, "{name}");
        }
        assert_eq!(safe_file_name(&"x".repeat(500), false).len(), 80);
    }

    #[test]
    fn control_characters_never_pass_and_json_reads_back_the_same() {
        let hostile = "a\u{1b}[2Jb\nc\td\u{9b}31me\u{7f}f\u{202e}g\u{8}";
        assert_eq!(
            escape(hostile),
            "a\\u{1b}[2Jb\\nc\\td\\u{9b}31me\\u{7f}f\\u{202e}g\\u{8}"
        );
        assert_eq!(terminal("one\ntwo\u{1b}"), "one\ntwo\\u{1b}");
        assert_eq!(escape("Khan Younis, خان يونس"), "Khan Younis, خان يونس");
        let mut bytes = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut bytes, SafeJson(Default::default()));
        serde::Serialize::serialize(&serde_json::json!({"v": hostile}), &mut ser).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.chars().any(|c| unsafe_char(c) && c != '\n'),
            "{text:?}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["v"], hostile);
    }
}
