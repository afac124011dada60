//! Train/validation/test splits of a molecule set: random, scaffold (balanced, as chemprop's
//! `scaffold_balanced`) and k-fold cross-validation.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Indices of the three parts of a split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows (pick the epoch).
    pub val: Vec<usize>,
    /// Test rows (reported).
    pub test: Vec<usize>,
}

/// How rows are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// Shuffled rows.
    Random,
    /// Whole scaffold groups go to one part (balanced, as chemprop).
    Scaffold,
}

impl SplitKind {
    /// Parse `random` or `scaffold`.
    pub fn parse(s: &str) -> Option<SplitKind> {
        match s {
            "random" => Some(SplitKind::Random),
            "scaffold" | "scaffold_balanced" => Some(SplitKind::Scaffold),
            _ => None,
        }
    }
}

fn sizes(n: usize, fractions: (f64, f64, f64)) -> (usize, usize) {
    let train = (fractions.0 * n as f64).floor() as usize;
    let val = ((fractions.0 + fractions.1) * n as f64).floor() as usize - train;
    (train, val)
}

/// Shuffle `0..n` with `seed` and cut it at `fractions` (train, val, test; summing to 1).
pub fn random_split(n: usize, fractions: (f64, f64, f64), seed: u64) -> Split {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (nt, nv) = sizes(n, fractions);
    Split {
        train: idx[..nt].to_vec(),
        val: idx[nt..nt + nv].to_vec(),
        test: idx[nt + nv..].to_vec(),
    }
}

/// chemprop's balanced scaffold split: groups larger than half the validation or test size
/// are placed first (in random order), then the small groups (in random order); each group
/// goes to train while it fits, else to validation while it fits, else to test.
pub fn scaffold_split(scaffolds: &[String], fractions: (f64, f64, f64), seed: u64) -> Split {
    let n = scaffolds.len();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in scaffolds.iter().enumerate() {
        groups.entry(s.as_str()).or_default().push(i);
    }
    let train_size = (fractions.0 * n as f64).floor() as usize;
    let val_size = (fractions.1 * n as f64).floor() as usize;
    let test_size = n - train_size - val_size;
    let (mut big, mut small): (Vec<Vec<usize>>, Vec<Vec<usize>>) = groups
        .into_values()
        .partition(|g| 2 * g.len() > val_size || 2 * g.len() > test_size);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    big.shuffle(&mut rng);
    small.shuffle(&mut rng);
    let mut out = Split::default();
    for g in big.into_iter().chain(small) {
        if out.train.len() + g.len() <= train_size {
            out.train.extend(g);
        } else if out.val.len() + g.len() <= val_size {
            out.val.extend(g);
        } else {
            out.test.extend(g);
        }
    }
    out
}

/// Fold `k` of `folds` (0-based): shuffled rows cut into `folds` equal parts; part `k` is the
/// test set, part `k + 1` (cyclically) validates, the rest trains.
pub fn kfold_split(n: usize, folds: usize, k: usize, seed: u64) -> Split {
    let folds = folds.max(3);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let part = |p: usize| -> std::ops::Range<usize> { (p * n / folds)..((p + 1) * n / folds) };
    let (t, v) = (k % folds, (k + 1) % folds);
    let mut out = Split {
        test: idx[part(t)].to_vec(),
        val: idx[part(v)].to_vec(),
        ..Split::default()
    };
    for p in (0..folds).filter(|&p| p != t && p != v) {
        out.train.extend_from_slice(&idx[part(p)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_partition(s: &Split, n: usize) -> bool {
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.val)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort_unstable();
        all == (0..n).collect::<Vec<_>>()
    }

    proptest! {
        #[test]
        fn random_split_partitions(n in 0usize..500, seed in 0u64..1000) {
            let s = random_split(n, (0.8, 0.1, 0.1), seed);
            prop_assert!(is_partition(&s, n));
            prop_assert_eq!(s.train.len(), (0.8 * n as f64).floor() as usize);
        }

        #[test]
        fn scaffold_split_keeps_groups_whole(labels in proptest::collection::vec(0u8..30, 1..300), seed in 0u64..100) {
            let scaffolds: Vec<String> = labels.iter().map(|l| format!("s{l}")).collect();
            let s = scaffold_split(&scaffolds, (0.8, 0.1, 0.1), seed);
            prop_assert!(is_partition(&s, scaffolds.len()));
            for part in [&s.train, &s.val, &s.test] {
                for &i in part.iter() {
                    for other in [&s.train, &s.val, &s.test] {
                        if !std::ptr::eq(other, part) {
                            prop_assert!(!other.iter().any(|&j| scaffolds[j] == scaffolds[i]));
                        }
                    }
                }
            }
            prop_assert!(s.train.len() <= (0.8 * scaffolds.len() as f64).floor() as usize);
        }

        #[test]
        fn kfold_tests_every_row_once(n in 3usize..200, folds in 3usize..8, seed in 0u64..50) {
            let mut seen = vec![0; n];
            for k in 0..folds {
                let s = kfold_split(n, folds, k, seed);
                prop_assert!(is_partition(&s, n));
                for &i in &s.test { seen[i] += 1; }
            }
            prop_assert!(seen.iter().all(|&c| c == 1));
        }
    }
}
