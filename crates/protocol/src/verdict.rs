//! The roster's verdict on a change: whether its author may write it, and for which team.
//! One function for the server, which checks what a device pushes, and for every replica,
//! which checks what it pulls, so both apply the same rule.

use std::fmt;

use cairn_crypto::DeviceId;

use crate::{Refusal, Roster};

/// Why the roster refuses a change.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// Its author may not write it: not a member, or revoked before this change.
    Author(Refusal),
    /// It is sealed for another team than its author's.
    OtherTeam {
        /// The team it is sealed for.
        sealed: String,
        /// Its author's team.
        own: String,
    },
}

impl fmt::Display for ChangeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeRefusal::Author(refusal) => refusal.fmt(f),
            ChangeRefusal::OtherTeam { sealed, own } => write!(
                f,
                "it is sealed for team {sealed}, but its author belongs to team {own}"
            ),
        }
    }
}

impl std::error::Error for ChangeRefusal {}

impl Roster {
    /// The roster's word on change `seq` of `author`, sealed for `sealed_team`: the author's
    /// team, `None` for the office and its staff devices (which write to every team's cases),
    /// or why it is refused.
    pub fn verdict(
        &self,
        author: &DeviceId,
        seq: u64,
        sealed_team: &str,
    ) -> Result<Option<&str>, ChangeRefusal> {
        self.may_write(author, seq).map_err(ChangeRefusal::Author)?;
        if self.speaks_for_office(author) {
            return Ok(None);
        }
        // A member, since `may_write` admitted it.
        let own = self.member(author).map_or("", |m| m.team.as_str());
        if own != sealed_team {
            return Err(ChangeRefusal::OtherTeam {
                sealed: sealed_team.to_owned(),
                own: own.to_owned(),
            });
        }
        Ok(Some(own))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use cairn_crypto::DeviceKeys;

    use super::*;
    use crate::roster::tests::Office;
    use crate::OFFICE_TEAM;

    #[test]
    fn the_verdict_names_the_authors_team_or_why_it_is_refused() {
        let mut office = Office::new();
        let [staff, member, other, revoked, stranger] = [(); 5].map(|_| DeviceKeys::generate());
        office.admit(&staff, OFFICE_TEAM);
        office.admit(&member, "T03");
        office.admit(&other, "T04");
        office.admit(&revoked, "T03");
        // Revoked after its change 12.
        office.revoke(&revoked, "T03");
        let roster = office.roster();
        assert!(roster.problems.is_empty(), "{:?}", roster.problems);

        // The office and its staff write to every team's cases.
        assert_eq!(roster.verdict(&office.keys.id(), 1, "T03"), Ok(None));
        assert_eq!(roster.verdict(&staff.id(), 1, "T04"), Ok(None));
        assert_eq!(roster.verdict(&staff.id(), 2, OFFICE_TEAM), Ok(None));
        // A member, for its own team only.
        assert_eq!(roster.verdict(&member.id(), 1, "T03"), Ok(Some("T03")));
        assert_eq!(
            roster.verdict(&other.id(), 1, "T03"),
            Err(ChangeRefusal::OtherTeam {
                sealed: "T03".into(),
                own: "T04".into()
            })
        );
        // A revoked device up to its cut-off, not past it.
        assert_eq!(roster.verdict(&revoked.id(), 12, "T03"), Ok(Some("T03")));
        assert_eq!(
            roster.verdict(&revoked.id(), 13, "T03"),
            Err(ChangeRefusal::Author(Refusal::Revoked { last_seq: 12 }))
        );
        assert_eq!(
            roster.verdict(&stranger.id(), 1, "T03"),
            Err(ChangeRefusal::Author(Refusal::NotMember))
        );
    }
}
