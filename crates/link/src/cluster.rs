//! Persons from pairs: the office's decisions first, then candidates strongest first, never
//! across a `distinct` decision and never through a chain whose ends contradict each other.

use std::collections::{HashMap, HashSet};

use crate::compare::{self, Model};
use crate::prepare::{prepare, Prepared};
use crate::{Candidate, Decision, Record, Relation};

/// How close (in bits of match weight) a contradicting second link must come to a record's
/// best link to make the record ambiguous.
const AMBIGUOUS_BITS: f64 = 2.0;

/// Union–find with the members of each root kept, for the guards.
struct Sets {
    parent: Vec<usize>,
    members: Vec<Vec<usize>>,
}

impl Sets {
    fn new(n: usize) -> Sets {
        Sets {
            parent: (0..n).collect(),
            members: (0..n).map(|i| vec![i]).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.members[ra].len() >= self.members[rb].len() {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small] = big;
        let moved = std::mem::take(&mut self.members[small]);
        self.members[big].extend(moved);
    }
}

/// The persons the office's decisions already make, and the `distinct` decisions between them.
pub(crate) struct Decided {
    root: Vec<usize>,
    distinct: HashSet<(usize, usize)>,
    decided: HashSet<(usize, usize)>,
}

impl Decided {
    /// True when the pair must not be proposed: decided, already one person, or separated.
    pub fn excludes(&self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.root[a], self.root[b]);
        ra == rb
            || self.decided.contains(&(a.min(b), a.max(b)))
            || self.distinct.contains(&(ra.min(rb), ra.max(rb)))
    }
}

/// Joins the decided `same_person` and `identifies` pairs; decisions naming a record out of
/// range are ignored.
pub(crate) fn decided(n: usize, decisions: &[Decision]) -> Decided {
    let mut sets = Sets::new(n);
    let valid = decisions.iter().filter(|d| d.a < n && d.b < n);
    for d in valid.clone() {
        if d.relation != Relation::Distinct {
            sets.union(d.a, d.b);
        }
    }
    let root: Vec<usize> = (0..n).map(|i| sets.find(i)).collect();
    let distinct = valid
        .clone()
        .filter(|d| d.relation == Relation::Distinct)
        .map(|d| {
            let (ra, rb) = (root[d.a], root[d.b]);
            (ra.min(rb), ra.max(rb))
        })
        .collect();
    let decided = crate::fs::pair_set(valid.map(|d| (d.a, d.b)));
    Decided {
        root,
        distinct,
        decided,
    }
}

/// A hard contradiction between two records that no chain of likely pairs may bridge: names
/// that differ, different sexes, ages far apart, remains found before the person was last seen.
fn contradicts(a: &Prepared, b: &Prepared) -> bool {
    let (model, swap) = compare::model_of(a, b);
    let (a, b) = if swap { (b, a) } else { (a, b) };
    if let (Some(x), Some(y)) = (a.sex, b.sex) {
        if x != y {
            return true;
        }
    }
    if let (Some(x), Some(y)) = (&a.name, &b.name) {
        if let Some(m) = crate::names::compare(x, y) {
            if m.matched >= 2 && m.min < 0.75 {
                return true;
            }
        }
    }
    let age_gap = if model == Model::Id { 15 } else { 8 };
    if let (Some(x), Some(y)) = (a.age, b.age) {
        if x.abs_diff(y) > age_gap {
            return true;
        }
    }
    if model == Model::Id {
        if let (Some(f), Some(l)) = (a.found, b.last_seen) {
            if f < l - 1 {
                return true;
            }
        }
    }
    false
}

/// A cluster id per record: the smallest record index of its person.
///
/// Records are joined by the decided `same_person` and `identifies` pairs, then by candidates
/// with `probability >= threshold`, strongest first. Two groups are never joined when a
/// `distinct` decision separates any of their members, nor when any two of their members
/// contradict each other outright (different names, sexes, ages far apart, remains found before
/// the person was last seen), so chains of likely pairs cannot bridge two people; and at least
/// a third of the pairs across the two groups must be candidates at `threshold` themselves.
/// Candidates below `threshold` but in the list count as evidence against: a pair across the
/// two groups with a probability under 0.05 blocks the join too, so pass the candidates from a
/// low `min_probability` (0.01) for the guards to see the weak pairs. A record whose strong
/// links reach two records that contradict each other, within 4× odds, joins neither.
pub fn clusters(
    records: &[Record],
    decisions: &[Decision],
    candidates: &[Candidate],
    threshold: f64,
) -> Vec<usize> {
    let n = records.len();
    let prep = prepare(records);
    let mut sets = Sets::new(n);
    let valid: Vec<&Decision> = decisions.iter().filter(|d| d.a < n && d.b < n).collect();
    for d in &valid {
        if d.relation != Relation::Distinct {
            sets.union(d.a, d.b);
        }
    }
    let distinct: HashSet<(usize, usize)> = crate::fs::pair_set(
        valid
            .iter()
            .filter(|d| d.relation == Relation::Distinct)
            .map(|d| (d.a, d.b)),
    );
    let known: HashMap<(usize, usize), f64> = candidates
        .iter()
        .filter(|c| c.a < n && c.b < n)
        .map(|c| ((c.a.min(c.b), c.a.max(c.b)), c.probability))
        .collect();
    let mut strong: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.a < n && c.b < n && c.probability >= threshold)
        .collect();
    strong.sort_by(|x, y| {
        y.probability
            .total_cmp(&x.probability)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    // A record whose strong links go to two records that contradict each other, with odds
    // within four times of each other, is ambiguous (a nameless record of a family killed
    // together, remains that fit two missing persons): it joins neither, the office decides.
    let mut partners: HashMap<usize, Vec<(usize, f64)>> = HashMap::new();
    for c in &strong {
        let w = c.weight();
        partners.entry(c.a).or_default().push((c.b, w));
        partners.entry(c.b).or_default().push((c.a, w));
    }
    let ambiguous: HashSet<usize> = partners
        .iter()
        .filter(|(_, list)| {
            let Some(&(best, top)) = list
                .iter()
                .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
            else {
                return false;
            };
            list.iter().any(|&(other, w)| {
                other != best
                    && w >= top - AMBIGUOUS_BITS
                    && (contradicts(&prep[best], &prep[other])
                        || distinct.contains(&(best.min(other), best.max(other))))
            })
        })
        .map(|(&x, _)| x)
        .collect();
    for c in strong {
        if ambiguous.contains(&c.a) || ambiguous.contains(&c.b) {
            continue;
        }
        let (ra, rb) = (sets.find(c.a), sets.find(c.b));
        if ra == rb {
            continue;
        }
        // Every cross pair plausible, and at least a third of them strong links: a chain of
        // single links between two groups is not enough.
        let mut strong_links = 0usize;
        let mut cross = 0usize;
        let plausible = sets.members[ra].iter().all(|&x| {
            sets.members[rb].iter().all(|&y| {
                let key = (x.min(y), x.max(y));
                cross += 1;
                if distinct.contains(&key) {
                    return false;
                }
                match known.get(&key) {
                    Some(&p) if p >= threshold => {
                        strong_links += 1;
                        true
                    }
                    Some(&p) if p < 0.05 => false,
                    _ => !contradicts(&prep[x], &prep[y]),
                }
            })
        });
        let ok = plausible && 3 * strong_links >= cross;
        if ok {
            sets.union(c.a, c.b);
        }
    }
    let mut smallest: HashMap<usize, usize> = HashMap::new();
    for i in 0..n {
        let r = sets.find(i);
        smallest.entry(r).or_insert(i);
    }
    (0..n).map(|i| smallest[&sets.find(i)]).collect()
}
