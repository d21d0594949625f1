//! The explorer's search: which per-class pattern choices to measure, and the
//! accuracy-latency frontier of those measured.
//!
//! A candidate gives each of the four classes of linears (qkv, proj, ffn1, ffn2) one option
//! of a pool (option 0 is dense): `P^4` candidates for `P` options. Measuring one costs a
//! simulation (latency) and an evaluation (perplexity, seconds), so not all are measured:
//!
//! 1. **Probes**: dense, every uniform candidate (one option for all classes) and every
//!    single-class candidate (one class at an option, the others dense):
//!    `1 + (P - 1) + 4 (P - 1)` measurements.
//! 2. **Surrogate**: the effect of each class's choice is taken as independent of the
//!    others', in latency and in log perplexity:
//!
//!    ```text
//!    lat(c)     ~ lat(dense)     + sum_k [ lat(single_k(c_k))     - lat(dense) ]
//!    log ppl(c) ~ log ppl(dense) + sum_k [ log ppl(single_k(c_k)) - log ppl(dense) ]
//!    ```
//!
//!    (a measured candidate's own values replace its prediction).
//! 3. **Refinement**: the Pareto frontier of all candidates under the prediction; each of
//!    its points not yet measured is measured (fastest first), and the frontier predicted
//!    again, until every point on it is measured or `budget` refinement measurements are
//!    spent. Each round measures at least one new candidate, so the search ends.
//!
//! 4. **Challengers**: for each uniform candidate, the mixed candidate (not yet measured)
//!    with the lowest predicted perplexity among those predicted at least as fast as the
//!    uniform one measured is measured too, so that every uniform pattern is compared
//!    with a measured mixed point of its speed, whether or not the frontier went there.
//!
//! The frontier reported is the Pareto frontier of the **measured** candidates only:
//! every value on it is a simulated latency and an evaluated perplexity, never a
//! prediction. A point is on it when no other measured point is at least as fast and at
//! least as good and better in one (of equal points, the first measured).

use crate::Error;

/// A candidate: the option index of each class, in the order qkv, proj, ffn1, ffn2.
pub type Choice = [usize; 4];

/// What measuring a candidate gave.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Measured {
    /// Simulated latency, microseconds.
    pub latency_us: f64,
    /// Perplexity (lower is better).
    pub perplexity: f64,
}

/// Why a candidate was measured.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Every class dense.
    Dense,
    /// One option for every class.
    Uniform,
    /// One class sparse, the others dense.
    Single,
    /// On the predicted frontier of a refinement round.
    Refined,
    /// The mixed candidate predicted best among those predicted at least as fast as a
    /// uniform one (stage 4).
    Challenger,
}

impl Stage {
    /// The name in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Dense => "dense",
            Stage::Uniform => "uniform",
            Stage::Single => "single",
            Stage::Refined => "refined",
            Stage::Challenger => "challenger",
        }
    }
}

/// A measured candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its options.
    pub choice: Choice,
    /// Why it was measured.
    pub stage: Stage,
    /// The surrogate's prediction when it was picked (refined points only).
    pub predicted: Option<Measured>,
    /// Bits of the values (one search covers one width).
    pub value_bits: u32,
    /// What measuring gave.
    pub measured: Measured,
}

/// Indices of the Pareto frontier of `points` (latency, perplexity; both lower is better),
/// fastest first. Of equal points the first is kept.
pub fn pareto(points: &[Measured]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (points[a], points[b]);
        pa.latency_us
            .total_cmp(&pb.latency_us)
            .then(pa.perplexity.total_cmp(&pb.perplexity))
            .then(a.cmp(&b))
    });
    let mut best = f64::INFINITY;
    let mut front = Vec::new();
    for i in order {
        if points[i].perplexity < best {
            best = points[i].perplexity;
            front.push(i);
        }
    }
    front
}

/// Every candidate of `options` options per class, in order (qkv slowest).
fn all_choices(options: usize) -> impl Iterator<Item = Choice> {
    let n = options.pow(4);
    (0..n).map(move |mut i| {
        let mut c = [0; 4];
        for k in (0..4).rev() {
            c[k] = i % options;
            i /= options;
        }
        c
    })
}

/// The probes of stage 1, in the order they are measured.
pub fn probes(options: usize) -> Vec<(Choice, Stage)> {
    let mut v = vec![([0; 4], Stage::Dense)];
    v.extend((1..options).map(|o| ([o; 4], Stage::Uniform)));
    for k in 0..4 {
        for o in 1..options {
            let mut c = [0; 4];
            c[k] = o;
            v.push((c, Stage::Single));
        }
    }
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// The additive surrogate of stage 2, from the probes' measurements.
pub struct Surrogate {
    dense: Measured,
    /// Per class and option: (latency change, log-perplexity change) from dense.
    delta: Vec<[(f64, f64); 4]>,
}

impl Surrogate {
    /// The surrogate of `options` options from measured `points` (which must hold every
    /// probe; `None` if one is missing).
    pub fn new(options: usize, points: &[Point]) -> Option<Surrogate> {
        let find = |c: Choice| points.iter().find(|p| p.choice == c).map(|p| p.measured);
        let dense = find([0; 4])?;
        let mut delta = vec![[(0.0, 0.0); 4]; options];
        for (o, d) in delta.iter_mut().enumerate().skip(1) {
            for (k, dk) in d.iter_mut().enumerate() {
                let mut c = [0; 4];
                c[k] = o;
                let m = find(c)?;
                *dk = (
                    m.latency_us - dense.latency_us,
                    m.perplexity.ln() - dense.perplexity.ln(),
                );
            }
        }
        Some(Surrogate { dense, delta })
    }

    /// The prediction for `c`.
    pub fn predict(&self, c: Choice) -> Measured {
        let (mut lat, mut lp) = (self.dense.latency_us, self.dense.perplexity.ln());
        for (k, &o) in c.iter().enumerate() {
            lat += self.delta[o][k].0;
            lp += self.delta[o][k].1;
        }
        Measured {
            latency_us: lat,
            perplexity: lp.exp(),
        }
    }
}

/// A measurer of a batch of candidates (see [`run`]).
pub type Measure<'a> = dyn FnMut(&[Choice]) -> Result<Vec<Measured>, Error> + 'a;

/// Runs the search over `options` options per class (at least 2: dense and one more),
/// measuring with `measure`, at most `budget` refinement measurements. `measure` gets the
/// candidates of a batch (stage 1, then each round's new frontier points, fastest first)
/// and returns their measurements in order; `progress` hears of each batch. Returns every
/// measured point, in the order measured, each marked with `value_bits` (the width the
/// caller measures at).
pub fn run(
    options: usize,
    budget: usize,
    value_bits: u32,
    measure: &mut Measure<'_>,
    progress: &dyn Fn(&str),
) -> Result<Vec<Point>, Error> {
    if options < 2 {
        return Err(Error::Failed(
            "the explorer needs dense and at least one sparse pattern to choose from".into(),
        ));
    }
    let probes = probes(options);
    let choices: Vec<Choice> = probes.iter().map(|p| p.0).collect();
    progress(&format!(
        "stage 1: {} probes (dense, {} uniform, {} single-class)",
        probes.len(),
        options - 1,
        4 * (options - 1)
    ));
    let got = measure(&choices)?;
    let mut points: Vec<Point> = probes
        .iter()
        .zip(got)
        .map(|(&(choice, stage), measured)| Point {
            choice,
            stage,
            predicted: None,
            value_bits,
            measured,
        })
        .collect();
    let surrogate =
        Surrogate::new(options, &points).ok_or(Error::Failed("a probe was not measured".into()))?;
    let mut spent = 0;
    let mut round = 0;
    while spent < budget {
        let measured: std::collections::HashMap<Choice, Measured> =
            points.iter().map(|p| (p.choice, p.measured)).collect();
        let cands: Vec<Choice> = all_choices(options).collect();
        let values: Vec<Measured> = cands
            .iter()
            .map(|c| {
                measured
                    .get(c)
                    .copied()
                    .unwrap_or_else(|| surrogate.predict(*c))
            })
            .collect();
        let new: Vec<usize> = pareto(&values)
            .into_iter()
            .filter(|&i| !measured.contains_key(&cands[i]))
            .take(budget - spent)
            .collect();
        if new.is_empty() {
            break;
        }
        round += 1;
        progress(&format!(
            "round {round}: {} predicted frontier points to measure",
            new.len()
        ));
        let batch: Vec<Choice> = new.iter().map(|&i| cands[i]).collect();
        let got = measure(&batch)?;
        for (&i, m) in new.iter().zip(got) {
            points.push(Point {
                choice: cands[i],
                stage: Stage::Refined,
                predicted: Some(values[i]),
                value_bits,
                measured: m,
            });
        }
        spent += new.len();
    }
    let mut challengers: Vec<Choice> = Vec::new();
    for u in 1..options {
        let Some(lat) = points
            .iter()
            .find(|p| p.choice == [u; 4])
            .map(|p| p.measured.latency_us)
        else {
            continue;
        };
        let best = all_choices(options)
            .filter(|c| c.iter().any(|&o| o != c[0]))
            .filter(|c| !points.iter().any(|p| p.choice == *c) && !challengers.contains(c))
            .map(|c| (c, surrogate.predict(c)))
            .filter(|(_, m)| m.latency_us <= lat)
            .min_by(|a, b| a.1.perplexity.total_cmp(&b.1.perplexity));
        if let Some((c, _)) = best {
            challengers.push(c);
        }
    }
    if !challengers.is_empty() {
        progress(&format!(
            "challengers: {} mixed candidates predicted best at the speed of a uniform one",
            challengers.len()
        ));
        let got = measure(&challengers)?;
        for (c, m) in challengers.into_iter().zip(got) {
            points.push(Point {
                choice: c,
                stage: Stage::Challenger,
                predicted: Some(surrogate.predict(c)),
                value_bits,
                measured: m,
            });
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(latency_us: f64, perplexity: f64) -> Measured {
        Measured {
            latency_us,
            perplexity,
        }
    }

    #[test]
    fn the_frontier_keeps_the_points_no_other_beats_in_both() {
        let p = [
            m(10.0, 5.0),
            m(8.0, 9.0),
            m(12.0, 4.0),
            m(9.0, 9.5),  // beaten by (8, 9)
            m(10.0, 5.0), // equal to the first: the first is kept
            m(11.0, 5.0), // as good as (10, 5) but slower
        ];
        assert_eq!(pareto(&p), vec![1, 0, 2]);
        // By brute force: a point is on it iff nothing dominates it (first of equals).
        for (i, a) in p.iter().enumerate() {
            let dominated = p.iter().enumerate().any(|(j, b)| {
                let le = b.latency_us <= a.latency_us && b.perplexity <= a.perplexity;
                let lt = b.latency_us < a.latency_us || b.perplexity < a.perplexity;
                le && (lt || j < i)
            });
            assert_eq!(!dominated, pareto(&p).contains(&i), "point {i}");
        }
    }

    #[test]
    fn probes_are_dense_uniforms_and_singles() {
        let p = probes(3);
        assert_eq!(p.len(), 1 + 2 + 8);
        assert_eq!(p[0], ([0; 4], Stage::Dense));
        assert_eq!(p[2], ([2; 4], Stage::Uniform));
        assert_eq!(p[3], ([1, 0, 0, 0], Stage::Single));
        assert_eq!(p[10], ([0, 0, 0, 2], Stage::Single));
        assert_eq!(all_choices(3).count(), 81);
        assert_eq!(all_choices(3).nth(5), Some([0, 0, 1, 2]));
    }

    /// A separable model (latency and log perplexity sums of per-class terms) is predicted
    /// exactly, so the search finds its true frontier, measuring only frontier points.
    #[test]
    fn on_a_separable_model_the_search_finds_the_true_frontier() {
        // Per class, per option: latency change and log-ppl change from dense; sparser
        // options are faster and worse, by seeded random steps (so no two candidates tie).
        let mut rng = crate::rng::SplitMix64::new(3);
        let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut lat, mut lp) = ([[0.0f64; 4]; 4], [[0.0f64; 4]; 4]);
        for k in 0..4 {
            for o in 1..4 {
                lat[k][o] = lat[k][o - 1] - (0.5 + 3.0 * unit());
                lp[k][o] = lp[k][o - 1] + 0.05 + unit();
            }
        }
        let truth = |c: &Choice| {
            let l: f64 = 30.0 + (0..4).map(|k| lat[k][c[k]]).sum::<f64>();
            let q: f64 = (0..4).map(|k| lp[k][c[k]]).sum::<f64>();
            m(l, (3f64.ln() + q).exp())
        };
        let mut calls = 0;
        let points = run(
            4,
            1000,
            16,
            &mut |cs| {
                calls += 1;
                Ok(cs.iter().map(truth).collect())
            },
            &|_| {},
        )
        .unwrap();
        let all: Vec<Choice> = all_choices(4).collect();
        let values: Vec<Measured> = all.iter().map(truth).collect();
        let mut want: Vec<Choice> = pareto(&values).into_iter().map(|i| all[i]).collect();
        let ms: Vec<Measured> = points.iter().map(|p| p.measured).collect();
        let mut have: Vec<Choice> = pareto(&ms).into_iter().map(|i| points[i].choice).collect();
        want.sort();
        have.sort();
        assert_eq!(have, want);
        // Refined points are predicted exactly here.
        for p in points.iter().filter(|p| p.stage == Stage::Refined) {
            let pr = p.predicted.unwrap();
            assert!((pr.latency_us - p.measured.latency_us).abs() < 1e-9);
            assert!((pr.perplexity / p.measured.perplexity - 1.0).abs() < 1e-9);
        }
        // The probes, one round measuring the whole predicted frontier, and at most one more
        // (a prediction and a measurement may round differently), and the challengers.
        assert!(calls <= 4, "{calls} batches");
        assert!(points.len() < 256 / 4, "{} of 256 measured", points.len());
    }

    #[test]
    fn the_budget_bounds_the_refinement() {
        let mut n = 0;
        let points = run(
            5,
            3,
            16,
            &mut |cs| {
                n += cs.len();
                // Interactions the surrogate misses: every round's prediction is wrong.
                Ok(cs
                    .iter()
                    .map(|c| {
                        let s: usize = c.iter().sum();
                        let mix = c.iter().filter(|&&o| o > 0).count() as f64;
                        m(100.0 - s as f64, 1.0 + (s as f64) * mix)
                    })
                    .collect())
            },
            &|_| {},
        )
        .unwrap();
        let challengers = points
            .iter()
            .filter(|p| p.stage == Stage::Challenger)
            .count();
        assert!((1..=4).contains(&challengers), "{challengers} challengers");
        assert_eq!(n, probes(5).len() + 3 + challengers);
        assert_eq!(points.len(), n);
        assert!(run(1, 3, 16, &mut |_| Ok(vec![]), &|_| {}).is_err());
    }
}
