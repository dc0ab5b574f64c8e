//! Blocking: only pairs that share at least one cheap key are compared.
//!
//! Keys, OR-ed: two phonetic name tokens (order-insensitive); a phonetic name token and a
//! window of days; the place's words and a window of days; sex, ten-year age band and place;
//! for remains, a geographic cell and sex (remains key the neighbouring cells too, so a
//! missing person last seen across a cell border is still kept; a missing person without a
//! position is placed where the other records naming the same place are); for remains and missing
//! persons, each described item (clothing, effects, marks) and sex, and the place and sex.
//! Day windows come in two
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

/// A key entry: key, record index, and which pairs of the key's records count.
type Entry = (u64, u32, Pairs);

/// Which pairs of records sharing a key are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pairs {
    /// Every pair.
    All,
    /// Remains with a record that is not remains.
    RemainsWithOther,
    /// Pairs where a side has no day (the key has none; dated pairs have dated keys).
    Undated,
}

fn keys(i: u32, p: &Prepared, out: &mut Vec<Entry>) {
    keys_of(b"", i, p, out);
}

/// The keys of one record; `only` limits them to one class (for measuring), empty for all.
fn keys_of(only: &[u8], i: u32, p: &Prepared, out: &mut Vec<Entry>) {
    let mut add = |class: &[u8], parts: &[&[u8]], pairs: Pairs| {
        if only.is_empty() || only == class {
            let mut all: Vec<&[u8]> = vec![class];
            all.extend_from_slice(parts);
            out.push((hash(&all), i, pairs));
        }
    };
    let windows = |d: i32| [(d.div_euclid(8), 0u8), ((d + 4).div_euclid(8), 1u8)];
    let place: Vec<u8> = p.place.iter().flat_map(|w| w.to_le_bytes()).collect();
    let remains = p.kind == Kind::Remains;
    if let Some(n) = &p.name {
        // A name's first six tokens: the keys grow with the square of the count.
        let ph: Vec<String> = n.core.iter().take(6).map(|t| names::phonetic(t)).collect();
        for x in 0..ph.len() {
            for y in x + 1..ph.len() {
                let (s, t) = if ph[x] <= ph[y] {
                    (&ph[x], &ph[y])
                } else {
                    (&ph[y], &ph[x])
                };
                // Both names and a month (two offsets: 15 days apart always share one); pairs
                // where a side has no day share the key without a day.
                if let Some(d) = p.day {
                    for (w, o) in [(d.div_euclid(30), 0u8), ((d + 15).div_euclid(30), 1u8)] {
                        add(
                            b"n2",
                            &[s.as_bytes(), t.as_bytes(), &w.to_le_bytes(), &[o]],
                            Pairs::All,
                        );
                    }
                }
                add(b"n2-", &[s.as_bytes(), t.as_bytes()], Pairs::Undated);
            }
            // One name and the other's initial within a few days: the other misspelled
            // past its phonetic key.
            if let Some(d) = p.day {
                let initials: Vec<u8> = (0..ph.len())
                    .filter(|&y| y != x)
                    .filter_map(|y| ph[y].bytes().next())
                    .collect();
                for (w, o) in windows(d) {
                    if initials.is_empty() {
                        add(
                            b"nd",
                            &[ph[x].as_bytes(), &w.to_le_bytes(), &[o]],
                            Pairs::All,
                        );
                    }
                    for c in &initials {
                        add(
                            b"nd",
                            &[ph[x].as_bytes(), &[*c], &w.to_le_bytes(), &[o]],
                            Pairs::All,
                        );
                    }
                }
            }
        }
    }
    if !place.is_empty() {
        if let Some(d) = p.day {
            for (w, o) in windows(d) {
                add(b"pd", &[&place, &w.to_le_bytes(), &[o]], Pairs::All);
            }
        }
    }
    let sexes: &[u8] = match p.sex {
        Some(crate::Sex::Female) => b"f",
        Some(crate::Sex::Male) => b"m",
        None => b"fm",
    };
    // Remains-only keys: remains with missing persons (the ante-mortem side).
    let am_pm = remains || p.kind == Kind::Missing;
    if am_pm && !place.is_empty() {
        for s in sexes {
            add(b"ps", &[&[*s], &place], Pairs::RemainsWithOther);
        }
    }
    if let Some(age) = p.age.filter(|_| am_pm) {
        if !place.is_empty() {
            for s in sexes {
                // Two overlapping ten-year bands: ages five apart always share one.
                for band in [age / 10, age.saturating_add(5) / 10 + 100] {
                    add(
                        b"sap",
                        &[&[*s], &band.to_le_bytes(), &place],
                        Pairs::RemainsWithOther,
                    );
                }
            }
        }
    }
    // Remains ↔ ante-mortem descriptions: each described item ("blue jeans", "gold tooth")
    // within a cell of one degree (for a missing person without a position, where the records
    // naming the same place are); one whose place is unknown too keys the item alone, and
    // every remains keys that too.
    if am_pm {
        let region = p
            .near
            .map(|(lat, lon)| (lat.floor() as i64, lon.floor() as i64));
        for item in p.clothing.iter().chain(&p.effects).chain(&p.marks) {
            let joined: Vec<u8> = item.iter().flat_map(|w| w.to_le_bytes()).collect();
            for s in sexes {
                if let Some((y, x)) = region {
                    let (y, x) = (y.to_le_bytes(), x.to_le_bytes());
                    add(b"item", &[&[*s], &joined, &y, &x], Pairs::RemainsWithOther);
                }
                if remains || region.is_none() {
                    add(b"item", &[&[*s], &joined], Pairs::RemainsWithOther);
                }
            }
        }
    }
    if let Some((lat, lon)) = p.near.filter(|_| am_pm) {
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
                add(
                    b"geo",
                    &[&[*s], &y.to_le_bytes(), &x.to_le_bytes()],
                    Pairs::RemainsWithOther,
                );
            }
        }
        if remains {
            if let Some(f) = p.found {
                for (w, o) in windows(f) {
                    add(
                        b"gd",
                        &[&cy.to_le_bytes(), &cx.to_le_bytes(), &w.to_le_bytes(), &[o]],
                        Pairs::All,
                    );
                }
            }
        }
    }
}

/// Whether a pair of records sharing a key of this kind is kept.
fn keep(pairs: Pairs, a: &Prepared, b: &Prepared) -> bool {
    match pairs {
        Pairs::All => true,
        Pairs::RemainsWithOther => (a.kind == Kind::Remains) != (b.kind == Kind::Remains),
        Pairs::Undated => a.day.is_none() || b.day.is_none(),
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
                    if !keep(x.2.max(y.2), &prep[a as usize], &prep[b as usize]) {
                        continue;
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

#[cfg(test)]
mod diagnose {
    use super::*;

    /// Pairs each key class keeps, and how many true pairs only it finds (run by hand).
    #[test]
    #[ignore]
    fn pairs_per_key_class() {
        let n: usize = std::env::var("N")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000);
        let g = crate::generate::generate(n, 42);
        let prep = crate::prepare::prepare(&g.records);
        for class in [
            &b"n2"[..],
            b"n2-",
            b"nd",
            b"pd",
            b"sap",
            b"ps",
            b"geo",
            b"gd",
            b"item",
        ] {
            let mut entries: Vec<Entry> = Vec::new();
            for (i, p) in prep.iter().enumerate() {
                keys_of(class, i as u32, p, &mut entries);
            }
            entries.sort_unstable();
            entries.dedup_by(|x, y| x.0 == y.0 && x.1 == y.1);
            let groups: Vec<&[Entry]> = entries.chunk_by(|x, y| x.0 == y.0).collect();
            let mut kept = 0usize;
            let mut true_kept = 0usize;
            let mut largest = 0usize;
            for gr in groups.iter().filter(|gr| gr.len() <= MAX_BLOCK) {
                largest = largest.max(gr.len());
                for (k, x) in gr.iter().enumerate() {
                    for y in &gr[k + 1..] {
                        let (pa, pb) = (&prep[x.1 as usize], &prep[y.1 as usize]);
                        if !keep(x.2.max(y.2), pa, pb) {
                            continue;
                        }
                        kept += 1;
                        if g.truth[x.1 as usize] == g.truth[y.1 as usize] {
                            true_kept += 1;
                        }
                    }
                }
            }
            let dropped = groups.iter().filter(|gr| gr.len() > MAX_BLOCK).count();
            eprintln!(
                "{}: {} keys, {kept} pairs, {true_kept} true, largest {largest}, {dropped} dropped",
                String::from_utf8_lossy(class),
                groups.len()
            );
        }
    }
}
