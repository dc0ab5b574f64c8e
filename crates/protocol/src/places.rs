//! The office's list of places (code, name, aliases, coordinates), carried whole by a roster
//! statement ([`crate::Act::Places`]) so that it reaches every device with the roster, signed
//! by the office: the newest such statement is the list.
//!
//! The server relays the roster but must not read the list. The list is sealed once under a
//! fresh list key; that key is sealed under each team's key at the team's current epoch (a
//! member of a later epoch unlocks the earlier ones through the roster's revocations) and
//! granted to the office through age, so the office reads its own list without any team.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cairn_crypto::{DeviceKeys, Keyring, TeamKey};
use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::{validate_team, DevicePublic, Grant, ProtocolError};

/// The most places a list holds.
pub const MAX_PLACES: usize = 2000;
/// The most aliases one place has.
pub const MAX_ALIASES: usize = 16;
/// The longest name or alias, in characters.
pub const MAX_PLACE_NAME: usize = 100;
/// The largest sealed list, in base64 characters (a full list is about 300 KB of JSON).
const MAX_SEALED_LIST: usize = 640 * 1024;
/// A sealed list key is 32 bytes plus the team sealing's 112, in base64.
const MAX_SEALED_KEY: usize = 256;
/// A granted key is an age file of about 200 to 450 bytes.
const MAX_GRANT_TEXT: usize = 2048;
/// The list key's own team name: never a team's (a team name has no space).
const LIST_KEY_TEAM: &str = "office places";
/// What the sealings bind besides their keys: what the bytes are for.
const LIST_CONTEXT: &[u8] = b"cairn places list v1";
const KEY_CONTEXT: &[u8] = b"cairn places key v1";

/// One place of the office's list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// Its code, 2 to 6 capitals or digits, as references carry it (`KHR`).
    pub code: String,
    /// Its name (`Khan Younis`).
    pub name: String,
    /// Other names it goes by (other spellings, other scripts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Latitude, decimal degrees (WGS 84).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude, decimal degrees (WGS 84).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

/// The office's whole list, by code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaceList {
    /// The places, ordered by code, each code once.
    pub places: Vec<Place>,
}

/// Checks a place code (2 to 6 letters or digits) and returns it in capitals; the same rule
/// as a reference's place (the model's `validate_place`, which this crate does not link).
pub fn check_place_code(code: &str) -> Result<String, ProtocolError> {
    let code = code.trim();
    if !(2..=6).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(malformed(format!(
            "place code {code:?}: use 2 to 6 letters or digits, such as KHR"
        )));
    }
    Ok(code.to_ascii_uppercase())
}

fn check_place_name(what: &str, name: &str) -> Result<(), ProtocolError> {
    if name.trim().is_empty()
        || name.trim() != name
        || name.chars().count() > MAX_PLACE_NAME
        || name.chars().any(char::is_control)
    {
        return Err(malformed(format!(
            "place {what} {name:?}: use 1 to {MAX_PLACE_NAME} printable characters"
        )));
    }
    Ok(())
}

impl Place {
    /// Checks the code, the name, the aliases and the coordinates.
    pub fn check(&self) -> Result<(), ProtocolError> {
        if check_place_code(&self.code)? != self.code {
            return Err(malformed(format!(
                "place code {}: write it in capitals",
                self.code
            )));
        }
        check_place_name("name", &self.name)?;
        if self.aliases.len() > MAX_ALIASES {
            return Err(malformed(format!(
                "place {}: at most {MAX_ALIASES} aliases",
                self.code
            )));
        }
        for alias in &self.aliases {
            check_place_name("alias", alias)?;
        }
        match (self.lat, self.lon) {
            (None, None) => Ok(()),
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                Ok(())
            }
            _ => Err(malformed(format!(
                "place {}: give both a latitude (-90 to 90) and a longitude (-180 to 180), or neither",
                self.code
            ))),
        }
    }
}

impl PlaceList {
    /// Checks every place, the count, and that the places are ordered by code, each once.
    pub fn check(&self) -> Result<(), ProtocolError> {
        if self.places.len() > MAX_PLACES {
            return Err(malformed(format!(
                "place list: at most {MAX_PLACES} places"
            )));
        }
        for place in &self.places {
            place.check()?;
        }
        if self.places.windows(2).any(|w| w[0].code >= w[1].code) {
            return Err(malformed(
                "place list: places must be ordered by code, each code once",
            ));
        }
        Ok(())
    }

    /// The place with this code.
    pub fn get(&self, code: &str) -> Option<&Place> {
        self.places.iter().find(|p| p.code == code)
    }

    /// Adds `place`, replacing the place of the same code; answers the place it replaced.
    pub fn put(&mut self, place: Place) -> Option<Place> {
        match self.places.binary_search_by(|p| p.code.cmp(&place.code)) {
            Ok(i) => Some(std::mem::replace(&mut self.places[i], place)),
            Err(i) => {
                self.places.insert(i, place);
                None
            }
        }
    }

    /// Removes the place with this code; answers it.
    pub fn remove(&mut self, code: &str) -> Option<Place> {
        let i = self.places.iter().position(|p| p.code == code)?;
        Some(self.places.remove(i))
    }
}

/// The list key sealed under one team's key at one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamCopy {
    /// The team.
    pub team: String,
    /// The epoch of the team key it is sealed under.
    pub epoch: u32,
    /// [`TeamKey::seal`] of the list key, in base64.
    pub key: String,
}

/// The act of a places statement: the office's whole list, readable by the office and by
/// each team it was sealed for, never by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Places {
    /// The list (its JSON) sealed under the list key, in base64.
    pub list: String,
    /// The list key, granted to the office.
    pub office: Grant,
    /// The list key sealed for each team, ordered by team, each team once.
    pub teams: Vec<TeamCopy>,
}

impl Places {
    /// Seals `list` for the office and for each team whose current key `team_keys` holds.
    pub fn seal(
        list: &PlaceList,
        office: &DevicePublic,
        team_keys: &[&TeamKey],
    ) -> Result<Places, ProtocolError> {
        list.check()?;
        let list_key = TeamKey::generate(LIST_KEY_TEAM, 1);
        let json = serde_json::to_vec(list).map_err(|e| malformed(format!("place list: {e}")))?;
        let sealing = |e: cairn_crypto::CryptoError| malformed(format!("sealing places: {e}"));
        let sealed = list_key.seal(LIST_CONTEXT, &json).map_err(sealing)?;
        let mut teams = Vec::with_capacity(team_keys.len());
        for key in team_keys {
            teams.push(TeamCopy {
                team: key.team().to_owned(),
                epoch: key.epoch(),
                key: STANDARD.encode(key.seal(KEY_CONTEXT, list_key.bytes()).map_err(sealing)?),
            });
        }
        teams.sort_by(|a, b| a.team.cmp(&b.team));
        let places = Places {
            list: STANDARD.encode(sealed),
            office: Grant::new(&list_key, office)?,
            teams,
        };
        places.check_shape()?;
        Ok(places)
    }

    /// The list as the device holding `keys` and the team keys `ring` reads it: `Ok(None)`
    /// when no copy is sealed for it (a team the list was not sealed for, or only at an epoch
    /// it does not hold); an error when its copy does not open or holds no valid list.
    pub fn open(
        &self,
        keys: &DeviceKeys,
        ring: &Keyring,
    ) -> Result<Option<PlaceList>, ProtocolError> {
        let damaged = |why: &str| malformed(format!("the office's place list: {why}"));
        let list_key = if self.office.device == keys.id() {
            Some(
                self.office
                    .open(keys, LIST_KEY_TEAM, 1)
                    .ok_or_else(|| damaged("the office's copy does not open"))?,
            )
        } else {
            match self
                .teams
                .iter()
                .find_map(|c| ring.get(&c.team, c.epoch).map(|k| (c, k)))
            {
                None => None,
                Some((copy, team_key)) => {
                    let bytes = STANDARD
                        .decode(&copy.key)
                        .ok()
                        .and_then(|b| team_key.open(KEY_CONTEXT, &b).ok())
                        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                        .ok_or_else(|| damaged("the team's copy does not open"))?;
                    Some(TeamKey::from_bytes(LIST_KEY_TEAM, 1, bytes))
                }
            }
        };
        let Some(list_key) = list_key else {
            return Ok(None);
        };
        let json = STANDARD
            .decode(&self.list)
            .ok()
            .and_then(|b| list_key.open(LIST_CONTEXT, &b).ok())
            .ok_or_else(|| damaged("the list does not open"))?;
        let list: PlaceList = serde_json::from_slice(&json)
            .map_err(|e| damaged(&format!("it does not parse ({e})")))?;
        list.check()?;
        Ok(Some(list))
    }

    /// Sizes and counts, checked before the signature.
    pub(crate) fn check_shape(&self) -> Result<(), ProtocolError> {
        if self.list.len() > MAX_SEALED_LIST {
            return Err(malformed("roster statement: place list far too long"));
        }
        if self.office.key.len() > MAX_GRANT_TEXT {
            return Err(malformed("roster statement: place list grant far too long"));
        }
        if self.teams.len() > crate::MAX_GRANTS {
            return Err(malformed(
                "roster statement: place list sealed for too many teams",
            ));
        }
        for copy in &self.teams {
            validate_team(&copy.team)?;
            if copy.epoch == 0 || copy.key.len() > MAX_SEALED_KEY {
                return Err(malformed(
                    "roster statement: a team's copy of the place list is malformed",
                ));
            }
        }
        if self.teams.windows(2).any(|w| w[0].team >= w[1].team) {
            return Err(malformed(
                "roster statement: place list copies must be ordered by team, each team once",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::roster::tests::Office;
    use crate::{Act, Roster, Statement};

    fn khan_younis() -> PlaceList {
        let mut list = PlaceList::default();
        list.put(Place {
            code: "KHR".into(),
            name: "Khan Younis".into(),
            aliases: vec!["Khān Yūnis".into(), "خان يونس".into()],
            lat: Some(31.34),
            lon: Some(34.30),
        });
        list.put(Place {
            code: "GZA".into(),
            name: "Gaza City".into(),
            aliases: Vec::new(),
            lat: None,
            lon: None,
        });
        list
    }

    /// The list opens for the office and for the teams it was sealed for, at their epochs and
    /// the later ones; not for another team, a stranger, nor the server (which holds no key).
    #[test]
    fn a_list_opens_for_the_office_and_its_teams_only() {
        let mut office = Office::new();
        let (a, b, c) = (
            DeviceKeys::generate(),
            DeviceKeys::generate(),
            DeviceKeys::generate(),
        );
        office.admit(&a, "T01");
        office.admit(&b, "T02");
        let list = khan_younis();
        assert_eq!(list.places[0].code, "GZA", "ordered by code");
        let key = office.key("T01", 1);
        let public = DevicePublic::from_keys(&office.keys);
        let places = Places::seal(&list, &public, &[&key]).unwrap();
        office.issue(Act::Places(places.clone()));
        office.revoke(&a, "T01"); // T01 moves to epoch 2
        office.admit(&c, "T01"); // admitted at epoch 2: unlocks epoch 1 through `earlier`
        let roster = office.roster();
        assert!(roster.problems.is_empty(), "{:?}", roster.problems);
        let (counter, held) = roster.places().unwrap();
        assert_eq!((counter, held), (3, &places));
        let open = |k: &DeviceKeys| held.open(k, &roster.keyring(k));
        assert_eq!(open(&office.keys).unwrap().unwrap(), list);
        assert_eq!(open(&a).unwrap().unwrap(), list);
        assert_eq!(open(&c).unwrap().unwrap(), list);
        assert_eq!(open(&b).unwrap(), None, "T02 was not sealed for");
        assert_eq!(open(&DeviceKeys::generate()).unwrap(), None);
        let json = serde_json::to_string(&roster.chain()[2]).unwrap();
        assert!(!json.contains("Khan") && !json.contains("KHR"), "{json}");
        assert!(!json.contains("T02"));

        // A newer list replaces it, even an empty one.
        let empty = Places::seal(&PlaceList::default(), &public, &[]).unwrap();
        office.issue(Act::Places(empty));
        let roster = office.roster();
        let (counter, held) = roster.places().unwrap();
        assert_eq!(counter, 6);
        assert_eq!(
            held.open(&office.keys, &Keyring::default())
                .unwrap()
                .unwrap(),
            PlaceList::default()
        );
        // A list whose key is granted to someone else takes no effect.
        let mut stray = Places::seal(&list, &public, &[&key]).unwrap();
        stray.office.device = a.id();
        office.issue(Act::Places(stray));
        let roster = office.roster();
        assert_eq!(roster.places().unwrap().0, 6);
        assert!(roster.problems[0].starts_with("roster statement 7 (places) took no effect"));
        assert_eq!(roster.chain()[6].device(), None);
        assert_eq!(roster.chain()[6].team(), None);
    }

    /// A copy moved to another team, a list swapped for another list's, or a damaged list:
    /// refused with a sentence, never a panic or a wrong list.
    #[test]
    fn a_damaged_or_moved_copy_does_not_open() {
        let mut office = Office::new();
        let a = DeviceKeys::generate();
        office.admit(&a, "T01");
        let public = DevicePublic::from_keys(&office.keys);
        let key = office.key("T01", 1);
        let other = office.key("T02", 1);
        let places = Places::seal(&khan_younis(), &public, &[&key, &other]).unwrap();
        let mut ring = Keyring::default();
        ring.insert(office.key("T01", 1));
        let mut moved = places.clone();
        moved.teams[0].key = moved.teams[1].key.clone();
        assert!(moved.open(&a, &ring).is_err());
        let mut swapped = places.clone();
        swapped.list = Places::seal(&PlaceList::default(), &public, &[&key])
            .unwrap()
            .list;
        assert!(swapped.open(&a, &ring).is_err());
        assert!(swapped.open(&office.keys, &ring).is_err());
        let mut garbled = places.clone();
        garbled.list = "not base64!".into();
        assert!(garbled.open(&a, &ring).is_err());
        assert_eq!(places.open(&a, &ring).unwrap().unwrap(), khan_younis());
    }

    type Edit<T> = Box<dyn Fn(&mut T)>;

    #[test]
    fn a_badly_shaped_list_is_neither_sealed_nor_accepted() {
        let mut office = Office::new();
        let public = DevicePublic::from_keys(&office.keys);
        let bad_lists: Vec<Edit<PlaceList>> = vec![
            Box::new(|l| l.places[0].code = "gza".into()),
            Box::new(|l| l.places[0].code = "G".into()),
            Box::new(|l| l.places[0].code = "G ZA".into()),
            Box::new(|l| l.places[0].name = String::new()),
            Box::new(|l| l.places[0].name = "a\nb".into()),
            Box::new(|l| l.places[0].name = "x".repeat(MAX_PLACE_NAME + 1)),
            Box::new(|l| l.places[0].aliases = vec!["a".into(); MAX_ALIASES + 1]),
            Box::new(|l| l.places[0].lat = Some(10.0)),
            Box::new(|l| l.places[1].lat = Some(91.0)),
            Box::new(|l| l.places[1].lon = Some(f64::NAN)),
            Box::new(|l| l.places.swap(0, 1)),
            Box::new(|l| l.places[1].code = "GZA".into()),
        ];
        for edit in bad_lists {
            let mut list = khan_younis();
            edit(&mut list);
            assert!(Places::seal(&list, &public, &[]).is_err(), "{list:?}");
        }
        let key = office.key("T01", 1);
        let good = Places::seal(&khan_younis(), &public, &[&key]).unwrap();
        let bad_acts: Vec<Edit<Places>> = vec![
            Box::new(|p| p.list = "A".repeat(MAX_SEALED_LIST + 1)),
            Box::new(|p| p.office.key = "A".repeat(MAX_GRANT_TEXT + 1)),
            Box::new(|p| p.teams[0].team = "office".into()),
            Box::new(|p| p.teams[0].epoch = 0),
            Box::new(|p| p.teams[0].key = "A".repeat(MAX_SEALED_KEY + 1)),
            Box::new(|p| p.teams.push(p.teams[0].clone())),
            Box::new(|p| p.teams = vec![p.teams[0].clone(); crate::MAX_GRANTS + 1]),
        ];
        for edit in bad_acts {
            let mut p = good.clone();
            edit(&mut p);
            let act = Act::Places(p);
            assert!(Statement::issue(&office.keys, 1, [0; 32], 1, act.clone()).is_err());
            let mut s =
                Statement::issue(&office.keys, 1, [0; 32], 1, Act::Places(good.clone())).unwrap();
            s.act = act;
            s.office_signature = office.keys.sign(crate::ROSTER_DOMAIN, &s.signed_bytes());
            assert!(matches!(
                s.verify(&office.keys.id()),
                Err(ProtocolError::Malformed(_))
            ));
        }
        // Altered after signing: the signature fails, so the roster stops before it.
        let s1 = office.issue(Act::Places(good.clone()));
        let mut altered = s1.clone();
        if let Act::Places(p) = &mut altered.act {
            p.teams.clear();
        }
        assert!(altered.verify(&office.keys.id()).is_err());
        let r = Roster::build(&office.public(), &[altered]);
        assert_eq!((r.head(), r.places()), (0, None));
        // Unknown fields in the act: it does not parse.
        let json = serde_json::to_string(&s1).unwrap();
        let bad = json.replacen("\"list\":", "\"extra\":1,\"list\":", 1);
        assert!(serde_json::from_str::<Statement>(&bad).is_err());
    }
}
