//! Receipts: the office's signed word of which changes it holds, relayed by the server.
//!
//! After a sync the office signs, for every author, the highest `n` such that it holds that
//! author's changes `1..=n`. A field device shows what the office itself confirmed, not what
//! the server claims (`acked`), and learns when the server withholds a teammate's changes that
//! the office already holds. Counters only grow: a device refuses a receipt older than the
//! one it holds.
//!
//! A field device reads only its own team's counts: the office signs one receipt per team
//! (`team`), naming that team's devices only, all with the counter of the office's whole
//! receipt, and the server hands each member its own team's. The office keeps the whole
//! receipt (no `team`) for itself; a field device refuses any receipt not of its team.

use cairn_crypto::{verify_signature, DeviceId, DeviceKeys};
use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::ProtocolError;

/// The signature domain of receipts.
pub const RECEIPT_DOMAIN: &str = "cairn receipt v2";
/// The most authors one receipt names.
pub const MAX_RECEIPT_AUTHORS: usize = 100_000;

/// What the office holds of one author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// The author.
    #[serde(with = "crate::hexser::device_id")]
    pub device: DeviceId,
    /// The office holds its changes `1..=upto`.
    pub upto: u64,
}

/// An office-signed receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// 1, 2, 3...: a newer receipt has a higher counter.
    pub counter: u64,
    /// When the office signed it, in Unix seconds.
    pub at: u64,
    /// The team whose devices it names; `None` for the office's whole receipt (every author),
    /// which it keeps to itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Per author, sorted by device id, each once.
    pub held: Vec<Held>,
    /// The office's signature over [`Receipt::signed_bytes`].
    #[serde(with = "crate::hexser::signature")]
    pub office_signature: [u8; 64],
}

#[derive(Serialize)]
struct Signed<'a> {
    counter: u64,
    at: u64,
    // Absent for a whole receipt, so those signed before teams had receipts still verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    held: &'a [Held],
}

impl Receipt {
    /// Signs a receipt; `held` is sorted here.
    pub fn issue(office: &DeviceKeys, counter: u64, at: u64, held: Vec<Held>) -> Receipt {
        Receipt::sign(office, counter, at, None, held)
    }

    /// The receipt of one team, cut from this whole one: the same counter and time, the
    /// authors `in_team` says are that team's only.
    pub fn for_team(
        &self,
        office: &DeviceKeys,
        team: &str,
        in_team: impl Fn(&DeviceId) -> bool,
    ) -> Receipt {
        let held = self
            .held
            .iter()
            .filter(|h| in_team(&h.device))
            .cloned()
            .collect();
        Receipt::sign(office, self.counter, self.at, Some(team.to_owned()), held)
    }

    fn sign(
        office: &DeviceKeys,
        counter: u64,
        at: u64,
        team: Option<String>,
        mut held: Vec<Held>,
    ) -> Receipt {
        held.sort_by_key(|h| h.device);
        held.dedup_by_key(|h| h.device);
        let mut r = Receipt {
            counter,
            at,
            team,
            held,
            office_signature: [0; 64],
        };
        r.office_signature = office.sign(RECEIPT_DOMAIN, &r.signed_bytes());
        r
    }

    /// The bytes the office signs (with the domain [`RECEIPT_DOMAIN`]).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let signed = Signed {
            counter: self.counter,
            at: self.at,
            team: self.team.as_deref(),
            held: &self.held,
        };
        serde_json::to_vec(&signed).unwrap_or_default()
    }

    /// Checks the shape and the office's signature.
    pub fn verify(&self, office: &DeviceId) -> Result<(), ProtocolError> {
        // Team `office` holds the staff devices: they get its receipt.
        if let Some(team) = self.team.as_deref().filter(|t| *t != crate::OFFICE_TEAM) {
            crate::validate_team(team)?;
        }
        if self.held.len() > MAX_RECEIPT_AUTHORS
            || self.held.windows(2).any(|w| w[0].device >= w[1].device)
        {
            return Err(malformed(
                "receipt: authors must be sorted, each once, and not too many",
            ));
        }
        verify_signature(
            office,
            RECEIPT_DOMAIN,
            &self.signed_bytes(),
            &self.office_signature,
        )
        .map_err(|_| ProtocolError::NotSignedByOffice("receipt"))
    }

    /// What the office holds of `device` (0 if it names none).
    pub fn upto(&self, device: &DeviceId) -> u64 {
        self.held
            .binary_search_by_key(device, |h| h.device)
            .map(|i| self.held[i].upto)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_sorted_and_unforgeable() {
        let office = DeviceKeys::generate();
        let (a, b) = (DeviceKeys::generate().id(), DeviceKeys::generate().id());
        let r = Receipt::issue(
            &office,
            3,
            100,
            vec![Held { device: b, upto: 7 }, Held { device: a, upto: 2 }],
        );
        r.verify(&office.id()).unwrap();
        assert_eq!((r.upto(&a), r.upto(&b)), (2, 7));
        assert_eq!(r.upto(&office.id()), 0);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), r);
        let mut inflated = r.clone();
        inflated.held[0].upto += 1;
        assert!(inflated.verify(&office.id()).is_err());
        assert!(r.verify(&DeviceKeys::generate().id()).is_err());
        // A whole receipt signs no team: its bytes are those of receipts made before teams.
        assert!(!String::from_utf8(r.signed_bytes())
            .unwrap()
            .contains("team"));
    }

    #[test]
    fn a_team_receipt_names_its_team_only_and_the_team_is_signed() {
        let office = DeviceKeys::generate();
        let (a, b) = (DeviceKeys::generate().id(), DeviceKeys::generate().id());
        let whole = Receipt::issue(
            &office,
            4,
            100,
            vec![Held { device: a, upto: 2 }, Held { device: b, upto: 7 }],
        );
        let ta = whole.for_team(&office, "T01", |d| *d == a);
        ta.verify(&office.id()).unwrap();
        assert_eq!(
            (ta.counter, ta.at, ta.team.as_deref()),
            (4, 100, Some("T01"))
        );
        assert_eq!((ta.upto(&a), ta.upto(&b)), (2, 0));
        let json = serde_json::to_string(&ta).unwrap();
        assert!(json.contains("\"team\":\"T01\"") && !json.contains(&b.to_string()));
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), ta);
        // Another team's name put on it, or the team taken off: not the office's word.
        for team in [Some("T02".to_owned()), None] {
            let mut moved = ta.clone();
            moved.team = team;
            assert!(moved.verify(&office.id()).is_err());
        }
        let mut bad = ta.clone();
        bad.team = Some("office team".into());
        assert!(matches!(
            bad.verify(&office.id()),
            Err(ProtocolError::Malformed(_))
        ));
    }
}
