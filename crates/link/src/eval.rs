//! Measures of a linkage against the truth: pairwise precision, recall and F1 over clusters,
//! blocking pair recall, and the rank of the true missing person for each identified remains.

use std::collections::HashMap;

use crate::prepare::prepare;
use crate::{block, Candidate, Kind, Record, Relation};

/// Pairwise scores: every pair of records inside a predicted cluster is a predicted match,
/// every pair inside a true person a true one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pairwise {
    /// Pairs predicted and true.
    pub true_positives: u64,
    /// Pairs predicted.
    pub predicted: u64,
    /// Pairs true.
    pub actual: u64,
}

impl Pairwise {
    /// Predicted pairs that are true, of all predicted (1 when none is predicted).
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.predicted)
    }

    /// True pairs that are predicted, of all true (1 when there are none).
    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.actual)
    }

    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn pairs_in(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Pairwise scores of `clusters` (an id per record) against `truth` (a person per record).
pub fn pairwise<C: Eq + std::hash::Hash + Copy, T: Eq + std::hash::Hash + Copy>(
    clusters: &[C],
    truth: &[T],
) -> Pairwise {
    let mut by_cluster: HashMap<C, u64> = HashMap::new();
    let mut by_truth: HashMap<T, u64> = HashMap::new();
    let mut by_both: HashMap<(C, T), u64> = HashMap::new();
    for (&c, &t) in clusters.iter().zip(truth) {
        *by_cluster.entry(c).or_default() += 1;
        *by_truth.entry(t).or_default() += 1;
        *by_both.entry((c, t)).or_default() += 1;
    }
    Pairwise {
        true_positives: by_both.values().map(|&n| pairs_in(n)).sum(),
        predicted: by_cluster.values().map(|&n| pairs_in(n)).sum(),
        actual: by_truth.values().map(|&n| pairs_in(n)).sum(),
    }
}

/// The share of true pairs that blocking keeps, and how many pairs it keeps.
pub fn blocking_recall<T: Eq + std::hash::Hash + Copy>(
    records: &[Record],
    truth: &[T],
) -> (f64, usize) {
    let prep = prepare(records);
    let pairs = block::pairs(&prep);
    let kept = pairs
        .iter()
        .filter(|&&(a, b)| truth[a as usize] == truth[b as usize])
        .count() as u64;
    let mut per: HashMap<T, u64> = HashMap::new();
    for &t in truth {
        *per.entry(t).or_default() += 1;
    }
    let actual: u64 = per.values().map(|&n| pairs_in(n)).sum();
    (ratio(kept, actual), pairs.len())
}

/// For each remains record whose true person has a missing record: the rank of that person's
/// best missing record among the remains' `identifies` candidates (1 is first; records of the
/// same true person are not counted against it), or `None` when it is not a candidate at all.
pub fn remains_ranks<T: Eq + std::hash::Hash + Copy>(
    records: &[Record],
    truth: &[T],
    candidates: &[Candidate],
) -> Vec<Option<usize>> {
    let mut missing_of: HashMap<T, bool> = HashMap::new();
    for (r, &t) in records.iter().zip(truth) {
        if r.kind == Kind::Missing {
            missing_of.insert(t, true);
        }
    }
    let mut per_remains: HashMap<usize, Vec<(f64, usize)>> = HashMap::new();
    for c in candidates
        .iter()
        .filter(|c| c.relation == Relation::Identifies)
    {
        per_remains
            .entry(c.a)
            .or_default()
            .push((c.probability, c.b));
    }
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.kind != Kind::Remains || !missing_of.contains_key(&truth[i]) {
            continue;
        }
        let mut list = per_remains.remove(&i).unwrap_or_default();
        list.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        // Records of the true person ahead of the first one do not count against it.
        let mut wrong = 0;
        let mut rank = None;
        for (_, b) in list {
            if truth[b] == truth[i] {
                rank = Some(wrong + 1);
                break;
            }
            wrong += usize::from(truth[b] != truth[i]);
        }
        out.push(rank);
    }
    out
}

/// The share of ranks that are at most `k`.
pub fn top(ranks: &[Option<usize>], k: usize) -> f64 {
    let hits = ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as u64;
    ratio(hits, ranks.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_counts_pairs_inside_clusters() {
        // Truth: {0,1,2} {3}; predicted: {0,1} {2,3}.
        let p = pairwise(&[0, 0, 2, 2], &[7, 7, 7, 8]);
        assert_eq!(p.true_positives, 1);
        assert_eq!(p.predicted, 2);
        assert_eq!(p.actual, 3);
        assert!((p.f1() - 0.4).abs() < 1e-9);
    }
}
