//! Comparison levels: each field of a pair falls into one level (0 is "missing on a side").
//!
//! Two sets of fields: record ↔ record (duplicates of one person) and remains ↔ record (the
//! ante-mortem/post-mortem comparison, where the remains are usually unnamed).

use crate::names::{self, NameMatch};
use crate::prepare::{km, Prepared, Word};
use crate::Kind;

/// A field compared in one of the two models.
#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    /// Level names; index 0 is "missing on a side" and weighs nothing.
    pub levels: &'static [&'static str],
    /// Starting m for each level (index 0 unused), before expectation–maximisation.
    pub init_m: &'static [f64],
    /// The prior m per level (index 0 unused): how often a true match shows the level, from
    /// what the level means. Estimates are shrunk toward it (see `fs::M_PSEUDO`), so it rules
    /// a small list and the data a large one.
    pub m_prior: &'static [f64],
    /// The prior u per level (index 0 unused): how often two different people show the level
    /// in a casualty list of one region and a few months (see `fs::U_PSEUDO`).
    pub u_prior: &'static [f64],
}

/// Which set of fields a pair is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Model {
    /// Record ↔ record.
    Dup = 0,
    /// Remains ↔ record.
    Id = 1,
}

pub(crate) const NAME_LEVELS: &[&str] = &[
    "missing",
    "exact",
    "close",
    "similar",
    "rough",
    "surname_only",
    "different",
];
const NAME_M: &[f64] = &[0.0, 0.55, 0.25, 0.1, 0.05, 0.03, 0.02];
/// A true match's name after transliteration: mostly exact or close.
const NAME_M_PRIOR: &[f64] = &[0.0, 0.6, 0.2, 0.08, 0.05, 0.04, 0.03];
/// Two different people: an exact full name is rare (before the term-frequency adjustment);
/// one shared token (a surname) is common in a region.
const NAME_U_PRIOR: &[f64] = &[0.0, 0.0005, 0.001, 0.002, 0.01, 0.04, 0.9465];

pub(crate) const DUP: &[Field] = &[
    Field {
        name: "name",
        levels: NAME_LEVELS,
        init_m: NAME_M,
        m_prior: NAME_M_PRIOR,
        u_prior: NAME_U_PRIOR,
    },
    Field {
        name: "sex",
        levels: &["missing", "same", "different"],
        init_m: &[0.0, 0.97, 0.03],
        m_prior: &[0.0, 0.97, 0.03],
        u_prior: &[0.0, 0.5, 0.5],
    },
    Field {
        name: "age",
        levels: &[
            "missing",
            "exact",
            "1_year",
            "2_years",
            "5_years",
            "same_group",
            "far",
        ],
        init_m: &[0.0, 0.6, 0.2, 0.1, 0.04, 0.04, 0.02],
        m_prior: &[0.0, 0.55, 0.25, 0.1, 0.06, 0.035, 0.005],
        u_prior: &[0.0, 0.02, 0.04, 0.04, 0.1, 0.15, 0.65],
    },
    Field {
        name: "date",
        levels: &["missing", "same_day", "3_days", "10_days", "60_days", "far"],
        init_m: &[0.0, 0.7, 0.2, 0.05, 0.03, 0.02],
        // No session trains the date (each selects on it): this m holds at every size.
        m_prior: &[0.0, 0.7, 0.2, 0.05, 0.03, 0.02],
        u_prior: &[0.0, 0.02, 0.08, 0.15, 0.4, 0.35],
    },
    Field {
        name: "place",
        levels: &["missing", "same", "shared_word", "different"],
        init_m: &[0.0, 0.8, 0.1, 0.1],
        m_prior: &[0.0, 0.8, 0.1, 0.1],
        u_prior: &[0.0, 0.1, 0.05, 0.85],
    },
    Field {
        name: "distance",
        levels: &["missing", "1_km", "5_km", "25_km", "far"],
        init_m: &[0.0, 0.6, 0.25, 0.1, 0.05],
        m_prior: &[0.0, 0.6, 0.25, 0.1, 0.05],
        u_prior: &[0.0, 0.02, 0.08, 0.3, 0.6],
    },
    Field {
        name: "kind",
        levels: &["missing", "same", "different"],
        init_m: &[0.0, 0.95, 0.05],
        m_prior: &[0.0, 0.9, 0.1],
        u_prior: &[0.0, 0.6, 0.4],
    },
    Field {
        name: "height",
        levels: &["missing", "3_cm", "8_cm", "15_cm", "far"],
        init_m: &[0.0, 0.6, 0.25, 0.1, 0.05],
        m_prior: &[0.0, 0.6, 0.25, 0.1, 0.05],
        u_prior: &[0.0, 0.25, 0.25, 0.25, 0.25],
    },
    Field {
        name: "description",
        levels: &["missing", "most", "some", "none"],
        init_m: &[0.0, 0.6, 0.3, 0.1],
        m_prior: &[0.0, 0.6, 0.3, 0.1],
        u_prior: &[0.0, 0.05, 0.15, 0.8],
    },
    Field {
        name: "patronymic",
        levels: &["missing", "same", "different"],
        init_m: &[0.0, 0.9, 0.1],
        m_prior: &[0.0, 0.9, 0.1],
        u_prior: &[0.0, 0.1, 0.9],
    },
];

pub(crate) const ID: &[Field] = &[
    Field {
        name: "sex",
        levels: &["missing", "same", "different"],
        init_m: &[0.0, 0.97, 0.03],
        m_prior: &[0.0, 0.97, 0.03],
        u_prior: &[0.0, 0.5, 0.5],
    },
    Field {
        name: "age",
        levels: &[
            "missing",
            "2_years",
            "5_years",
            "10_years",
            "far",
            "same_group",
            "other_group",
        ],
        init_m: &[0.0, 0.5, 0.3, 0.1, 0.02, 0.06, 0.02],
        m_prior: &[0.0, 0.35, 0.17, 0.06, 0.02, 0.38, 0.02],
        u_prior: &[0.0, 0.05, 0.07, 0.1, 0.38, 0.24, 0.16],
    },
    Field {
        name: "height",
        levels: &["missing", "4_cm", "8_cm", "15_cm", "far"],
        init_m: &[0.0, 0.5, 0.3, 0.15, 0.05],
        m_prior: &[0.0, 0.55, 0.3, 0.12, 0.03],
        u_prior: &[0.0, 0.22, 0.21, 0.29, 0.28],
    },
    Field {
        name: "order",
        levels: &[
            "missing",
            "found_before_last_seen",
            "30_days",
            "180_days",
            "2_years",
            "later",
        ],
        init_m: &[0.0, 0.01, 0.2, 0.4, 0.35, 0.04],
        m_prior: &[0.0, 0.0005, 0.25, 0.4, 0.3, 0.0495],
        u_prior: &[0.0, 0.3, 0.1, 0.3, 0.25, 0.05],
    },
    Field {
        name: "distance",
        levels: &["missing", "2_km", "5_km", "15_km", "50_km", "far"],
        init_m: &[0.0, 0.4, 0.3, 0.2, 0.07, 0.03],
        m_prior: &[0.0, 0.4, 0.3, 0.2, 0.07, 0.03],
        u_prior: &[0.0, 0.01, 0.03, 0.1, 0.3, 0.56],
    },
    Field {
        name: "place",
        levels: &["missing", "same", "shared_word", "different"],
        init_m: &[0.0, 0.6, 0.2, 0.2],
        m_prior: &[0.0, 0.6, 0.2, 0.2],
        u_prior: &[0.0, 0.05, 0.05, 0.9],
    },
    Field {
        name: "clothing",
        levels: &["missing", "most", "some", "none"],
        init_m: &[0.0, 0.5, 0.35, 0.15],
        m_prior: &[0.0, 0.5, 0.35, 0.15],
        u_prior: &[0.0, 0.05, 0.1, 0.85],
    },
    Field {
        name: "effects",
        levels: &["missing", "most", "some", "none"],
        init_m: &[0.0, 0.5, 0.3, 0.2],
        m_prior: &[0.0, 0.5, 0.3, 0.2],
        u_prior: &[0.0, 0.05, 0.1, 0.85],
    },
    Field {
        name: "marks",
        levels: &["missing", "most", "some", "none"],
        init_m: &[0.0, 0.5, 0.3, 0.2],
        m_prior: &[0.0, 0.5, 0.3, 0.2],
        u_prior: &[0.0, 0.02, 0.05, 0.93],
    },
    Field {
        name: "name",
        levels: NAME_LEVELS,
        init_m: NAME_M,
        m_prior: NAME_M_PRIOR,
        u_prior: NAME_U_PRIOR,
    },
];

/// Set in an `Id` pattern when the other record is a missing person: the model is trained on
/// those pairs (remains ↔ killed pairs hold too little to learn from).
pub(crate) const MISSING_BIT: u32 = 30;

/// A pair's comparison: its model, a level per field packed 3 bits each, and the name's
/// term-frequency adjustment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gamma {
    pub model: Model,
    pub pattern: u32,
    pub tf: f32,
}

impl Gamma {
    pub fn level(&self, field: usize) -> usize {
        ((self.pattern >> (3 * field)) & 7) as usize
    }
}

fn pack(levels: &[u8]) -> u32 {
    levels
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, &l)| acc | (u32::from(l) << (3 * i)))
}

/// Which model compares records `a` and `b`, and which of them is the remains for `Id`.
pub(crate) fn model_of(a: &Prepared, b: &Prepared) -> (Model, bool) {
    match (a.kind == Kind::Remains, b.kind == Kind::Remains) {
        (true, false) => (Model::Id, false),
        (false, true) => (Model::Id, true),
        _ => (Model::Dup, false),
    }
}

fn name_level(m: Option<NameMatch>) -> u8 {
    let Some(m) = m else { return 0 };
    if m.matched == 1 {
        // A single token ("Aram") says little on its own.
        return if m.min >= 0.92 { 4 } else { 6 };
    }
    if m.min >= 0.995 {
        1
    } else if m.min >= 0.92 {
        2
    } else if m.min >= 0.85 {
        3
    } else if m.min >= 0.75 && m.max < 0.92 {
        4
    } else if m.max >= 0.92 {
        // One name shared and another clearly not (Aram and Armen Hovhannisyan): what a
        // family shares, whatever the other names' similarity.
        5
    } else {
        6
    }
}

/// Term-frequency adjustment for an agreeing name: rare tokens weigh more, common ones less,
/// the average token nothing (`mean_log_tf` is the mean of log2 frequency over all tokens).
fn name_tf(a: &Prepared, b: &Prepared, m: &NameMatch, mean_log_tf: f64) -> f32 {
    let tf = if m.a_smaller { &a.tf } else { &b.tf };
    let mut adj = 0.0;
    for (i, f) in tf.iter().enumerate().take(6) {
        if m.agreeing & (1 << i) != 0 {
            adj += mean_log_tf - f.max(1e-9).log2();
        }
    }
    adj.clamp(-4.0, 6.0) as f32
}

/// True when every word of the shorter item is in the other ("jeans" and "blue jeans").
fn same_item(a: &[Word], b: &[Word]) -> bool {
    let (s, l) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    s.iter().all(|w| l.binary_search(w).is_ok())
}

fn overlap(a: &[Vec<Word>], b: &[Vec<Word>]) -> u8 {
    overlap_of(a.iter(), b.iter())
}

/// Items of `a` found in `b`: most (half of the smaller side or more), some, none.
fn overlap_of<'a, I, J>(a: I, b: J) -> u8
where
    I: Iterator<Item = &'a Vec<Word>> + Clone,
    J: Iterator<Item = &'a Vec<Word>> + Clone,
{
    let (na, nb) = (a.clone().count(), b.clone().count());
    if na == 0 || nb == 0 {
        return 0;
    }
    let shared = a.filter(|x| b.clone().any(|y| same_item(x, y))).count();
    let smaller = na.min(nb);
    if shared * 2 >= smaller && shared > 0 {
        1
    } else if shared > 0 {
        2
    } else {
        3
    }
}

/// Fathers' names: "Gevorgi" and "Геворгович" meet as "gevorg".
fn patronymic(a: &Prepared, b: &Prepared) -> u8 {
    match (&a.name, &b.name) {
        (Some(x), Some(y)) => match (x.patronymic.first(), y.patronymic.first()) {
            (Some(p), Some(q)) => {
                if names::token_similarity(p, q) >= 0.9 {
                    1
                } else {
                    2
                }
            }
            _ => 0,
        },
        _ => 0,
    }
}

fn place_level(a: &[Word], b: &[Word]) -> u8 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    if a == b {
        return 1;
    }
    let shared = a.iter().filter(|w| b.binary_search(w).is_ok()).count();
    if shared > 0 {
        2
    } else {
        3
    }
}

fn bucket(x: f64, limits: &[f64]) -> u8 {
    for (i, &l) in limits.iter().enumerate() {
        if x <= l {
            return i as u8 + 1;
        }
    }
    limits.len() as u8 + 1
}

/// Compares two records; for `Id`, `a` must be the remains.
pub(crate) fn compare(model: Model, a: &Prepared, b: &Prepared, mean_log_tf: f64) -> Gamma {
    let nm = match (&a.name, &b.name) {
        (Some(x), Some(y)) => names::compare(x, y),
        _ => None,
    };
    let name = name_level(nm);
    let tf = match nm {
        Some(m) if name <= 2 && name > 0 => name_tf(a, b, &m, mean_log_tf),
        _ => 0.0,
    };
    let sex = match (a.sex, b.sex) {
        (Some(x), Some(y)) => 1 + u8::from(x != y),
        _ => 0,
    };
    let height = match (a.height, b.height) {
        (Some(x), Some(y)) => bucket((x - y).abs(), &[3.0, 8.0, 15.0]),
        _ => 0,
    };
    let dist = match (a.latlon, b.latlon) {
        (Some(x), Some(y)) => Some(km(x, y)),
        _ => None,
    };
    // Both models have ten fields.
    let levels: [u8; 10] = match model {
        Model::Dup => {
            let age = match (a.age, b.age) {
                (Some(x), Some(y)) => match x.abs_diff(y) {
                    0 => 1,
                    1 => 2,
                    2 => 3,
                    3..=5 => 4,
                    _ => 6,
                },
                _ => match (a.group, b.group) {
                    (Some(x), Some(y)) if x == y => 5,
                    (Some(_), Some(_)) => 6,
                    _ => 0,
                },
            };
            let date = match (a.day, b.day) {
                (Some(x), Some(y)) => bucket(f64::from((x - y).abs()), &[0.0, 3.0, 10.0, 60.0]),
                _ => 0,
            };
            let kind = u8::from(a.kind != b.kind) + 1;
            fn all(p: &Prepared) -> impl Iterator<Item = &Vec<Word>> + Clone {
                p.clothing.iter().chain(&p.effects).chain(&p.marks)
            }
            // Names that disagree (one shared, another not): the day, the place and the
            // father's name are what a family killed together shares too, so they are not
            // counted: the independence Fellegi–Sunter assumes fails exactly there.
            let family_like = name >= 5;
            let unless_family = |level: u8| if family_like { 0 } else { level };
            [
                name,
                sex,
                age,
                unless_family(date),
                unless_family(place_level(&a.place, &b.place)),
                unless_family(dist.map_or(0, |d| bucket(d, &[1.0, 5.0, 25.0]))),
                kind,
                height,
                overlap_of(all(a), all(b)),
                unless_family(patronymic(a, b)),
            ]
        }
        Model::Id => {
            let age = match (a.age, b.age) {
                (Some(x), Some(y)) => bucket(f64::from(x.abs_diff(y)), &[2.0, 5.0, 10.0]),
                _ => match (a.group, b.group) {
                    (Some(x), Some(y)) if x == y => 5,
                    (Some(_), Some(_)) => 6,
                    _ => 0,
                },
            };
            let order = match (a.found, b.last_seen) {
                (Some(f), Some(l)) if f < l - 1 => 1,
                (Some(f), Some(l)) => 1 + bucket(f64::from(f - l), &[30.0, 180.0, 730.0]),
                _ => 0,
            };
            let height = match (a.height, b.height) {
                (Some(x), Some(y)) => bucket((x - y).abs(), &[4.0, 8.0, 15.0]),
                _ => 0,
            };
            [
                sex,
                age,
                height,
                order,
                dist.map_or(0, |d| bucket(d, &[2.0, 5.0, 15.0, 50.0])),
                place_level(&a.place, &b.place),
                overlap(&a.clothing, &b.clothing),
                overlap(&a.effects, &b.effects),
                overlap(&a.marks, &b.marks),
                name,
            ]
        }
    };
    let missing = model == Model::Id && b.kind == Kind::Missing;
    Gamma {
        model,
        pattern: pack(&levels) | (u32::from(missing) << MISSING_BIT),
        tf,
    }
}

/// A phrase for people about one field of a compared pair (`a` the remains for `Id`).
pub(crate) fn phrase(model: Model, field: &str, level: &str, a: &Prepared, b: &Prepared) -> String {
    let days = |x: Option<i32>, y: Option<i32>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs(),
        _ => 0,
    };
    match field {
        "name" => {
            let m = match (&a.name, &b.name) {
                (Some(x), Some(y)) => names::compare(x, y),
                _ => None,
            };
            match (level, m) {
                ("surname_only", _) => "one name shared, another differs".to_string(),
                (_, Some(m)) => format!("name {:.2} Jaro–Winkler after transliteration", m.min),
                _ => "name".to_string(),
            }
        }
        "sex" => match level {
            "same" => "same sex".to_string(),
            _ => "different sex".to_string(),
        },
        "age" => match (a.age, b.age) {
            (Some(x), Some(y)) => format!("ages {x}/{y}"),
            _ => match (a.group, b.group) {
                (Some(x), Some(y)) => format!("age groups {}/{}", x.as_str(), y.as_str()),
                _ => "age".to_string(),
            },
        },
        "date" => match days(a.day, b.day) {
            0 => "same day".to_string(),
            1 => "1 day apart".to_string(),
            d => format!("{d} days apart"),
        },
        "order" => match (a.found, b.last_seen) {
            (Some(f), Some(l)) if f < l - 1 => format!("found {} days before last seen", l - f),
            (Some(f), Some(l)) => format!("found {} days after last seen", f - l),
            _ => "dates".to_string(),
        },
        "place" => match level {
            "same" => "same place".to_string(),
            "shared_word" => "places share a word".to_string(),
            _ => "different places".to_string(),
        },
        "distance" => match (a.latlon, b.latlon) {
            (Some(x), Some(y)) => {
                let d = km(x, y);
                if model == Model::Id {
                    format!("found {d:.1} km from where last seen")
                } else {
                    format!("{d:.1} km apart")
                }
            }
            _ => "distance".to_string(),
        },
        "height" => match (a.height, b.height) {
            (Some(x), Some(y)) => format!("heights {x:.0}/{y:.0} cm"),
            _ => "height".to_string(),
        },
        "kind" => format!("{}/{}", a.kind.as_str(), b.kind.as_str()),
        "patronymic" => match level {
            "same" => "same father's name".to_string(),
            _ => "different fathers' names".to_string(),
        },
        f => format!(
            "{f}: {}",
            match level {
                "most" => "most items shared",
                "some" => "some items shared",
                _ => "nothing shared",
            }
        ),
    }
}
