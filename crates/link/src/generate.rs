//! Synthetic casualty lists with their truth, to measure the linkage against.
//!
//! A set of persons (killed, injured, missing) is drawn, then each is written down by one to
//! four sources as real lists are: Latin transliteration variants, Armenian script, some
//! Cyrillic and Arabic, surname first, patronymics, typos, ages and dates a little off, fields
//! left empty; families killed together (one surname, day and place); common names drawn with
//! Zipf weights. Some missing persons' unnamed remains appear later as `remains` records (sex
//! and age estimated, height estimated, part of the clothing, effects and marks, found after
//! and near where the person was last seen), and some remains are of people nobody reported.
//! The same seed gives the same lists.

mod rows;
mod tables;

pub use rows::{Generated, Row, COLUMNS};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use time::{Date, Duration, Month};

use crate::{AgeGroup, Kind, Sex};
use tables::*;

#[derive(Debug, Clone)]
struct Person {
    id: u64,
    kind: Kind,
    sex: Sex,
    age: u32,
    arab: bool,
    given: usize,
    surname: usize,
    father: usize,
    day: Date,
    place: usize,
    cause: &'static str,
    height: f64,
    clothing: Vec<String>,
    effects: Vec<&'static str>,
    marks: Vec<&'static str>,
    seen: (f64, f64),
}

/// The days the lists cover: two years of conflict.
const PERIOD_DAYS: i64 = 730;

fn zipf(rng: &mut StdRng, n: usize, s: f64) -> usize {
    // Inverse-CDF over weights 1/(k+1)^s; tables are short.
    let total: f64 = (0..n).map(|k| 1.0 / ((k + 1) as f64).powf(s)).sum();
    let mut x = rng.gen::<f64>() * total;
    for k in 0..n {
        x -= 1.0 / ((k + 1) as f64).powf(s);
        if x <= 0.0 {
            return k;
        }
    }
    n - 1
}

fn start_day() -> Date {
    // The first day of the period the lists cover; a constant, valid date.
    Date::from_calendar_date(2020, Month::September, 27).unwrap_or(Date::MIN)
}

struct Gen {
    rng: StdRng,
    /// Villages: name, latitude, longitude.
    places: Vec<(String, f64, f64)>,
    next_person: u64,
    next_row: u64,
}

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen::<f64>() < p
    }

    fn person(&mut self, kind: Kind) -> Person {
        let sex = if self.chance(if kind == Kind::Killed { 0.7 } else { 0.6 }) {
            Sex::Male
        } else {
            Sex::Female
        };
        let arab = self.chance(0.05);
        let (given, surname, father) = self.names(arab, sex);
        self.next_person += 1;
        let place = self.rng.gen_range(0..self.places.len());
        let day = start_day() + Duration::days(self.rng.gen_range(0..PERIOD_DAYS));
        let age = self.rng.gen_range(1..90);
        let cause = CAUSES[self.rng.gen_range(0..CAUSES.len())];
        let p = Person {
            id: self.next_person,
            kind,
            sex,
            age,
            arab,
            given,
            surname,
            father,
            day,
            place,
            cause,
            height: 0.0,
            clothing: Vec::new(),
            effects: Vec::new(),
            marks: Vec::new(),
            seen: (0.0, 0.0),
        };
        self.describe(p)
    }

    fn names(&mut self, arab: bool, sex: Sex) -> (usize, usize, usize) {
        let (given_n, surname_n, men_n) = if arab {
            let g = if sex == Sex::Male {
                ARAB_MEN.len()
            } else {
                ARAB_WOMEN.len()
            };
            (g, ARAB_SURNAMES.len(), ARAB_MEN.len())
        } else {
            let g = if sex == Sex::Male {
                MEN.len()
            } else {
                WOMEN.len()
            };
            (g, SURNAMES.len(), MEN.len())
        };
        (
            zipf(&mut self.rng, given_n, 0.7),
            zipf(&mut self.rng, surname_n, 0.9),
            zipf(&mut self.rng, men_n, 0.7),
        )
    }

    /// Height, clothing, effects, marks and where last seen.
    fn describe(&mut self, mut p: Person) -> Person {
        let base = if p.sex == Sex::Male { 176.0 } else { 163.0 };
        let grown = (f64::from(p.age.min(18)) / 18.0).powf(0.6);
        p.height = (base * (0.45 + 0.55 * grown) + self.rng.gen_range(-12.0..12.0)).round();
        let mut garments: Vec<&str> = GARMENTS.to_vec();
        garments.shuffle(&mut self.rng);
        let n = self.rng.gen_range(2..=4);
        p.clothing = garments[..n]
            .iter()
            .map(|g| format!("{} {g}", COLOURS[self.rng.gen_range(0..COLOURS.len())]))
            .collect();
        let mut effects = EFFECTS.to_vec();
        effects.shuffle(&mut self.rng);
        p.effects = effects[..self.rng.gen_range(0..=3)].to_vec();
        let mut marks = MARKS.to_vec();
        marks.shuffle(&mut self.rng);
        p.marks = marks[..self.rng.gen_range(0..=2)].to_vec();
        let (_, lat, lon) = self.places[p.place];
        p.seen = (
            lat + self.rng.gen_range(-0.03..0.03),
            lon + self.rng.gen_range(-0.03..0.03),
        );
        p
    }

    fn spelled(&self, p: &Person) -> (&'static Spelled, &'static Spelled, &'static Spelled) {
        if p.arab {
            let g = if p.sex == Sex::Male {
                &ARAB_MEN[p.given]
            } else {
                &ARAB_WOMEN[p.given]
            };
            (g, &ARAB_SURNAMES[p.surname], &ARAB_MEN[p.father])
        } else {
            let g = if p.sex == Sex::Male {
                &MEN[p.given]
            } else {
                &WOMEN[p.given]
            };
            (g, &SURNAMES[p.surname], &MEN[p.father])
        }
    }

    /// The person's name as one source writes it.
    fn name(&mut self, p: &Person) -> Option<String> {
        if self.chance(0.03) {
            return None;
        }
        let (g, s, f) = self.spelled(p);
        let patronymic = self.chance(0.35);
        let surname_first = self.chance(0.5);
        let style = self.rng.gen::<f64>();
        if p.arab {
            let (g, s, f) = if style < 0.4 {
                (
                    g.native.to_string(),
                    s.native.to_string(),
                    f.native.to_string(),
                )
            } else if style < 0.7 {
                (
                    g.latin.to_string(),
                    s.latin.to_string(),
                    f.latin.to_string(),
                )
            } else {
                (
                    g.cyrillic.to_string(),
                    s.cyrillic.to_string(),
                    f.cyrillic.to_string(),
                )
            };
            let bin = if style < 0.4 {
                "بن"
            } else if self.chance(0.5) {
                "bin"
            } else {
                "ibn"
            };
            return Some(if patronymic {
                format!("{g} {bin} {f} {s}")
            } else {
                format!("{g} {s}")
            });
        }
        let female = p.sex == Sex::Female;
        let (g, s, pat) = if style < 0.35 {
            (
                g.latin.to_string(),
                s.latin.to_string(),
                format!("{}i", f.latin),
            )
        } else if style < 0.55 {
            let v = |x: &str, rng: &mut StdRng| variant(x, rng);
            (
                v(g.latin, &mut self.rng),
                v(s.latin, &mut self.rng),
                format!("{}i", v(f.latin, &mut self.rng)),
            )
        } else if style < 0.8 {
            (
                g.native.to_string(),
                s.native.to_string(),
                format!("{}ի", f.native),
            )
        } else if style < 0.92 {
            let suffix = if female { "овна" } else { "ович" };
            (
                g.cyrillic.to_string(),
                s.cyrillic.to_string(),
                format!("{}{suffix}", f.cyrillic),
            )
        } else {
            let t = |x: &str, rng: &mut StdRng| typo(x, rng);
            (
                t(g.latin, &mut self.rng),
                t(s.latin, &mut self.rng),
                format!("{}i", f.latin),
            )
        };
        Some(match (surname_first, patronymic) {
            (true, true) => format!("{s} {g} {pat}"),
            (true, false) => format!("{s} {g}"),
            (false, true) => format!("{g} {pat} {s}"),
            (false, false) => format!("{g} {s}"),
        })
    }

    fn row(&mut self, p: &Person) -> Row {
        self.next_row += 1;
        let mut r = Row {
            source_id: format!("S{:07}", self.next_row),
            kind: p.kind.as_str().to_string(),
            name: self.name(p),
            ..Row::default()
        };
        r.sex = (!self.chance(0.1)).then_some(p.sex);
        let age = match self.rng.gen_range(0..100) {
            0..=74 => Some(p.age),
            75..=84 => Some(p.age.saturating_sub(1) + 2 * u32::from(self.chance(0.5))),
            85..=89 => Some(p.age + 2),
            _ => None,
        };
        if self.chance(0.12) {
            r.age_group = self.chance(0.5).then(|| AgeGroup::of_age(p.age));
        } else {
            r.age_years = age;
        }
        let shift = if self.chance(0.25) {
            self.rng.gen_range(-3..=3)
        } else {
            0
        };
        let day = (!self.chance(0.08)).then(|| p.day + Duration::days(shift));
        let place =
            (!self.chance(0.15)).then(|| place_name(&self.places[p.place].0, &mut self.rng));
        if p.kind == Kind::Missing {
            r.last_seen_at = day;
            r.last_seen_place = place;
            if self.chance(0.7) {
                r.last_seen_lat = Some(p.seen.0 + self.rng.gen_range(-0.004..0.004));
                r.last_seen_lon = Some(p.seen.1 + self.rng.gen_range(-0.004..0.004));
            }
            if self.chance(0.6) {
                r.height_cm = Some(p.height + f64::from(self.rng.gen_range(-2..=2)));
            }
            r.clothing = self.some_of(&p.clothing, 0.7, 0.85);
            r.effects = self.some_of(&p.effects, 0.5, 0.85);
            r.marks = self.some_of(&p.marks, 0.4, 0.9);
        } else {
            r.incident_date = day;
            r.incident_place = place;
            r.incident_cause = self.chance(0.6).then(|| p.cause.to_string());
        }
        r
    }

    /// A description made of some of the items: `None` with probability 1 − `present`.
    fn some_of<S: AsRef<str>>(&mut self, items: &[S], present: f64, keep: f64) -> Option<String> {
        if items.is_empty() || !self.chance(present) {
            return None;
        }
        let kept: Vec<&str> = items
            .iter()
            .map(AsRef::as_ref)
            .filter(|_| self.rng.gen::<f64>() < keep)
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    }

    /// The unnamed remains of a person (`p.kind` is ignored).
    fn remains(&mut self, p: &Person, reported: bool) -> Row {
        self.next_row += 1;
        let found = p.day + Duration::days(self.rng.gen_range(5..500));
        let (dlat, dlon) = (
            self.rng.gen_range(-0.035..0.035),
            self.rng.gen_range(-0.045..0.045),
        );
        let mut r = Row {
            source_id: format!("S{:07}", self.next_row),
            kind: "remains".to_string(),
            found_at: Some(found),
            found_lat: Some(p.seen.0 + dlat),
            found_lon: Some(p.seen.1 + dlon),
            ..Row::default()
        };
        r.sex = (!self.chance(0.15)).then_some(p.sex);
        match self.rng.gen_range(0..10) {
            0..=5 => {
                let est = i64::from(p.age) + self.rng.gen_range(-5..=5);
                r.age_years = Some(est.clamp(0, 100) as u32);
            }
            6..=8 => r.age_group = Some(AgeGroup::of_age(p.age)),
            _ => {}
        }
        if self.chance(0.7) {
            r.remains_height_cm = Some((p.height + self.rng.gen_range(-6.0..6.0)).round());
        }
        r.remains_clothing = self.some_of(&p.clothing, 0.8, 0.6);
        r.remains_effects = self.some_of(&p.effects, 0.6, 0.6);
        r.remains_marks = self.some_of(&p.marks, 0.6, 0.7);
        if self.chance(0.5) {
            r.incident_place = Some(place_name(&self.places[p.place].0, &mut self.rng));
        }
        if !reported && self.chance(0.3) {
            r.incident_cause = Some("unknown".to_string());
        }
        r
    }
}

/// Villages for a list of `records`: a longer list covers a wider region, so the density of
/// people per village stays that of a 10,000-record list (one region of 36 villages per 10,000
/// records; the regions lie on a grid one degree apart, wider than a region, and each further
/// one prefixes its names: "Verin Hadrut").
fn places(records: usize) -> Vec<(String, f64, f64)> {
    const PREFIX: &[&str] = &[
        "", "Verin", "Nerkin", "Nor", "Hin", "Mets", "Pokr", "Sar", "Dzor", "Get",
    ];
    let regions = records.div_ceil(10_000).clamp(1, PREFIX.len());
    let mut out = Vec::new();
    for (r, prefix) in PREFIX.iter().enumerate().take(regions) {
        let (dlat, dlon) = ((r % 3) as f64, (r / 3) as f64);
        for &(name, lat, lon) in PLACES {
            let name = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix} {name}")
            };
            out.push((name, lat + dlat, lon + dlon));
        }
    }
    out
}

/// A place as a source writes it: mostly as is, sometimes with "village" or lowercased.
fn place_name(name: &str, rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => format!("{name} village"),
        1 => name.to_lowercase(),
        _ => name.to_string(),
    }
}

/// A Latin transliteration variant: -ian for -yan, x for kh, g for gh, c for ts, Hov/Ov for
/// Hovh, ou for u, a doubled letter single.
fn variant(s: &str, rng: &mut StdRng) -> String {
    let rules: &[(&str, &str)] = &[
        ("yan", "ian"),
        ("Kh", "X"),
        ("kh", "x"),
        ("gh", "g"),
        ("Gh", "G"),
        ("ts", "c"),
        ("Ts", "Ts"),
        ("Hovh", "Hov"),
        ("Hovh", "Ov"),
        ("u", "ou"),
        ("nn", "n"),
        ("ss", "s"),
        ("y", "i"),
    ];
    let mut out = s.to_string();
    let mut applied = 0;
    for &(from, to) in rules {
        if out.contains(from) && rng.gen::<f64>() < 0.5 {
            out = out.replacen(from, to, 1);
            applied += 1;
            if applied == 2 {
                break;
            }
        }
    }
    out
}

/// One typing error: a letter dropped, doubled, swapped with the next or replaced.
fn typo(s: &str, rng: &mut StdRng) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() < 4 || rng.gen::<f64>() < 0.5 {
        return s.to_string();
    }
    let i = rng.gen_range(1..c.len() - 1);
    match rng.gen_range(0..4) {
        0 => {
            c.remove(i);
        }
        1 => c.insert(i, c[i]),
        2 => c.swap(i, i + 1),
        _ => c[i] = ['a', 'e', 'i', 'o', 'u', 'r', 'n'][rng.gen_range(0..7)],
    }
    c.into_iter().collect()
}

/// Generates about `records` rows (exactly `records` unless it is tiny) from `seed`.
pub fn generate(records: usize, seed: u64) -> Generated {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        places: places(records),
        next_person: 0,
        next_row: 0,
    };
    let mut rows: Vec<Row> = Vec::with_capacity(records + 8);
    let mut truth: Vec<u64> = Vec::with_capacity(records + 8);
    while rows.len() < records {
        let roll = g.rng.gen::<f64>();
        let kind = if roll < 0.6 {
            Kind::Killed
        } else if roll < 0.82 {
            Kind::Injured
        } else if roll < 0.97 {
            Kind::Missing
        } else {
            // Remains of someone nobody reported missing.
            let p = g.person(Kind::Killed);
            rows.push(g.remains(&p, false));
            truth.push(p.id);
            continue;
        };
        let mut group = vec![g.person(kind)];
        if kind == Kind::Killed && g.chance(0.12) {
            // A family killed together; its head is an adult.
            group[0].age = g.rng.gen_range(25..75);
            group.extend(family(&mut g, &group[0]));
        }
        for p in &group {
            let sources = match g.rng.gen_range(0..100) {
                0..=29 => 1,
                30..=64 => 2,
                65..=84 => 3,
                _ => 4,
            };
            for _ in 0..sources {
                rows.push(g.row(p));
                truth.push(p.id);
            }
            if p.kind == Kind::Missing && g.chance(0.6) {
                rows.push(g.remains(p, true));
                truth.push(p.id);
            }
        }
    }
    rows.truncate(records);
    truth.truncate(records);
    let records = rows.iter().map(Row::to_record).collect();
    Generated {
        rows,
        records,
        truth,
    }
}

/// Relatives killed with `head`: one surname, day and place; different given names and ages;
/// the children carry the father's name as patronymic.
fn family(g: &mut Gen, head: &Person) -> Vec<Person> {
    let n = g.rng.gen_range(1..=4);
    let mut out: Vec<Person> = Vec::new();
    let mut used = vec![(head.sex, head.given)];
    for k in 0..n {
        let mut p = g.person(Kind::Killed);
        if p.arab != head.arab {
            let (given, _, father) = g.names(head.arab, p.sex);
            (p.given, p.father) = (given, father);
            p.arab = head.arab;
        }
        p.surname = head.surname;
        p.day = head.day;
        p.place = head.place;
        p.cause = head.cause;
        p.seen = head.seen;
        let (given_n, men_n) = if p.arab {
            (
                if p.sex == Sex::Male {
                    ARAB_MEN.len()
                } else {
                    ARAB_WOMEN.len()
                },
                ARAB_MEN.len(),
            )
        } else {
            (
                if p.sex == Sex::Male {
                    MEN.len()
                } else {
                    WOMEN.len()
                },
                MEN.len(),
            )
        };
        // A different first name from everyone already in the family.
        let mut tries = 0;
        while used.contains(&(p.sex, p.given)) && tries < 50 {
            p.given = g.rng.gen_range(0..given_n);
            tries += 1;
        }
        used.push((p.sex, p.given));
        if k == 0 && head.sex == Sex::Male && p.sex == Sex::Female {
            // The spouse.
            p.age = (i64::from(head.age) + g.rng.gen_range(-6..=3)).clamp(18, 95) as u32;
        } else {
            // A child of the head (the head's given name as patronymic when male), at
            // least two years apart from everyone else in the family.
            let ages: Vec<u32> = std::iter::once(head.age)
                .chain(out.iter().map(|q| q.age))
                .collect();
            let mut tries = 0;
            loop {
                p.age = g.rng.gen_range(1..head.age.clamp(2, 40).max(2));
                tries += 1;
                if tries > 50 || ages.iter().all(|&a| a.abs_diff(p.age) >= 2) {
                    break;
                }
            }
            if head.sex == Sex::Male && !head.arab {
                p.father = head.given.min(men_n - 1);
            }
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_lists() {
        let a = generate(500, 7);
        let b = generate(500, 7);
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.truth, b.truth);
        assert_eq!(a.records.len(), 500);
        let c = generate(500, 8);
        assert_ne!(a.rows, c.rows);
    }

    #[test]
    fn csv_has_the_import_columns_and_a_row_per_record() {
        let g = generate(50, 1);
        let mut buf = Vec::new();
        g.write_csv(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), COLUMNS.join(","));
        assert_eq!(text.lines().count(), 51);
        let mut t = Vec::new();
        g.write_truth(&mut t).unwrap();
        assert!(String::from_utf8(t)
            .unwrap()
            .starts_with("source_id,person\n"));
    }

    #[test]
    fn remains_come_after_last_seen() {
        let g = generate(3000, 3);
        let mut checked = 0;
        for (i, r) in g.records.iter().enumerate() {
            if r.kind != Kind::Remains {
                continue;
            }
            for (j, m) in g.records.iter().enumerate() {
                if m.kind == Kind::Missing && g.truth[i] == g.truth[j] {
                    if let (Some(f), Some(l)) = (r.found_day, m.last_seen_day) {
                        assert!(f > l - Duration::days(4));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 20, "{checked}");
    }
}
