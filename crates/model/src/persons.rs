//! Persons: which cases the office linked as records of one person.
//!
//! A person is a case with every case linked to it, directly or through others, by a
//! `same_person` or `identifies` decision in force (the latest on each pair). `distinct`
//! decisions never join anything; a person that holds both cases of a `distinct` decision
//! (the office said "two people", then linked each to a third) is a contradiction, shown to
//! the office and never resolved here.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A decision in force between a case and another: what the summaries carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseLink {
    /// The other case's id.
    pub other_id: String,
    /// same_person, identifies or distinct.
    pub relation: String,
}

impl CaseLink {
    /// Whether the decision makes the two cases one person.
    pub fn joins(&self) -> bool {
        matches!(self.relation.as_str(), "same_person" | "identifies")
    }
}

/// Which records are one person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persons {
    /// For each record (in the order given), the index of the first record of its person.
    pub first: Vec<usize>,
    /// For each record, the person's id: the smallest case id among its records, stable
    /// whatever order the records come in.
    pub id: Vec<String>,
    /// Pairs of records in one person that the office decided are distinct (indices, each
    /// pair once, smaller first).
    pub contradictions: Vec<(usize, usize)>,
}

/// Groups `cases` (each its id and its links in force) into persons. A link to a case not
/// given (another team's, on a field device) joins nothing.
pub fn persons<'a>(cases: impl IntoIterator<Item = (&'a str, &'a [CaseLink])>) -> Persons {
    let cases: Vec<(&str, &[CaseLink])> = cases.into_iter().collect();
    let index: HashMap<&str, usize> = cases
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| !id.is_empty())
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut parent: Vec<usize> = (0..cases.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, (_, links)) in cases.iter().enumerate() {
        for link in links.iter().filter(|l| l.joins()) {
            if let Some(&j) = index.get(link.other_id.as_str()) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                // The smaller index stays the root: the first record of the person.
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let first: Vec<usize> = (0..cases.len()).map(|i| root(&mut parent, i)).collect();
    let mut smallest: HashMap<usize, &str> = HashMap::new();
    for (i, (id, _)) in cases.iter().enumerate() {
        let entry = smallest.entry(first[i]).or_insert(id);
        if *id < *entry {
            *entry = id;
        }
    }
    let id = first.iter().map(|r| smallest[r].to_string()).collect();
    let mut contradictions = Vec::new();
    for (i, (_, links)) in cases.iter().enumerate() {
        for link in links.iter().filter(|l| l.relation == "distinct") {
            if let Some(&j) = index.get(link.other_id.as_str()) {
                if i < j && first[i] == first[j] {
                    contradictions.push((i, j));
                }
            }
        }
    }
    contradictions.sort_unstable();
    contradictions.dedup();
    Persons {
        first,
        id,
        contradictions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(other: &str, relation: &str) -> CaseLink {
        CaseLink {
            other_id: other.into(),
            relation: relation.into(),
        }
    }

    #[test]
    fn links_join_through_others_and_distinct_joins_nothing() {
        let a = [link("b", "same_person"), link("d", "distinct")];
        let b = [link("a", "same_person"), link("c", "identifies")];
        let c = [link("b", "identifies")];
        let d = [link("a", "distinct"), link("zz", "same_person")];
        let p = persons([("c", &c[..]), ("a", &a[..]), ("b", &b[..]), ("d", &d[..])]);
        assert_eq!(p.first, [0, 0, 0, 3]);
        assert_eq!(p.id, ["a", "a", "a", "d"]);
        assert!(p.contradictions.is_empty());
    }

    #[test]
    fn a_distinct_pair_inside_one_person_is_a_contradiction() {
        let a = [link("b", "distinct"), link("c", "same_person")];
        let b = [link("a", "distinct"), link("c", "same_person")];
        let c = [link("a", "same_person"), link("b", "same_person")];
        let p = persons([("a", &a[..]), ("b", &b[..]), ("c", &c[..])]);
        assert_eq!(p.contradictions, [(0, 1)]);
    }
}
