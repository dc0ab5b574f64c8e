//! CSV cells a spreadsheet will not run: the OWASP rule against formula injection. A text
//! cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a
//! single quote in front (`=HYPERLINK(...)` becomes `'=HYPERLINK(...)`), which spreadsheets
//! take as "text follows". A cell that starts with a quote gets one more, so that
//! [`unescape`] gives back every value exactly: `cairn case import` of an export reads what
//! was exported.
//!
//! Numbers are written as numbers (`-3.5` is a longitude, not a formula).

use std::borrow::Cow;

/// What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
const QUOTE: char = '\'';

/// `text` as a CSV cell no spreadsheet runs.
pub fn escape(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some(c) if TRIGGERS.contains(&c) || c == QUOTE => Cow::Owned(format!("{QUOTE}{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// The value [`escape`] was given: one leading quote taken off where escaping put it (before
/// a trigger or another quote). A quote before anything else is kept: it was in the value.
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix(QUOTE) {
        Some(rest) if rest.starts_with(TRIGGERS) || rest.starts_with(QUOTE) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_quoted_and_come_back_exactly() {
        for (value, cell) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1", "'+1"),
            ("-1+2", "'-1+2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'quoted'", "''quoted'"),
            ("Khan Younis", "Khan Younis"),
            ("", ""),
        ] {
            assert_eq!(escape(value), cell);
            assert_eq!(unescape(cell), value);
        }
        // A quote someone typed before ordinary text is theirs.
        assert_eq!(unescape("'tis"), "'tis");
    }
}
