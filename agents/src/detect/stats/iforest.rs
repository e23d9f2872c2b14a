//! Isolation forest (Liu, Ting, Zhou 2008), on ndarray.
//!
//! Each tree is grown on a random subsample of `sample_size` rows (256 by
//! default) to the height limit `D = ceil(log2(sample_size))`; a split picks
//! a random non-constant feature and a uniform threshold between its min and
//! max in the node. The anomaly score is `2^(-E[h(x)] / c(ψ))` where `h` is
//! the path length plus `c(n)` for the rows left in the leaf and `c(n) =
//! 2H(n-1) - 2(n-1)/n` the mean unsuccessful-search length of a BST.
//!
//! Layout: every tree is a *complete* binary tree of height `D` stored as a
//! flat array (children of node `i` at `2i+1`, `2i+2`): `2^D - 1` internal
//! nodes of 8 bytes (`f32` threshold, `u32` feature) and `2^D` leaf path
//! lengths (`f32`). A leaf reached before depth `D` is expanded into a
//! pass-through subtree (threshold `+∞`: always left) whose leaves all hold
//! its path length, so scoring is exactly `D` steps of
//! `i = 2i + 1 + (x[f] >= t)` with no data-dependent branch. 256 samples →
//! 3 KiB per tree, 300 KiB per 100-tree forest (fits in L2). Points are
//! walked sixteen at a time through each tree so the sixteen dependent
//! load chains overlap (against eight: 8 dimensions 1.45 vs 1.28 M points/s,
//! median of 5 interleaved best-of-5 runs; 38 dimensions 1.20 vs 1.23, the
//! same within noise).
//!
//! [`Reservoir`] keeps the most recent rows (a ring buffer of `capacity ×
//! dims` `f32`) to retrain from; fitting is a pure function of a snapshot, so
//! the caller can run it off the hot path and swap the model in.

use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
/// Points walked together through one tree.
const LANES: usize = 16;

/// Average path length of an unsuccessful BST search among `n` keys.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForestConfig {
    pub n_trees: usize,
    pub sample_size: usize,
    pub seed: u64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        ForestConfig {
            n_trees: 100,
            sample_size: 256,
            seed: 0x5eed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Node {
    /// `null` in JSON for the pass-through `+∞` (JSON has no infinity).
    #[serde(with = "threshold")]
    thr: f32,
    feat: u32,
}

mod threshold {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_some(v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::INFINITY))
    }
}

const PASS: Node = Node {
    thr: f32::INFINITY,
    feat: 0,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    dims: usize,
    depth: u32,
    n_trees: usize,
    /// `n_trees × 2^depth` slots: each tree's `2^depth - 1` internal nodes
    /// and one unused slot, so a tree is a power-of-two array.
    nodes: Vec<Node>,
    /// `n_trees × 2^depth` leaf path lengths.
    leaves: Vec<f32>,
    /// `c(ψ)` of the subsample size actually used.
    norm: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error("cannot fit on {0} rows")]
    TooFewRows(usize),
    #[error("rows have 0 dimensions")]
    NoDimensions,
}

impl IsolationForest {
    /// Fit on the rows of `data` (one point per row).
    pub fn fit(data: ArrayView2<f32>, cfg: &ForestConfig) -> Result<Self, FitError> {
        let (n, dims) = data.dim();
        if dims == 0 {
            return Err(FitError::NoDimensions);
        }
        if n < 2 {
            return Err(FitError::TooFewRows(n));
        }
        let data = data.as_standard_layout();
        let flat = data.as_slice().unwrap_or(&[]);
        let psi = cfg.sample_size.clamp(2, n);
        let depth = (psi as f64).log2().ceil().max(1.0) as u32;
        let internal = (1usize << depth) - 1;
        let n_trees = cfg.n_trees.max(1);
        let mut forest = IsolationForest {
            dims,
            depth,
            n_trees,
            nodes: vec![PASS; n_trees * (internal + 1)],
            leaves: vec![0.0; n_trees * (internal + 1)],
            norm: c_factor(psi),
        };
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut pool: Vec<u32> = (0..n as u32).collect();
        let mut sample = vec![0f32; psi * dims];
        let mut idx: Vec<u32> = Vec::with_capacity(psi);
        for t in 0..n_trees {
            // Partial Fisher–Yates: the first psi of `pool` are the subsample.
            for i in 0..psi {
                let j = rng.random_range(i..n);
                pool.swap(i, j);
                let r = pool[i] as usize;
                sample[i * dims..(i + 1) * dims].copy_from_slice(&flat[r * dims..(r + 1) * dims]);
            }
            idx.clear();
            idx.extend(0..psi as u32);
            let mut b = Builder {
                dims,
                depth,
                sample: &sample,
                nodes: &mut forest.nodes[t * (internal + 1)..t * (internal + 1) + internal],
                leaves: &mut forest.leaves[t * (internal + 1)..(t + 1) * (internal + 1)],
                rng: &mut rng,
            };
            b.grow(0, 0, &mut idx);
        }
        Ok(forest)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn n_trees(&self) -> usize {
        self.n_trees
    }

    /// Score one point (`dims` values); 0.5 ≈ ordinary, → 1 isolated early.
    pub fn score_one(&self, x: &[f32]) -> f64 {
        let mut out = [0.0];
        self.score_rows(x, &mut out);
        out[0]
    }

    /// Score every row of `data`.
    pub fn score(&self, data: ArrayView2<f32>) -> Array1<f64> {
        let data = data.as_standard_layout();
        let mut out = Array1::zeros(data.nrows());
        if data.ncols() == self.dims
            && let (Some(flat), Some(o)) = (data.as_slice(), out.as_slice_mut())
        {
            self.score_rows(flat, o);
        }
        out
    }

    /// Score row-major points `rows` (`out.len()` rows of `dims` values).
    pub fn score_rows(&self, rows: &[f32], out: &mut [f64]) {
        if self.depth == 8 {
            match self.dims {
                1..=8 => return self.score_rows_d8::<8>(rows, out),
                9..=16 => return self.score_rows_d8::<16>(rows, out),
                17..=32 => return self.score_rows_d8::<32>(rows, out),
                33..=64 => return self.score_rows_d8::<64>(rows, out),
                _ => {}
            }
        }
        self.score_rows_any(rows, out)
    }

    /// The common case (256-sample trees, ≤ 64 dims) with every index
    /// masked into a fixed-size array, so the walk has no bounds checks:
    /// rows are copied into `P`-wide lanes, trees viewed as `[Node; 256]`.
    fn score_rows_d8<const P: usize>(&self, rows: &[f32], out: &mut [f64]) {
        // Tree-outer over blocks of BLOCK points: one tree (3 KiB) stays in
        // L1 while the whole block walks it, LANES lanes at a time.
        const BLOCK: usize = 64;
        let d = self.dims;
        let n = out.len().min(rows.len() / d.max(1));
        let inv = 1.0 / (self.n_trees as f64 * self.norm.max(f64::MIN_POSITIVE));
        let mut buf = [[0f32; P]; BLOCK];
        let mut start = 0;
        while start + BLOCK <= n {
            for (l, b) in buf.iter_mut().enumerate() {
                b[..d].copy_from_slice(&rows[(start + l) * d..(start + l + 1) * d]);
            }
            let mut sum = [0f32; BLOCK];
            for (nodes, leaves) in self
                .nodes
                .chunks_exact(256)
                .zip(self.leaves.chunks_exact(256))
            {
                let (Ok(nodes), Ok(leaves)) = (
                    <&[Node; 256]>::try_from(nodes),
                    <&[f32; 256]>::try_from(leaves),
                ) else {
                    continue;
                };
                for (lanes, sums) in buf.chunks_exact(LANES).zip(sum.chunks_exact_mut(LANES)) {
                    let mut at = [0usize; LANES];
                    for _ in 0..8 {
                        for (i, b) in at.iter_mut().zip(lanes) {
                            let node = nodes[*i & 255];
                            let v = b[node.feat as usize & (P - 1)];
                            *i = 2 * *i + 1 + usize::from(v >= node.thr);
                        }
                    }
                    for (s, i) in sums.iter_mut().zip(&at) {
                        *s += leaves[i.wrapping_sub(255) & 255];
                    }
                }
            }
            for (o, s) in out[start..start + BLOCK].iter_mut().zip(&sum) {
                *o = (2f64).powf(-f64::from(*s) * inv);
            }
            start += BLOCK;
        }
        if start < n {
            self.score_rows_any(&rows[start * d..n * d], &mut out[start..n]);
        }
    }

    /// The general walk (any depth, any width): the reference the fixed
    /// fast path is tested and benchmarked against.
    pub fn score_rows_any(&self, rows: &[f32], out: &mut [f64]) {
        let d = self.dims;
        let internal = (1usize << self.depth) - 1;
        let n = out.len().min(rows.len() / d.max(1));
        let inv = 1.0 / (self.n_trees as f64 * self.norm.max(f64::MIN_POSITIVE));
        let mut start = 0;
        while start < n {
            let lanes = LANES.min(n - start);
            let block = &rows[start * d..(start + lanes) * d];
            let mut sum = [0f32; LANES];
            for t in 0..self.n_trees {
                let nodes = &self.nodes[t * (internal + 1)..(t + 1) * (internal + 1)];
                let leaves = &self.leaves[t * (internal + 1)..(t + 1) * (internal + 1)];
                let mut at = [0usize; LANES];
                if lanes == LANES {
                    for _ in 0..self.depth {
                        for (l, i) in at.iter_mut().enumerate() {
                            let node = nodes[*i];
                            let v = block[l * d + node.feat as usize];
                            *i = 2 * *i + 1 + usize::from(v >= node.thr);
                        }
                    }
                    for l in 0..LANES {
                        sum[l] += leaves[at[l] - internal];
                    }
                } else {
                    for l in 0..lanes {
                        let mut i = 0usize;
                        for _ in 0..self.depth {
                            let node = nodes[i];
                            let v = block[l * d + node.feat as usize];
                            i = 2 * i + 1 + usize::from(v >= node.thr);
                        }
                        sum[l] += leaves[i - internal];
                    }
                }
            }
            for l in 0..lanes {
                out[start + l] = (2f64).powf(-(sum[l] as f64) * inv);
            }
            start += lanes;
        }
    }
}

struct Builder<'a> {
    dims: usize,
    depth: u32,
    sample: &'a [f32],
    nodes: &'a mut [Node],
    leaves: &'a mut [f32],
    rng: &'a mut StdRng,
}

impl Builder<'_> {
    fn grow(&mut self, node: usize, depth: u32, idx: &mut [u32]) {
        if depth < self.depth
            && idx.len() > 1
            && let Some((feat, thr)) = self.pick_split(idx)
        {
            self.nodes[node] = Node {
                thr,
                feat: feat as u32,
            };
            // Partition: x < thr to the front (left).
            let mut lo = 0;
            for k in 0..idx.len() {
                if self.sample[idx[k] as usize * self.dims + feat] < thr {
                    idx.swap(lo, k);
                    lo += 1;
                }
            }
            let (l, r) = idx.split_at_mut(lo);
            self.grow(2 * node + 1, depth + 1, l);
            self.grow(2 * node + 2, depth + 1, r);
            return;
        }
        let h = depth as f32 + c_factor(idx.len()) as f32;
        self.fill_leaf(node, h);
    }

    /// A random feature that is not constant in the node, and a threshold
    /// strictly above its min and at most its max (both sides non-empty).
    fn pick_split(&mut self, idx: &[u32]) -> Option<(usize, f32)> {
        let first = self.rng.random_range(0..self.dims);
        for k in 0..self.dims {
            let f = (first + k) % self.dims;
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &r in idx {
                let v = self.sample[r as usize * self.dims + f];
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if lo < hi && lo.is_finite() && hi.is_finite() {
                let u: f32 = self.rng.random();
                let mut t = lo + u * (hi - lo);
                if t <= lo || t > hi {
                    t = hi;
                }
                return Some((f, t));
            }
        }
        None
    }

    /// Make `node` (at any depth) a leaf of path length `h`: its internal
    /// descendants pass everything left and every leaf below holds `h`.
    fn fill_leaf(&mut self, node: usize, h: f32) {
        let internal = self.nodes.len();
        if node >= internal {
            self.leaves[node - internal] = h;
            return;
        }
        self.nodes[node] = PASS;
        self.fill_leaf(2 * node + 1, h);
        self.fill_leaf(2 * node + 2, h);
    }
}

/// The most recent `capacity` rows of a stream, to retrain from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reservoir {
    dims: usize,
    capacity: usize,
    next: usize,
    len: usize,
    rows: Vec<f32>,
}

impl Reservoir {
    pub fn new(dims: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Reservoir {
            dims,
            capacity,
            next: 0,
            len: 0,
            rows: vec![0.0; dims * capacity],
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Append one row (ignored unless it has `dims` values).
    pub fn push(&mut self, row: &[f32]) {
        if row.len() != self.dims {
            return;
        }
        let d = self.dims;
        self.rows[self.next * d..(self.next + 1) * d].copy_from_slice(row);
        self.next = (self.next + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// A copy of the rows held, oldest first.
    pub fn snapshot(&self) -> Array2<f32> {
        let d = self.dims;
        let mut out = Vec::with_capacity(self.len * d);
        let start = if self.len < self.capacity {
            0
        } else {
            self.next
        };
        for k in 0..self.len {
            let r = (start + k) % self.capacity;
            out.extend_from_slice(&self.rows[r * d..(r + 1) * d]);
        }
        Array2::from_shape_vec((self.len, d), out).unwrap_or_else(|_| Array2::zeros((0, d)))
    }
}

/// Area under the ROC curve of `scores` against `labels` (ties averaged).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = pairs.iter().filter(|p| p.1).count() as f64;
    let neg = pairs.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += avg_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    /// `n` Gaussian-ish inliers around 0 plus `k` outliers at distance ~6.
    pub(crate) fn planted(n: usize, k: usize, dims: usize, seed: u64) -> (Array2<f32>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n + k {
            let out = i >= n;
            for _ in 0..dims {
                let g: f32 = (0..4).map(|_| rng.random::<f32>() - 0.5).sum::<f32>();
                let off = if out {
                    if rng.random::<bool>() { 6.0 } else { -6.0 }
                } else {
                    0.0
                };
                rows.push(g + off);
            }
            labels.push(out);
        }
        (
            Array2::from_shape_vec((n + k, dims), rows).expect("shape"),
            labels,
        )
    }

    #[test]
    fn c_factor_matches_the_paper() {
        assert_eq!(c_factor(1), 0.0);
        assert_eq!(c_factor(2), 1.0);
        // c(256) ≈ 10.24 (2·(ln 255 + γ) − 2·255/256).
        assert!((c_factor(256) - 10.2448).abs() < 1e-3);
    }

    #[test]
    fn planted_outliers_score_higher_than_inliers() {
        let (x, y) = planted(2000, 20, 8, 1);
        let f = IsolationForest::fit(x.view(), &ForestConfig::default()).expect("fit");
        let s = f.score(x.view());
        let auc = roc_auc(s.as_slice().expect("slice"), &y);
        assert!(auc > 0.99, "auc {auc}");
        let min_out = (2000..2020).map(|i| s[i]).fold(1.0, f64::min);
        let mean_in = (0..2000).map(|i| s[i]).sum::<f64>() / 2000.0;
        assert!(min_out > mean_in, "{min_out} vs {mean_in}");
    }

    #[test]
    fn a_forest_round_trips_through_json_pass_through_nodes_included() {
        let (x, _) = planted(300, 3, 4, 3);
        let f = IsolationForest::fit(x.view(), &ForestConfig::default()).expect("fit");
        let j = serde_json::to_string(&f).expect("serialise");
        assert!(j.contains("null"), "a 300-row fit has pass-through nodes");
        let g: IsolationForest = serde_json::from_str(&j).expect("deserialise");
        assert!(j == serde_json::to_string(&g).expect("serialise"));
        assert!(f.score(x.view()) == g.score(x.view()));
    }

    #[test]
    fn block_and_single_scoring_agree() {
        let (x, _) = planted(37, 3, 5, 2);
        let f = IsolationForest::fit(x.view(), &ForestConfig::default()).expect("fit");
        let all = f.score(x.view());
        for (i, row) in x.rows().into_iter().enumerate() {
            let one = f.score_one(row.as_slice().expect("row"));
            assert!((one - all[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn fast_and_general_walks_agree() {
        // 300 rows: full 256-row subsamples, so depth-8 trees and the fixed
        // walk (blocks of 64 points, then the general walk for the last 44).
        for dims in [1, 8, 9, 38, 64, 65] {
            let (x, _) = planted(297, 3, dims, dims as u64);
            let f = IsolationForest::fit(x.view(), &ForestConfig::default()).expect("fit");
            assert_eq!(f.depth, 8);
            let flat = x.as_slice().expect("contiguous");
            let (mut a, mut b) = (vec![0.0; 300], vec![0.0; 300]);
            f.score_rows(flat, &mut a);
            f.score_rows_any(flat, &mut b);
            assert_eq!(a, b, "dims {dims}");
        }
    }

    #[test]
    fn fit_rejects_degenerate_input() {
        let x = Array2::<f32>::zeros((1, 3));
        assert_eq!(
            IsolationForest::fit(x.view(), &ForestConfig::default()),
            Err(FitError::TooFewRows(1))
        );
        let x = Array2::<f32>::zeros((5, 0));
        assert_eq!(
            IsolationForest::fit(x.view(), &ForestConfig::default()),
            Err(FitError::NoDimensions)
        );
    }

    #[test]
    fn constant_data_gives_uniform_scores() {
        let x = Array2::<f32>::from_elem((300, 4), 3.0);
        let f = IsolationForest::fit(x.view(), &ForestConfig::default()).expect("fit");
        let s = f.score(x.view());
        assert!(s.iter().all(|&v| (v - s[0]).abs() < 1e-12));
    }

    #[test]
    fn reservoir_keeps_the_most_recent_rows() {
        let mut r = Reservoir::new(2, 3);
        for i in 0..5 {
            r.push(&[i as f32, -(i as f32)]);
        }
        r.push(&[9.0]); // wrong width: ignored
        let s = r.snapshot();
        assert_eq!(s.nrows(), 3);
        assert_eq!(s.column(0).to_vec(), vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn auc_of_perfect_and_inverted_rankings() {
        assert_eq!(roc_auc(&[0.1, 0.2, 0.9], &[false, false, true]), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.2, 0.1], &[false, false, true]), 0.0);
    }

    proptest! {
        #[test]
        fn scores_stay_in_unit_interval(
            vals in proptest::collection::vec(-1e6f32..1e6, 6..300),
            probe in proptest::collection::vec(proptest::num::f32::ANY, 3),
        ) {
            let n = vals.len() / 3;
            let x = Array2::from_shape_vec((n, 3), vals[..n * 3].to_vec()).expect("shape");
            let cfg = ForestConfig { n_trees: 10, ..ForestConfig::default() };
            let f = IsolationForest::fit(x.view(), &cfg).expect("fit");
            let s = f.score_one(&probe);
            prop_assert!((0.0..=1.0).contains(&s), "score {}", s);
        }
    }
}
