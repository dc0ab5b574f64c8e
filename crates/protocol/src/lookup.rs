//! Devices as people name them: the name the office admitted a device under, printed beside
//! its short id, and accepted wherever an id is.

use std::fmt;

use crate::{Member, Roster};

/// The fewest hex digits taken as the start of a device id (fewer would match by chance).
const MIN_ID_DIGITS: usize = 8;

/// Why no single device answers to what a person typed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceLookup {
    /// No device has this name or an id starting with these digits.
    Unknown(String),
    /// Several devices do.
    Ambiguous {
        /// What was typed.
        query: String,
        /// Each device it matches, as [`Roster::label`] prints it.
        candidates: Vec<String>,
    },
}

impl fmt::Display for DeviceLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceLookup::Unknown(query) => write!(
                f,
                "no admitted device is named `{query}` or has an id starting with it"
            ),
            DeviceLookup::Ambiguous { query, candidates } => write!(
                f,
                "`{query}` matches several devices: {}",
                candidates.join(", ")
            ),
        }
    }
}

impl std::error::Error for DeviceLookup {}

impl Roster {
    /// The name people know a device by, from its id in hex (all 64 digits, or a start of at
    /// least 8 that only one member has): the name the office admitted it under, `office` for
    /// the office, `None` for a device with no name or not in the roster.
    pub fn name_of(&self, id: &str) -> Option<&str> {
        let found = self.by_id(id);
        let [member] = found.as_slice() else {
            return None;
        };
        if self.is_office(&member.id) {
            return Some("office");
        }
        member.name.as_deref()
    }

    /// A device for people: `tablet 3 (3f9a0c12ab34)`, or its short id alone when it has no
    /// name. `id` is hex, as for [`Roster::name_of`].
    pub fn label(&self, id: &str) -> String {
        let short: String = id.trim().chars().take(12).collect();
        match self.name_of(id) {
            Some(name) => format!("{name} ({short})"),
            None => short,
        }
    }

    /// The one `eligible` member a person means by `query`: its name (in any letter case) or
    /// the start of its id (at least 8 hex digits).
    pub fn find(
        &self,
        query: &str,
        eligible: impl Fn(&Member) -> bool,
    ) -> Result<&Member, DeviceLookup> {
        let wanted = query.trim();
        let mut matches: Vec<&Member> = self.by_id(wanted);
        for member in self.members() {
            let named = member
                .name
                .as_deref()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(wanted));
            if named && !matches.iter().any(|m| m.id == member.id) {
                matches.push(member);
            }
        }
        matches.retain(|m| eligible(m));
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(DeviceLookup::Unknown(wanted.to_owned())),
            many => Err(DeviceLookup::Ambiguous {
                query: wanted.to_owned(),
                candidates: many.iter().map(|m| self.label(&m.id.to_string())).collect(),
            }),
        }
    }

    /// The members whose id starts with the hex digits `id`.
    fn by_id(&self, id: &str) -> Vec<&Member> {
        let digits = id.trim().to_ascii_lowercase();
        if digits.len() < MIN_ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Vec::new();
        }
        self.members()
            .filter(|m| m.id.to_string().starts_with(&digits))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use cairn_crypto::DeviceKeys;

    use super::*;
    use crate::roster::tests::Office;

    #[test]
    fn names_beside_ids_and_names_accepted_for_ids() {
        let mut office = Office::new();
        let (a, b) = (DeviceKeys::generate(), DeviceKeys::generate());
        office.admit(&a, "T03");
        office.admit(&b, "T03");
        let roster = office.roster();
        let a_hex = a.id().to_string();
        // The test office admits every device as "tablet".
        assert_eq!(roster.name_of(&a_hex), Some("tablet"));
        assert_eq!(roster.name_of(&a_hex[..12]), Some("tablet"));
        assert_eq!(roster.label(&a_hex), format!("tablet ({})", a.id().short()));
        assert_eq!(
            roster.name_of(&office.keys.id().to_string()),
            Some("office")
        );
        let stranger = DeviceKeys::generate().id().to_string();
        assert_eq!(roster.name_of(&stranger), None);
        assert_eq!(roster.label(&stranger), stranger[..12]);
        // Too few digits to tell devices apart by chance.
        assert_eq!(roster.name_of(&a_hex[..7]), None);

        let any = |_: &Member| true;
        assert_eq!(roster.find(&a_hex[..8], any).unwrap().id, a.id());
        assert_eq!(roster.find(&a_hex.to_uppercase(), any).unwrap().id, a.id());
        let Err(DeviceLookup::Ambiguous { candidates, .. }) = roster.find(" TABLET ", any) else {
            panic!("two devices are named tablet");
        };
        assert_eq!(candidates.len(), 2);
        assert!(candidates.contains(&roster.label(&a_hex)));
        assert!(candidates.contains(&roster.label(&b.id().to_string())));
        // Only the eligible ones count: the name then means one device.
        let not_b = |m: &Member| m.id != b.id();
        assert_eq!(roster.find("tablet", not_b).unwrap().id, a.id());
        assert_eq!(
            roster.find("tablet 9", any).unwrap_err(),
            DeviceLookup::Unknown("tablet 9".into())
        );
        assert!(roster.find("", any).is_err());
    }
}
