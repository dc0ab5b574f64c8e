//! Printing: a closed pipe (`cairn case list | head`) is not an error.

use std::io::Write;

use crate::error::CliError;

/// Writes text to standard output, treating a closed pipe as success.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::failure(format!("cannot write the output: {e}"))),
    }
}

/// Prints a value as pretty JSON followed by a newline.
pub fn json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failure(format!("cannot encode JSON: {e}")))?;
    print(&format!("{text}\n"))
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

    /// `tablet 3 (3f9a0c12ab34)`, or the short id alone; `-` for no device.
    pub fn label(&self, id: &str) -> String {
        match &self.0 {
            _ if id.is_empty() => "-".to_owned(),
            Some(roster) => roster.label(id),
            None => id.chars().take(12).collect(),
        }
    }

    /// The device's name, if it has one.
    pub fn name(&self, id: &str) -> Option<&str> {
        self.0.as_ref().and_then(|roster| roster.name_of(id))
    }
}
