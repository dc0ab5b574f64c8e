//! Fellegi–Sunter: u from random pairs; m by expectation–maximisation in sessions on sub-blocks
//! where most pairs match (record ↔ record), or by classification EM under the one-to-one
//! constraint (remains ↔ missing); the prior as a share of all pairs, not of the blocked ones;
//! a match weight per pair, and the candidates above a probability. Every estimate (u, m, λ)
//! is shrunk toward a prior by pseudo-counts (see [`U_PSEUDO`] and the fields' `m_prior` and
//! `u_prior`): no level ever falls back abruptly, the prior simply outweighs a handful of
//! observations and is outweighed by thousands.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::compare::{self, Field, Gamma, Model, DUP, ID};
use crate::prepare::{prepare, Prepared};
use crate::{block, cluster, Candidate, Decision, Evidence, Kind, Options, Record, Relation};

/// Random pairs drawn to estimate u, per model.
const U_SAMPLES: usize = 200_000;
/// Expectation–maximisation rounds.
const EM_ROUNDS: usize = 40;

// Small lists. Every estimate is shrunk toward a documented prior by pseudo-counts, as Splink
// and fastLink do with their priors: a level seen in thousands of pairs follows the data, one
// seen in a handful follows the prior, and a list of five records is scored on the priors
// alone (a random-pair sample of 10 pairs, or expectation–maximisation over one likely match,
// says next to nothing).

/// u: the prior (`Field::u_prior`) counts as this many random pairs of different people.
pub(crate) const U_PSEUDO: f64 = 100.0;
/// m, record ↔ record: the prior (`Field::m_prior`) counts as this many matches in each
/// training session.
pub(crate) const M_PSEUDO: f64 = 20.0;
/// m, remains ↔ missing: the prior counts as this many identified remains.
pub(crate) const M_PSEUDO_ID: f64 = 10.0;
/// λ: the prior share of matches counts as this many matches.
pub(crate) const LAMBDA_PSEUDO: f64 = 1.0;

/// The estimated parameters of one model.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub fields: &'static [Field],
    /// log2(m/u) per field and level (level 0 weighs 0).
    pub weight: Vec<Vec<f64>>,
    /// log2(λ / (1 − λ)): the prior odds of a match among blocked pairs.
    pub prior: f64,
}

impl Params {
    fn score(&self, g: &Gamma) -> f64 {
        let mut w = self.prior + f64::from(g.tf);
        for (f, ws) in self.weight.iter().enumerate() {
            w += ws[g.level(f)];
        }
        w
    }
}

/// Everything the scoring needs, estimated once from a set of records.
pub(crate) struct Linker {
    pub prep: Vec<Prepared>,
    pub params: [Option<Params>; 2],
}

fn fields(model: Model) -> &'static [Field] {
    match model {
        Model::Dup => DUP,
        Model::Id => ID,
    }
}

fn pair_gamma(prep: &[Prepared], a: usize, b: usize, mean_log_tf: f64) -> (Gamma, usize, usize) {
    let (model, swap) = compare::model_of(&prep[a], &prep[b]);
    let (x, y) = if swap { (b, a) } else { (a, b) };
    (
        compare::compare(model, &prep[x], &prep[y], mean_log_tf),
        x,
        y,
    )
}

impl Linker {
    /// Estimates both models from the records and their blocked pairs.
    pub fn new(records: &[Record]) -> (Linker, Vec<(u32, u32)>, Vec<Gamma>) {
        let prep = prepare(records);
        let (mut sum, mut n) = (0.0, 0usize);
        for p in &prep {
            for f in &p.tf {
                sum += f.log2();
                n += 1;
            }
        }
        let mean_log_tf = if n == 0 { 0.0 } else { sum / n as f64 };
        let pairs = block::pairs(&prep);
        let gammas: Vec<Gamma> = pairs
            .par_iter()
            .map(|&(a, b)| pair_gamma(&prep, a as usize, b as usize, mean_log_tf).0)
            .collect();
        let u = estimate_u(&prep, mean_log_tf);
        let mut params = [None, None];
        for model in [Model::Dup, Model::Id] {
            let any_missing = gammas
                .iter()
                .any(|g| g.pattern & (1 << compare::MISSING_BIT) != 0);
            // The histogram of patterns, counted over a sorted list (faster than hashing
            // millions of pairs, and in a fixed order).
            let mut all: Vec<u32> = gammas
                .par_iter()
                .filter(|g| g.model == model)
                .filter(|g| {
                    model != Model::Id
                        || !any_missing
                        || g.pattern & (1 << compare::MISSING_BIT) != 0
                })
                .map(|g| g.pattern)
                .collect();
            all.par_sort_unstable();
            let hist: Vec<(u32, f64)> = all
                .chunk_by(|a, b| a == b)
                .map(|run| (run[0], run.len() as f64))
                .collect();
            if hist.is_empty() {
                continue;
            }
            let remains = prep.iter().filter(|p| p.kind == Kind::Remains).count() as f64;
            let missing = prep.iter().filter(|p| p.kind == Kind::Missing).count() as f64;
            let others = prep.len() as f64 - remains;
            let total = match model {
                Model::Dup => others * (others - 1.0) / 2.0 + remains * (remains - 1.0) / 2.0,
                Model::Id if any_missing => remains * missing,
                Model::Id => remains * others,
            };
            // The prior share of matches: each record has one other record of its person on
            // average (a killing on two lists); half the remains are of a reported person.
            let share = match model {
                Model::Dup => prior_share((others + remains) / 2.0, total),
                Model::Id => prior_share(remains / 2.0, total),
            };
            let mut p = em(model, &u[model as usize], &hist, total, share);
            if model == Model::Id {
                one_to_one(&mut p, &u[1], &prep, &pairs, &gammas, total, share);
            }
            params[model as usize] = Some(p);
        }
        (Linker { prep, params }, pairs, gammas)
    }
}

fn prob(w: f64) -> f64 {
    let o = w.clamp(-60.0, 60.0).exp2();
    o / (1.0 + o)
}

/// u per model, field and level, from random pairs (almost all of different people).
fn estimate_u(prep: &[Prepared], mean_log_tf: f64) -> [Vec<Vec<f64>>; 2] {
    let n = prep.len();
    let mut out = [counts(DUP), counts(ID)];
    if n < 2 {
        let [dup, id] = out;
        return [
            shrink(DUP, dup, u_prior, U_PSEUDO),
            shrink(ID, id, u_prior, U_PSEUDO),
        ];
    }
    let remains: Vec<usize> = (0..n).filter(|&i| prep[i].kind == Kind::Remains).collect();
    let others: Vec<usize> = (0..n).filter(|&i| prep[i].kind != Kind::Remains).collect();
    let mut rng = StdRng::seed_from_u64(0x5eed_u64);
    let samples = U_SAMPLES.min(n * (n - 1) / 2);
    for model in [Model::Dup, Model::Id] {
        for _ in 0..samples {
            let (a, b) = match model {
                Model::Dup => {
                    let a = rng.gen_range(0..n);
                    let b = rng.gen_range(0..n);
                    if a == b || compare::model_of(&prep[a], &prep[b]).0 != Model::Dup {
                        continue;
                    }
                    (a, b)
                }
                Model::Id => {
                    if remains.is_empty() || others.is_empty() {
                        break;
                    }
                    (
                        remains[rng.gen_range(0..remains.len())],
                        others[rng.gen_range(0..others.len())],
                    )
                }
            };
            let g = compare::compare(model, &prep[a], &prep[b], mean_log_tf);
            for (f, c) in out[model as usize].iter_mut().enumerate() {
                c[g.level(f)] += 1.0;
            }
        }
    }
    let [dup, id] = out;
    [
        shrink(DUP, dup, u_prior, U_PSEUDO),
        shrink(ID, id, u_prior, U_PSEUDO),
    ]
}

fn m_prior(f: &Field) -> &'static [f64] {
    f.m_prior
}

fn u_prior(f: &Field) -> &'static [f64] {
    f.u_prior
}

/// Probabilities per level (level 0 excluded) from counts, with the prior counted as `pseudo`
/// observations: (count + pseudo × prior) / (observed + pseudo).
fn shrink(
    fields: &[Field],
    c: Vec<Vec<f64>>,
    prior: fn(&Field) -> &'static [f64],
    pseudo: f64,
) -> Vec<Vec<f64>> {
    c.into_iter()
        .zip(fields)
        .map(|(v, f)| {
            let p = prior(f);
            // Priors are written to two or three digits: normalise them here.
            let p_total: f64 = p.iter().skip(1).sum();
            let total: f64 = v.iter().skip(1).sum::<f64>() + pseudo;
            let mut out: Vec<f64> = v
                .iter()
                .zip(p)
                .map(|(x, p)| (x + pseudo * p / p_total) / total)
                .collect();
            out[0] = 1.0;
            out
        })
        .collect()
}

fn counts(fields: &[Field]) -> Vec<Vec<f64>> {
    fields.iter().map(|f| vec![0.0; f.levels.len()]).collect()
}

/// A training session: the pairs whose `field` falls in `levels` (a sub-block where matches
/// are common), with the `excluded` fields left out of the likelihood and not trained there,
/// as Splink trains m on one blocking rule at a time. Training on all blocked pairs at once
/// lets expectation–maximisation settle on "same event" instead of "same person", because
/// date, place and distance are far from independent.
struct Session {
    /// (field, levels): pairs whose field falls in one of the levels, for every entry.
    block: &'static [(usize, &'static [usize])],
    excluded: &'static [usize],
}

fn sessions(model: Model) -> &'static [Session] {
    match model {
        // Fields: 0 name, 1 sex, 2 age, 3 date, 4 place, 5 distance, 6 kind, 7 height,
        // 8 description, 9 patronymic. Each session keeps a sub-block where most pairs are
        // matches at any size of list, and trains the fields it did not select on.
        Model::Dup => &[
            // The same name within three days: trains age, place, sex and the rest.
            Session {
                block: &[(0, &[1, 2]), (3, &[1, 2])],
                excluded: &[0, 3],
            },
            // Same place, same age, within three days: trains the name (a family killed
            // together differs in age).
            Session {
                block: &[(3, &[1, 2]), (2, &[1]), (4, &[1])],
                excluded: &[2, 3, 4, 5],
            },
        ],
        // Fields: 0 sex, 1 age, 2 height, 3 order, 4 distance, 5 place, 6 clothing, 7 effects,
        // 8 marks, 9 name.
        Model::Id => &[
            // Clothing mostly shared and found after last seen: trains the body and the place.
            Session {
                block: &[(6, &[1]), (3, &[2, 3, 4])],
                excluded: &[3, 6],
            },
            // Found within 2 km of where last seen, height within 4 cm: trains the descriptions
            // and the dates.
            Session {
                block: &[(4, &[1]), (2, &[1])],
                excluded: &[2, 4, 5],
            },
        ],
    }
}

type Patterns = Vec<(Vec<usize>, f64)>;

/// The prior's start, and the pairs it is a share of (the patterns' own count when `None`).
struct Prior {
    start: f64,
    population: Option<f64>,
    /// The prior share of matches the estimate is shrunk toward ([`LAMBDA_PSEUDO`] matches).
    share: Option<f64>,
}

/// λ from the expected matches among `total` pairs, shrunk toward `share` when given.
fn lambda_of(matched: f64, total: f64, share: Option<f64>) -> f64 {
    match share {
        Some(s) if s > 0.0 => (matched + LAMBDA_PSEUDO) / (total + LAMBDA_PSEUDO / s),
        _ => matched / total,
    }
}

/// The prior share of matches among `total` pairs: `matches` expected ones, at most half.
fn prior_share(matches: f64, total: f64) -> Option<f64> {
    (total > 0.0 && matches > 0.0).then(|| (matches / total).min(0.5))
}

/// Expectation–maximisation of m (and λ) over `patterns`, u fixed, `excluded` fields ignored;
/// with `train_m` false only λ moves.
fn em_session(
    fields: &[Field],
    u: &[Vec<f64>],
    patterns: &Patterns,
    excluded: &[usize],
    mut m: Vec<Vec<f64>>,
    prior: Prior,
    train_m: bool,
) -> (Vec<Vec<f64>>, f64) {
    let blocked: f64 = patterns.iter().map(|(_, c)| c).sum();
    let total = prior.population.unwrap_or(blocked).max(blocked);
    let mut lambda = prior.start;
    if total == 0.0 {
        // Nothing to learn from: the priors.
        return (shrink(fields, counts(fields), m_prior, 1.0), lambda);
    }
    for _ in 0..EM_ROUNDS {
        let mut mc = counts(fields);
        let mut matched = 0.0;
        for (levels, c) in patterns {
            let (mut pm, mut pu) = (lambda, 1.0 - lambda);
            for (f, &l) in levels.iter().enumerate() {
                if l > 0 && !excluded.contains(&f) {
                    pm *= m[f][l];
                    pu *= u[f][l];
                }
            }
            let p = pm / (pm + pu);
            let w = p * c;
            matched += w;
            for (f, &l) in levels.iter().enumerate() {
                mc[f][l] += w;
            }
        }
        lambda = lambda_of(matched, total, prior.share).clamp(1e-12, 0.999);
        if train_m {
            let next = shrink(fields, mc, m_prior, M_PSEUDO);
            for (f, row) in next.into_iter().enumerate() {
                if !excluded.contains(&f) {
                    m[f] = row;
                }
            }
        }
    }
    (m, lambda)
}

/// m by expectation–maximisation in sessions, then the prior over all blocked pairs.
///
/// `share` is the prior share of matches among all `total_pairs`.
fn em(
    model: Model,
    u: &[Vec<f64>],
    hist: &[(u32, f64)],
    total_pairs: f64,
    share: Option<f64>,
) -> Params {
    let fields = fields(model);
    let init: Vec<Vec<f64>> = fields.iter().map(|f| f.init_m.to_vec()).collect();
    let mut patterns: Patterns = hist
        .iter()
        .map(|&(p, c)| {
            let levels = (0..fields.len())
                .map(|f| ((p >> (3 * f)) & 7) as usize)
                .collect();
            (levels, c)
        })
        .collect();
    // The histogram's order is random; sums must not depend on it.
    patterns.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sum = counts(fields);
    let mut trained = vec![0usize; fields.len()];
    for s in sessions(model) {
        let subset: Patterns = patterns
            .iter()
            .filter(|(l, _)| s.block.iter().all(|(f, ok)| ok.contains(&l[*f])))
            .cloned()
            .collect();
        let (m, _) = em_session(
            fields,
            u,
            &subset,
            s.excluded,
            init.clone(),
            Prior {
                start: if model == Model::Id { 0.02 } else { 0.1 },
                population: None,
                share: None,
            },
            true,
        );
        for f in (0..fields.len()).filter(|f| !s.excluded.contains(f)) {
            trained[f] += 1;
            for (acc, x) in sum[f].iter_mut().zip(&m[f]) {
                *acc += x;
            }
        }
    }
    let m: Vec<Vec<f64>> = (0..fields.len())
        .map(|f| {
            if trained[f] == 0 {
                shrink(&fields[f..=f], counts(&fields[f..=f]), m_prior, 1.0).remove(0)
            } else {
                sum[f].iter().map(|x| x / trained[f] as f64).collect()
            }
        })
        .collect();
    // The prior over all pairs, not only the blocked ones: u comes from random pairs, and
    // blocking keeps pairs that agree on sex, place and date, so among blocked pairs those
    // fields are no longer distributed as u says. Pairs not blocked count as non-matches.
    let blocked: f64 = patterns.iter().map(|(_, c)| c).sum();
    let start = 0.05 * blocked / total_pairs.max(blocked);
    let (m, lambda) = em_session(
        fields,
        u,
        &patterns,
        &[],
        m,
        Prior {
            start,
            population: Some(total_pairs),
            share,
        },
        false,
    );
    let weight = m
        .iter()
        .zip(u)
        .map(|(m, u)| {
            m.iter()
                .zip(u)
                .enumerate()
                .map(|(l, (m, u))| {
                    if l == 0 {
                        0.0
                    } else {
                        (m / u).log2().clamp(-12.0, 12.0)
                    }
                })
                .collect()
        })
        .collect();
    Params {
        fields,
        weight,
        prior: (lambda / (1.0 - lambda)).log2(),
    }
}

/// Remains ↔ missing: classification EM with the one-to-one constraint (remains are of one
/// person at most). Each round takes, for every remains, its best-scoring missing record if
/// the evidence favours a match (weight above 0 before the prior), re-estimates m from those
/// pairs, and the prior from their count over all pairs. Plain EM drifts here: among the
/// blocked pairs, true matches are one in hundreds on a large list, and the non-matches
/// that blocking keeps (same sex, near) are not distributed as random pairs.
fn one_to_one(
    params: &mut Params,
    u: &[Vec<f64>],
    prep: &[Prepared],
    pairs: &[(u32, u32)],
    gammas: &[Gamma],
    total_pairs: f64,
    share: Option<f64>,
) {
    let fields = params.fields;
    let mut m: Vec<Vec<f64>> = fields.iter().map(|f| f.init_m.to_vec()).collect();
    let mut chosen = 0usize;
    for _ in 0..10 {
        let weight = weights(&m, u);
        let mut best: Vec<Option<(f64, usize)>> = vec![None; prep.len()];
        for (k, (&(a, b), g)) in pairs.iter().zip(gammas).enumerate() {
            if g.model != Model::Id || g.pattern & (1 << compare::MISSING_BIT) == 0 {
                continue;
            }
            let r = if prep[a as usize].kind == Kind::Remains {
                a
            } else {
                b
            } as usize;
            let score: f64 = (0..fields.len()).map(|f| weight[f][g.level(f)]).sum();
            if best[r].is_none_or(|(s, _)| score > s) {
                best[r] = Some((score, k));
            }
        }
        let mut c = counts(fields);
        chosen = 0;
        for &(score, k) in best.iter().flatten() {
            if score > 0.0 {
                chosen += 1;
                for (f, row) in c.iter_mut().enumerate() {
                    row[gammas[k].level(f)] += 1.0;
                }
            }
        }
        if chosen == 0 {
            return;
        }
        m = shrink(fields, c, m_prior, M_PSEUDO_ID);
        impossible(fields, &mut m);
    }
    let lambda = lambda_of(chosen as f64, total_pairs.max(1.0), share).clamp(1e-12, 0.5);
    params.weight = weights(&m, u);
    params.prior = (lambda / (1.0 - lambda)).log2();
}

/// Levels a true match cannot show but through an error in a date: remains found before the
/// person was last seen. Their m is held at 1 in 2,000 at most (the weight strongly against),
/// whatever the estimate, so that a run of wrong choices cannot make them look plausible.
fn impossible(fields: &[Field], m: &mut [Vec<f64>]) {
    const CEILING: f64 = 0.0005;
    for (f, field) in fields.iter().enumerate() {
        for (l, level) in field.levels.iter().enumerate() {
            if *level == "found_before_last_seen" && m[f][l] > CEILING {
                let rest = 1.0 - m[f][l];
                for (k, x) in m[f].iter_mut().enumerate().skip(1) {
                    *x = if k == l {
                        CEILING
                    } else {
                        *x / rest * (1.0 - CEILING)
                    };
                }
            }
        }
    }
}

fn weights(m: &[Vec<f64>], u: &[Vec<f64>]) -> Vec<Vec<f64>> {
    m.iter()
        .zip(u)
        .map(|(m, u)| {
            m.iter()
                .zip(u)
                .enumerate()
                .map(|(l, (m, u))| {
                    if l == 0 {
                        0.0
                    } else {
                        (m / u).log2().clamp(-12.0, 12.0)
                    }
                })
                .collect()
        })
        .collect()
}

/// The pairs of records that may be one person, most likely first.
///
/// Never returns a pair the office already decided (any relation), a pair already joined by
/// its decisions, nor one whose decided persons a `distinct` decision separates. The same
/// input gives the same output: ties are sorted by indices.
pub fn candidates(records: &[Record], decisions: &[Decision], options: &Options) -> Vec<Candidate> {
    let (linker, pairs, gammas) = Linker::new(records);
    let n = records.len();
    let decided = cluster::decided(n, decisions);
    let mut out: Vec<Candidate> = pairs
        .par_iter()
        .zip(gammas.par_iter())
        .filter_map(|(&(a, b), g)| {
            let (a, b) = (a as usize, b as usize);
            if let Some(only) = options.only {
                if a != only && b != only {
                    return None;
                }
            }
            let params = linker.params[g.model as usize].as_ref()?;
            let w = params.score(g);
            let p = prob(w);
            if p < options.min_probability || decided.excludes(a, b) {
                return None;
            }
            let (x, y) = if g.model == Model::Id && linker.prep[b].kind == Kind::Remains {
                (b, a)
            } else {
                (a, b)
            };
            let relation = if g.model == Model::Id && linker.prep[y].kind == Kind::Missing {
                Relation::Identifies
            } else {
                Relation::SamePerson
            };
            Some(Candidate {
                a: x,
                b: y,
                relation,
                probability: p,
                why: evidence(&linker, params, g, x, y),
            })
        })
        .collect();
    out.sort_by(|x, y| {
        y.probability
            .total_cmp(&x.probability)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    out
}

fn evidence(linker: &Linker, params: &Params, g: &Gamma, a: usize, b: usize) -> Vec<Evidence> {
    let (pa, pb) = (&linker.prep[a], &linker.prep[b]);
    let mut why = Vec::new();
    for (f, field) in params.fields.iter().enumerate() {
        let l = g.level(f);
        if l == 0 {
            continue;
        }
        let mut weight = params.weight[f][l];
        if field.name == "name" {
            weight += f64::from(g.tf);
        }
        why.push(Evidence {
            field: field.name,
            level: field.levels[l],
            weight,
            phrase: compare::phrase(g.model, field.name, field.levels[l], pa, pb),
        });
    }
    why
}

/// A set of record pairs, order-insensitive.
pub(crate) fn pair_set(pairs: impl Iterator<Item = (usize, usize)>) -> HashSet<(usize, usize)> {
    pairs.map(|(a, b)| (a.min(b), a.max(b))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_rules_few_observations_and_the_data_many() {
        let name = &DUP[0..1];
        let exact = 1;
        // Nothing observed: the prior, normalised.
        let none = shrink(name, counts(name), u_prior, U_PSEUDO);
        let prior = name[0].u_prior[exact] / name[0].u_prior.iter().skip(1).sum::<f64>();
        assert!((none[0][exact] - prior).abs() < 1e-12);
        // One pair in four agreeing exactly, seen four times: still near the prior.
        let mut few = counts(name);
        few[0][exact] = 1.0;
        few[0][6] = 3.0;
        let few = shrink(name, few, u_prior, U_PSEUDO);
        assert!(few[0][exact] < 0.02, "{:?}", few[0]);
        // The same share over a million pairs: the data.
        let mut many = counts(name);
        many[0][exact] = 250_000.0;
        many[0][6] = 750_000.0;
        let many = shrink(name, many, u_prior, U_PSEUDO);
        assert!((many[0][exact] - 0.25).abs() < 1e-3, "{:?}", many[0]);
        // Probabilities over the levels (0 aside) sum to 1 either way.
        for row in [&few[0], &many[0]] {
            assert!((row.iter().skip(1).sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn the_prior_share_of_matches_rules_a_handful_of_pairs() {
        // Six pairs, none judged a match: λ stays near the prior share, not at 0.
        let share = prior_share(2.0, 6.0);
        assert_eq!(share, Some(2.0 / 6.0));
        let lambda = lambda_of(0.0, 6.0, share);
        assert!(lambda > 0.05 && lambda < 2.0 / 6.0, "{lambda}");
        // Fifty million pairs: the data.
        let lambda = lambda_of(10_000.0, 5e7, prior_share(5_000.0, 5e7));
        assert!((lambda / 2e-4 - 1.0).abs() < 1e-3, "{lambda}");
        assert_eq!(prior_share(0.0, 6.0), None);
        assert_eq!(prior_share(3.0, 0.0), None);
    }
}
