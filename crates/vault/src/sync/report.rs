//! What applying a page of received changes did, for the sync client to report.

use serde::Serialize;

/// A received change that was not applied, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// Short id of the claimed author.
    pub author: String,
    /// Its number.
    pub seq: u64,
    /// One sentence.
    pub reason: String,
}

/// What applying one page did.
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    /// Changes verified, decrypted and merged.
    pub applied: usize,
    /// Changes already here (a page resent after an interruption).
    pub duplicates: usize,
    /// Changes refused, with reasons.
    pub refused: Vec<Refused>,
    /// Valid changes sealed under a team key this device does not hold (another team's,
    /// or an epoch it was never granted).
    pub unreadable: usize,
    /// Editions received in office records and kept here for the first time (each record
    /// stored is also counted in `applied`).
    pub editions: usize,
}
