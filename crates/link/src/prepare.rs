//! Each record parsed once before any pair is compared.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::names::{self, Name};
use crate::{AgeGroup, Kind, Record, Sex};

/// A record's fields in the forms the comparisons use.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub kind: Kind,
    pub name: Option<Name>,
    pub sex: Option<Sex>,
    pub age: Option<u32>,
    pub group: Option<AgeGroup>,
    /// The day of the event the record is about: incident, else last seen, else found
    /// (Julian day number).
    pub day: Option<i32>,
    pub last_seen: Option<i32>,
    pub found: Option<i32>,
    /// The place's words, as hashes (sorted): compared for equality, never shown.
    pub place: Vec<Word>,
    pub latlon: Option<(f64, f64)>,
    /// Where to block the record geographically: its position, else the mean position of the
    /// records that name the same place and carry one (a gazetteer learnt from the records).
    pub near: Option<(f64, f64)>,
    pub height: Option<f64>,
    /// Described items ("blue jeans, wedding ring"), each as its sorted word hashes.
    pub clothing: Vec<Vec<Word>>,
    pub effects: Vec<Vec<Word>>,
    pub marks: Vec<Vec<Word>>,
    /// Core name tokens' relative frequencies, in the order of `name.core`.
    pub tf: Vec<f64>,
}

/// A description split into items at commas, semicolons and "and"-less line breaks.
/// A word of a place or a description, as a 64-bit hash: only compared for equality, so
/// comparing integers instead of strings (the pairs compare them millions of times).
pub(crate) type Word = u64;

fn word(w: &str) -> Word {
    // FNV-1a.
    w.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn items(s: &Option<String>) -> Vec<Vec<Word>> {
    let Some(s) = s else { return Vec::new() };
    let mut out: Vec<Vec<Word>> = s
        .split([',', ';', '\n', '/'])
        .map(words_of)
        .filter(|w| !w.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn words(s: &Option<String>) -> Vec<Word> {
    s.as_deref().map(words_of).unwrap_or_default()
}

fn words_of(s: &str) -> Vec<Word> {
    let ascii = any_ascii::any_ascii(s).to_ascii_lowercase();
    let mut out: Vec<Word> = ascii
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() > 2 && !STOP.contains(w))
        .map(|w| {
            // Plurals: "boots"/"boot", "trousers"/"trouser".
            let w = w.strip_suffix('s').filter(|r| r.len() > 2).unwrap_or(w);
            word(w)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

const STOP: &[&str] = &[
    "and", "the", "with", "on", "of", "left", "right", "a", "an", "in", "at", "near", "from",
    "village", "town", "district",
];

/// A name token's prior frequency: one named record in a hundred (a common Armenian surname
/// or given name is a few per cent, a rare one far less).
const TF_PRIOR: f64 = 0.01;
/// The prior frequency counts as this many named records, so that in a vault of five records
/// a name seen twice is not taken for one borne by 40 % of people.
const TF_PSEUDO: f64 = 50.0;

pub(crate) fn prepare(records: &[Record]) -> Vec<Prepared> {
    let mut out: Vec<Prepared> = records
        .par_iter()
        .map(|r| {
            let name = r
                .name
                .as_deref()
                .map(names::parse)
                .filter(|n| !n.core.is_empty());
            let jd = |d: Option<time::Date>| d.map(|d| d.to_julian_day());
            let incident = jd(r.incident_day);
            let last_seen = jd(r.last_seen_day);
            let found = jd(r.found_day);
            let latlon = match (r.lat, r.lon) {
                (Some(a), Some(o)) if a.is_finite() && o.is_finite() => Some((a, o)),
                _ => None,
            };
            Prepared {
                kind: r.kind,
                name,
                sex: r.sex,
                age: r.age_years,
                group: r.age_group.or(r.age_years.map(AgeGroup::of_age)),
                day: incident.or(last_seen).or(found),
                last_seen: last_seen.or(incident),
                found,
                place: words(&r.place),
                latlon,
                near: latlon,
                height: r
                    .height_cm
                    .filter(|h| h.is_finite() && *h > 30.0 && *h < 250.0),
                clothing: items(&r.clothing),
                effects: items(&r.effects),
                marks: items(&r.marks),
                tf: Vec::new(),
            }
        })
        .collect();
    // Term frequencies of core name tokens, over the records that have a name.
    // Each token's count and the alphabets with vowels it was written in.
    let mut counts: HashMap<&str, u32> = HashMap::new();
    let mut seen_in: HashMap<&str, u8> = HashMap::new();
    let mut named = 0u32;
    for p in &out {
        if let Some(n) = &p.name {
            named += 1;
            for (t, &script) in n.core.iter().zip(&n.script) {
                *counts.entry(t.as_str()).or_default() += 1;
                if script == 1 || script == 2 {
                    *seen_in.entry(t.as_str()).or_default() |= script;
                }
            }
        }
    }
    let named = f64::from(named.max(1));
    let tf: Vec<Vec<f64>> = out
        .iter()
        .map(|p| {
            p.name.as_ref().map_or_else(Vec::new, |n| {
                n.core
                    .iter()
                    .map(|t| {
                        let count = f64::from(counts.get(t.as_str()).copied().unwrap_or(1));
                        (count + TF_PSEUDO * TF_PRIOR) / (named + TF_PSEUDO)
                    })
                    .collect()
            })
        })
        .collect();
    // A token is well attested when at least 5 named records and 1 in 2,000 carry it.
    let common_at = (named / 2000.0).max(5.0);
    let alphabets: Vec<Vec<u8>> = out
        .iter()
        .map(|p| {
            p.name.as_ref().map_or_else(Vec::new, |n| {
                n.core
                    .iter()
                    .map(|t| {
                        let count = f64::from(counts.get(t.as_str()).copied().unwrap_or(0));
                        if count >= common_at {
                            seen_in.get(t.as_str()).copied().unwrap_or(0)
                        } else {
                            0
                        }
                    })
                    .collect()
            })
        })
        .collect();
    // Places' positions, from the records that give both.
    let mut centres: HashMap<&[Word], (f64, f64, f64)> = HashMap::new();
    for p in &out {
        if let (Some((lat, lon)), false) = (p.latlon, p.place.is_empty()) {
            let c = centres.entry(p.place.as_slice()).or_default();
            *c = (c.0 + lat, c.1 + lon, c.2 + 1.0);
        }
    }
    let near: Vec<Option<(f64, f64)>> = out
        .iter()
        .map(|p| {
            p.latlon.or_else(|| {
                centres
                    .get(p.place.as_slice())
                    .map(|&(lat, lon, n)| (lat / n, lon / n))
            })
        })
        .collect();
    for (p, near) in out.iter_mut().zip(near) {
        p.near = near;
    }
    for ((p, tf), alphabets) in out.iter_mut().zip(tf).zip(alphabets) {
        p.tf = tf;
        if let Some(n) = p.name.as_mut() {
            n.alphabets = alphabets;
        }
    }
    out
}

/// Great-circle distance in kilometres.
pub(crate) fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}
