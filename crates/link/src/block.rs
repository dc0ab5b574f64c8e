//! Blocking: only pairs that share at least one cheap key are compared.
//!
//! Keys, OR-ed: two phonetic name tokens (order-insensitive); a phonetic name token and a
//! window of days; the place's words and a window of days; sex, ten-year age band and place;
//! for remains, a geographic cell and sex (remains key the neighbouring cells too, so a
//! missing person last seen across a cell border is still kept); for remains and missing
//! persons, each described item (clothing, effects, marks) and sex. Day windows come in two
//! offsets so that two days at most 4 apart always share one. A key held by more than
//! [`MAX_BLOCK`] records is too common to tell anyone apart and is dropped.

use rayon::prelude::*;

use crate::names;
use crate::prepare::Prepared;
use crate::Kind;

/// Keys held by more records than this are dropped (their pairs are left to other keys).
pub(crate) const MAX_BLOCK: usize = 400;

fn hash(parts: &[&[u8]]) -> u64 {
    // FNV-1a: keys only need to be spread, not secret.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A key entry: key, record index, and whether only pairs with a remains record count.
type Entry = (u64, u32, bool);

fn keys(i: u32, p: &Prepared, out: &mut Vec<Entry>) {
    let windows = |d: i32| [(d.div_euclid(8), 0u8), ((d + 4).div_euclid(8), 1u8)];
    let place = p.place.join(" ");
    if let Some(n) = &p.name {
        let ph: Vec<String> = n.core.iter().map(|t| names::phonetic(t)).collect();
        for x in 0..ph.len() {
            for y in x + 1..ph.len() {
                let (s, t) = if ph[x] <= ph[y] {
                    (&ph[x], &ph[y])
                } else {
                    (&ph[y], &ph[x])
                };
                out.push((hash(&[b"n2", s.as_bytes(), t.as_bytes()]), i, false));
            }
            if let Some(d) = p.day {
                for (w, o) in windows(d) {
                    out.push((
                        hash(&[b"nd", ph[x].as_bytes(), &w.to_le_bytes(), &[o]]),
                        i,
                        false,
                    ));
                }
            }
        }
    }
    if !place.is_empty() {
        if let Some(d) = p.day {
            for (w, o) in windows(d) {
                out.push((
                    hash(&[b"pd", place.as_bytes(), &w.to_le_bytes(), &[o]]),
                    i,
                    false,
                ));
            }
        }
    }
    let sexes: &[u8] = match p.sex {
        Some(crate::Sex::Female) => b"f",
        Some(crate::Sex::Male) => b"m",
        None => b"fm",
    };
    let remains = p.kind == Kind::Remains;
    if let Some(age) = p.age {
        if !place.is_empty() {
            for s in sexes {
                // Two overlapping ten-year bands: ages five apart always share one.
                for band in [age / 10, (age + 5) / 10 + 100] {
                    out.push((
                        hash(&[b"sap", &[*s], &band.to_le_bytes(), place.as_bytes()]),
                        i,
                        remains,
                    ));
                }
            }
        }
    }
    // Remains ↔ ante-mortem descriptions: each described item ("blue jeans", "gold tooth").
    if remains || p.kind == Kind::Missing {
        for item in p.clothing.iter().chain(&p.effects).chain(&p.marks) {
            let joined = item.join(" ");
            for s in sexes {
                out.push((hash(&[b"item", &[*s], joined.as_bytes()]), i, true));
            }
        }
    }
    if let Some((lat, lon)) = p.latlon {
        let (cy, cx) = ((lat * 10.0).floor() as i64, (lon * 10.0).floor() as i64);
        let cells: Vec<(i64, i64)> = if remains {
            (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (cy + dy, cx + dx)))
                .collect()
        } else {
            vec![(cy, cx)]
        };
        for (y, x) in cells {
            for s in sexes {
                out.push((
                    hash(&[b"geo", &[*s], &y.to_le_bytes(), &x.to_le_bytes()]),
                    i,
                    true,
                ));
            }
        }
        if remains {
            if let Some(f) = p.found {
                for (w, o) in windows(f) {
                    out.push((
                        hash(&[
                            b"gd",
                            &cy.to_le_bytes(),
                            &cx.to_le_bytes(),
                            &w.to_le_bytes(),
                            &[o],
                        ]),
                        i,
                        false,
                    ));
                }
            }
        }
    }
}

/// The blocked pairs `(a, b)` with `a < b`, sorted and without repeats.
pub(crate) fn pairs(prep: &[Prepared]) -> Vec<(u32, u32)> {
    let mut entries: Vec<Entry> = prep
        .par_iter()
        .enumerate()
        .fold(Vec::new, |mut v, (i, p)| {
            keys(i as u32, p, &mut v);
            v
        })
        .reduce(Vec::new, |mut a, mut b| {
            a.append(&mut b);
            a
        });
    entries.par_sort_unstable();
    entries.dedup_by(|x, y| x.0 == y.0 && x.1 == y.1);
    let mut groups: Vec<&[Entry]> = entries.chunk_by(|x, y| x.0 == y.0).collect();
    groups.retain(|g| g.len() > 1 && g.len() <= MAX_BLOCK);
    let mut out: Vec<(u32, u32)> = groups
        .par_iter()
        .fold(Vec::new, |mut v, g| {
            for (k, x) in g.iter().enumerate() {
                for y in &g[k + 1..] {
                    let (a, b) = (x.1.min(y.1), x.1.max(y.1));
                    if x.2 || y.2 {
                        // Geographic and age-band keys pair remains with others only.
                        let ra = prep[a as usize].kind == Kind::Remains;
                        let rb = prep[b as usize].kind == Kind::Remains;
                        if ra == rb {
                            continue;
                        }
                    }
                    v.push((a, b));
                }
            }
            v
        })
        .reduce(Vec::new, |mut a, mut b| {
            a.append(&mut b);
            a
        });
    out.par_sort_unstable();
    out.dedup();
    out
}
