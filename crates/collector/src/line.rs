//! One line of the guided form, edited with the keys a terminal user expects (those of
//! readline's default): Ctrl-U clears to the start of the line, Ctrl-K to its end, Ctrl-W
//! deletes the word before the cursor, Ctrl-A/Home and Ctrl-E/End go to either end,
//! Left/Right (Ctrl-B/Ctrl-F) move by a character and Ctrl-Left/Ctrl-Right by a word,
//! Backspace and Delete (Ctrl-D) delete one.
//!
//! The form's menus filter with the same keys: what is typed narrows the menu, Up/Down move.
//!
//! inquire 0.9.4, the latest release, types a `u` for Ctrl-U in its text prompt and in a
//! menu's filter; its next version has these keys, and this file can go once it is out. It
//! draws as inquire does (a `?` line with the answer, the help below, a refused answer's reason
//! above), and ends with the same errors, so the form handles Esc and Ctrl-C alike on both.

use std::io::Write;

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use inquire::InquireError;
use unicode_width::UnicodeWidthChar;

/// The text being typed and where the cursor is in it (in characters).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Buffer {
    chars: Vec<char>,
    cursor: usize,
}

/// What a key asks of the prompt, once the buffer has taken it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Edited,
    Enter,
    Esc,
    CtrlC,
}

impl Buffer {
    pub fn new(text: &str) -> Buffer {
        let chars: Vec<char> = text.chars().collect();
        Buffer {
            cursor: chars.len(),
            chars,
        }
    }

    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// Where the word before the cursor starts: back over spaces, then over the word.
    fn word_start(&self) -> usize {
        let mut at = self.cursor;
        while at > 0 && self.chars[at - 1].is_whitespace() {
            at -= 1;
        }
        while at > 0 && !self.chars[at - 1].is_whitespace() {
            at -= 1;
        }
        at
    }

    /// Where the word after the cursor ends.
    fn word_end(&self) -> usize {
        let mut at = self.cursor;
        while at < self.chars.len() && self.chars[at].is_whitespace() {
            at += 1;
        }
        while at < self.chars.len() && !self.chars[at].is_whitespace() {
            at += 1;
        }
        at
    }

    /// Applies one key press.
    pub fn press(&mut self, key: KeyEvent) -> Outcome {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let end = self.chars.len();
        match key.code {
            KeyCode::Enter => return Outcome::Enter,
            KeyCode::Esc => return Outcome::Esc,
            KeyCode::Char('c') if ctrl => return Outcome::CtrlC,
            KeyCode::Char('u') if ctrl => {
                self.chars.drain(..self.cursor);
                self.cursor = 0;
            }
            KeyCode::Char('k') if ctrl => {
                self.chars.truncate(self.cursor);
            }
            KeyCode::Char('w') if ctrl => self.delete_back_to(self.word_start()),
            KeyCode::Backspace if alt => self.delete_back_to(self.word_start()),
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Home => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = end,
            KeyCode::End => self.cursor = end,
            KeyCode::Char('b') if ctrl => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Char('f') if ctrl => self.cursor = (self.cursor + 1).min(end),
            KeyCode::Char('b') if alt => self.cursor = self.word_start(),
            KeyCode::Char('f') if alt => self.cursor = self.word_end(),
            KeyCode::Left if ctrl || alt => self.cursor = self.word_start(),
            KeyCode::Right if ctrl || alt => self.cursor = self.word_end(),
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(end),
            KeyCode::Char('h') if ctrl => self.delete_back_to(self.cursor.saturating_sub(1)),
            KeyCode::Backspace => self.delete_back_to(self.cursor.saturating_sub(1)),
            KeyCode::Char('d') if ctrl && self.cursor < end => {
                self.chars.remove(self.cursor);
            }
            KeyCode::Delete if self.cursor < end => {
                self.chars.remove(self.cursor);
            }
            // Nothing after the cursor to delete (a Ctrl-D is not typed as a `d`).
            KeyCode::Char('d') if ctrl => {}
            // Any other control or Alt key types nothing (as in a shell): never a stray letter.
            KeyCode::Char(_) if ctrl || alt => {}
            KeyCode::Char(c) if !c.is_control() => {
                self.chars.insert(self.cursor, c);
                self.cursor += 1;
            }
            _ => {}
        }
        Outcome::Edited
    }

    fn delete_back_to(&mut self, to: usize) {
        self.chars.drain(to..self.cursor);
        self.cursor = to;
    }
}

/// A line prompt: `message`, the line starting as `initial`, `help` below it; Enter gives the
/// line if `check` takes it, else shows why and goes on. Esc and Ctrl-C end it as they end
/// inquire's prompts.
pub fn prompt(
    message: &str,
    initial: &str,
    help: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<String, InquireError> {
    crossterm::terminal::enable_raw_mode()?;
    let mut screen = Screen::default();
    let done = edit(&mut screen, message, initial, help, &check);
    let _ = crossterm::terminal::disable_raw_mode();
    done
}

fn edit(
    screen: &mut Screen,
    message: &str,
    initial: &str,
    help: &str,
    check: &impl Fn(&str) -> Result<(), String>,
) -> Result<String, InquireError> {
    let mut buffer = Buffer::new(initial);
    let mut refused: Option<String> = None;
    loop {
        screen.draw(message, &buffer, help, refused.as_deref())?;
        let key = match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => key,
            _ => continue,
        };
        match buffer.press(key) {
            Outcome::Edited => {}
            Outcome::Enter => {
                let line = buffer.text();
                match check(&line) {
                    Ok(()) => {
                        screen.finish(message, &line, false)?;
                        return Ok(line);
                    }
                    Err(why) => refused = Some(why),
                }
            }
            Outcome::Esc => {
                screen.finish(message, "", true)?;
                return Err(InquireError::OperationCanceled);
            }
            Outcome::CtrlC => {
                screen.finish(message, "", true)?;
                return Err(InquireError::OperationInterrupted);
            }
        }
    }
}

/// How many entries a menu shows at once (as inquire's).
const PAGE: usize = 7;

/// A menu: `message`, its `entries` (what is shown), filtered as the person types (the filter
/// line takes the same keys as a prompt's line, Ctrl-U included) and ranked by `score` (of what
/// is typed and an entry's index; `None` leaves the entry out), the best first, ties in the
/// menu's order; Up/Down (Ctrl-P/Ctrl-N) move, Enter gives the chosen entry's index. Starts on
/// entry `start`. Esc and Ctrl-C end it as they end inquire's prompts.
pub fn choose(
    message: &str,
    entries: &[String],
    score: &dyn Fn(&str, usize) -> Option<i64>,
    start: usize,
    help: &str,
) -> Result<usize, InquireError> {
    crossterm::terminal::enable_raw_mode()?;
    let mut screen = Screen::default();
    let done = pick(&mut screen, message, entries, score, start, help);
    let _ = crossterm::terminal::disable_raw_mode();
    done
}

/// The entries `typed` keeps, best first, ties in the menu's order.
pub fn ranked(typed: &str, count: usize, score: &dyn Fn(&str, usize) -> Option<i64>) -> Vec<usize> {
    let mut kept: Vec<(i64, usize)> = (0..count)
        .filter_map(|i| score(typed, i).map(|s| (-s, i)))
        .collect();
    kept.sort_unstable();
    kept.into_iter().map(|(_, i)| i).collect()
}

fn pick(
    screen: &mut Screen,
    message: &str,
    entries: &[String],
    score: &dyn Fn(&str, usize) -> Option<i64>,
    start: usize,
    help: &str,
) -> Result<usize, InquireError> {
    let mut filter = Buffer::new("");
    let mut shown = ranked("", entries.len(), score);
    let mut at = shown.iter().position(|i| *i == start).unwrap_or(0);
    loop {
        screen.draw_menu(message, &filter, entries, &shown, at, help)?;
        let key = match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => key,
            _ => continue,
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Up => at = at.checked_sub(1).unwrap_or(shown.len().saturating_sub(1)),
            KeyCode::Char('p') if ctrl => {
                at = at.checked_sub(1).unwrap_or(shown.len().saturating_sub(1));
            }
            KeyCode::Down | KeyCode::Tab => at = if at + 1 < shown.len() { at + 1 } else { 0 },
            KeyCode::Char('n') if ctrl => at = if at + 1 < shown.len() { at + 1 } else { 0 },
            KeyCode::PageUp => at = at.saturating_sub(PAGE),
            KeyCode::PageDown => at = (at + PAGE).min(shown.len().saturating_sub(1)),
            _ => {
                let before = filter.text();
                match filter.press(key) {
                    Outcome::Edited => {
                        let typed = filter.text();
                        if typed != before {
                            shown = ranked(&typed, entries.len(), score);
                            at = 0;
                        }
                    }
                    Outcome::Enter => {
                        if let Some(chosen) = shown.get(at) {
                            screen.finish(message, &entries[*chosen], false)?;
                            return Ok(*chosen);
                        }
                    }
                    Outcome::Esc => {
                        screen.finish(message, "", true)?;
                        return Err(InquireError::OperationCanceled);
                    }
                    Outcome::CtrlC => {
                        screen.finish(message, "", true)?;
                        return Err(InquireError::OperationInterrupted);
                    }
                }
            }
        }
    }
}

/// inquire's colours, or none where colour is not wanted.
struct Style {
    green: &'static str,
    cyan: &'static str,
    red: &'static str,
    reset: &'static str,
}

fn style() -> Style {
    let plain = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if plain {
        Style {
            green: "",
            cyan: "",
            red: "",
            reset: "",
        }
    } else {
        Style {
            green: "\x1b[92m",
            cyan: "\x1b[96m",
            red: "\x1b[91m",
            reset: "\x1b[0m",
        }
    }
}

fn width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// What is drawn on the terminal: how many rows the frame took and the cursor's row in it.
#[derive(Default)]
struct Screen {
    /// The cursor's row, counted from the frame's first.
    cursor_row: usize,
}

impl Screen {
    fn columns() -> usize {
        crossterm::terminal::size().map_or(80, |(c, _)| usize::from(c.max(1)))
    }

    /// Goes back to the frame's first row and clears it all.
    fn clear(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.cursor_row > 0 {
            write!(out, "\x1b[{}A", self.cursor_row)?;
        }
        self.cursor_row = 0;
        write!(out, "\r\x1b[J")
    }

    /// Draws the refusal (if any), the prompt line and the help, the cursor where it edits.
    fn draw(
        &mut self,
        message: &str,
        buffer: &Buffer,
        help: &str,
        refused: Option<&str>,
    ) -> std::io::Result<()> {
        let s = style();
        let cols = Screen::columns();
        // Rows a line of `w` columns takes; a line that fills its last row exactly leaves the
        // terminal waiting to wrap, and the "\r\n" after it moves on one row only.
        let rows = |w: usize| w.div_ceil(cols).max(1);
        let mut out = std::io::stderr().lock();
        self.clear(&mut out)?;
        let mut row = 0;
        if let Some(why) = refused {
            write!(out, "{}#{} {}{why}{}\r\n", s.red, s.reset, s.red, s.reset)?;
            row += rows(width(why) + 2);
        }
        let prefix = format!("? {message} ");
        let text = buffer.text();
        write!(out, "{}?{} {message} {text}", s.green, s.reset)?;
        let line = width(&prefix) + width(&text);
        // The prompt line always ends on a row of its own, so the cursor after the last
        // character has a place even when the line fills its row.
        if line > 0 && line.is_multiple_of(cols) {
            write!(out, "\r\n")?;
        }
        let prompt_row = row;
        row += line / cols + 1;
        write!(out, "\r\n{}[{help}]{}", s.cyan, s.reset)?;
        row += rows(width(help) + 2) - 1;
        let before: String = buffer.chars[..buffer.cursor].iter().collect();
        let at = width(&prefix) + width(&before);
        let (cursor_row, cursor_col) = (prompt_row + at / cols, at % cols);
        if row > cursor_row {
            write!(out, "\x1b[{}A", row - cursor_row)?;
        }
        write!(out, "\r")?;
        if cursor_col > 0 {
            write!(out, "\x1b[{cursor_col}C")?;
        }
        self.cursor_row = cursor_row;
        out.flush()
    }

    /// Draws a menu: the prompt line with the filter typed, a page of the entries kept (the
    /// chosen one marked `>`), the help; the cursor where the filter edits.
    fn draw_menu(
        &mut self,
        message: &str,
        filter: &Buffer,
        entries: &[String],
        shown: &[usize],
        at: usize,
        help: &str,
    ) -> std::io::Result<()> {
        let s = style();
        let cols = Screen::columns();
        let mut out = std::io::stderr().lock();
        self.clear(&mut out)?;
        // Every row is cut to the terminal's width, so each takes one row.
        let cut = |text: &str, room: usize| -> String {
            let mut used = 0;
            text.chars()
                .take_while(|c| {
                    used += c.width().unwrap_or(0);
                    used < room
                })
                .collect()
        };
        let typed = filter.text();
        write!(
            out,
            "{}?{} {}",
            s.green,
            s.reset,
            cut(&format!("{message} {typed}"), cols)
        )?;
        let first = (at + 1).saturating_sub(PAGE);
        let mut rows = 1;
        for (n, i) in shown.iter().enumerate().skip(first).take(PAGE) {
            let line = cut(&entries[*i], cols.saturating_sub(2));
            if n == at {
                write!(out, "\r\n{}> {line}{}", s.cyan, s.reset)?;
            } else {
                write!(out, "\r\n  {line}")?;
            }
            rows += 1;
        }
        if shown.is_empty() {
            write!(
                out,
                "\r\n  {}",
                cut("(no entry matches what is typed)", cols.saturating_sub(2))
            )?;
            rows += 1;
        }
        write!(
            out,
            "\r\n{}[{}]{}",
            s.cyan,
            cut(help, cols.saturating_sub(2)),
            s.reset
        )?;
        // Back to the prompt line, after the filter typed so far.
        write!(out, "\x1b[{rows}A\r")?;
        let before: String = filter.chars[..filter.cursor].iter().collect();
        let col = (width(message) + 3 + width(&before)).min(cols.saturating_sub(1));
        if col > 0 {
            write!(out, "\x1b[{col}C")?;
        }
        self.cursor_row = 0;
        out.flush()
    }

    /// Leaves the prompt as answered (or cancelled) on one line, as inquire does.
    fn finish(&mut self, message: &str, answer: &str, cancelled: bool) -> std::io::Result<()> {
        let s = style();
        let mut out = std::io::stderr().lock();
        self.clear(&mut out)?;
        if cancelled {
            write!(
                out,
                "{}>{} {message} {}<canceled>{}\r\n",
                s.green, s.reset, s.red, s.reset
            )?;
        } else {
            write!(
                out,
                "{}>{} {message} {}{answer}{}\r\n",
                s.green, s.reset, s.cyan, s.reset
            )?;
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn typed(buffer: &mut Buffer, text: &str) {
        for c in text.chars() {
            buffer.press(key(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    fn ctrl(buffer: &mut Buffer, c: char) -> Outcome {
        buffer.press(key(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    #[test]
    fn ctrl_u_clears_to_the_start_and_ctrl_k_to_the_end() {
        let mut b = Buffer::new("31,5017");
        ctrl(&mut b, 'u');
        assert_eq!(b, Buffer::new(""));
        typed(&mut b, "31.5");
        b.press(key(KeyCode::Left, KeyModifiers::NONE));
        b.press(key(KeyCode::Left, KeyModifiers::NONE));
        ctrl(&mut b, 'u');
        assert_eq!((b.text().as_str(), b.cursor), (".5", 0));
        b.press(key(KeyCode::Right, KeyModifiers::NONE));
        ctrl(&mut b, 'k');
        assert_eq!((b.text().as_str(), b.cursor), (".", 1));
    }

    #[test]
    fn ctrl_w_deletes_the_word_before_the_cursor_and_the_spaces_after_it() {
        let mut b = Buffer::new("Blue jacket  ");
        ctrl(&mut b, 'w');
        assert_eq!(b.text(), "Blue ");
        ctrl(&mut b, 'w');
        assert_eq!(b.text(), "");
        ctrl(&mut b, 'w');
        assert_eq!(b.text(), "");
    }

    #[test]
    fn the_ends_and_the_arrows_move_and_typing_inserts_at_the_cursor() {
        let mut b = Buffer::new("ring watch");
        ctrl(&mut b, 'a');
        typed(&mut b, "a ");
        b.press(key(KeyCode::End, KeyModifiers::NONE));
        typed(&mut b, "!");
        b.press(key(KeyCode::Home, KeyModifiers::NONE));
        b.press(key(KeyCode::Right, KeyModifiers::CONTROL));
        b.press(key(KeyCode::Delete, KeyModifiers::NONE));
        assert_eq!(b.text(), "aring watch!");
        ctrl(&mut b, 'e');
        b.press(key(KeyCode::Backspace, KeyModifiers::NONE));
        b.press(key(KeyCode::Left, KeyModifiers::CONTROL));
        typed(&mut b, "a ");
        assert_eq!(b.text(), "aring a watch");
        // Past either end nothing moves or goes.
        ctrl(&mut b, 'a');
        b.press(key(KeyCode::Left, KeyModifiers::NONE));
        b.press(key(KeyCode::Backspace, KeyModifiers::NONE));
        ctrl(&mut b, 'e');
        b.press(key(KeyCode::Right, KeyModifiers::NONE));
        b.press(key(KeyCode::Delete, KeyModifiers::NONE));
        assert_eq!(b.text(), "aring a watch");
    }

    #[test]
    fn other_control_keys_type_nothing_and_esc_enter_ctrl_c_end_the_line() {
        let mut b = Buffer::new("Սարգիս");
        assert_eq!(ctrl(&mut b, 'x'), Outcome::Edited);
        b.press(key(KeyCode::Tab, KeyModifiers::NONE));
        assert_eq!(b.text(), "Սարգիս");
        assert_eq!(ctrl(&mut b, 'c'), Outcome::CtrlC);
        assert_eq!(b.press(key(KeyCode::Esc, KeyModifiers::NONE)), Outcome::Esc);
        assert_eq!(
            b.press(key(KeyCode::Enter, KeyModifiers::NONE)),
            Outcome::Enter
        );
        assert_eq!(width("Սարգիս"), 6);
    }

    #[test]
    fn a_menu_keeps_what_the_filter_scores_best_first_ties_in_order() {
        let entries = ["Female", "Male", "Unknown"];
        let score = |typed: &str, i: usize| {
            let entry = entries[i].to_lowercase();
            match typed {
                "" => Some(0),
                t if entry == t => Some(2),
                t => entry.contains(t).then_some(0),
            }
        };
        assert_eq!(ranked("", 3, &score), [0, 1, 2]);
        assert_eq!(ranked("male", 3, &score), [1, 0]);
        assert_eq!(ranked("n", 3, &score), [2]);
        assert!(ranked("x", 3, &score).is_empty());
    }
}
