//! Distance-to-nearest-centroid scoring, with centroids fitted by
//! linfa-clustering's k-means (k-means++ init, Lloyd iterations).
//!
//! The model keeps only the centroids (`k × dims` `f64`) and a calibration
//! of training distances (median and a high quantile), so a point's score is
//! its nearest-centroid distance relative to how far training points lay.
//! Fitting is a pure function of a snapshot (run off the hot path).

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::KMeans;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::robust::squash;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KMeansConfig {
    /// Number of clusters.
    pub k: usize,
    /// Lloyd iterations at most.
    pub max_iter: u64,
    /// Training-distance quantile that maps to score 0.5.
    pub quantile: f64,
}

impl Default for KMeansConfig {
    fn default() -> Self {
        KMeansConfig {
            k: 8,
            max_iter: 50,
            quantile: 0.995,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CentroidModel {
    dims: usize,
    /// `k × dims`, row-major.
    centroids: Vec<f64>,
    /// Median nearest-centroid distance of the training rows.
    median: f64,
    /// The `quantile` of those distances.
    high: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum KMeansFitError {
    #[error("cannot cluster {rows} rows into {k} clusters")]
    TooFewRows { rows: usize, k: usize },
    #[error("k-means: {0}")]
    Linfa(String),
}

impl CentroidModel {
    pub fn fit(data: ArrayView2<f32>, cfg: &KMeansConfig) -> Result<Self, KMeansFitError> {
        let (n, dims) = data.dim();
        let k = cfg.k.max(1);
        if n < k.max(2) || dims == 0 {
            return Err(KMeansFitError::TooFewRows { rows: n, k });
        }
        let x: Array2<f64> = data.mapv(f64::from);
        let ds = DatasetBase::from(x.clone());
        let model = KMeans::params(k)
            .n_runs(1)
            .max_n_iterations(cfg.max_iter)
            .tolerance(1e-4)
            .fit(&ds)
            .map_err(|e| KMeansFitError::Linfa(e.to_string()))?;
        let c = model.centroids();
        let mut m = CentroidModel {
            dims,
            centroids: c.iter().copied().collect(),
            median: 0.0,
            high: 0.0,
        };
        let mut d: Vec<f64> = x
            .rows()
            .into_iter()
            .map(|r| m.distance(r.as_slice().unwrap_or(&[])))
            .collect();
        d.sort_by(f64::total_cmp);
        m.median = quantile_sorted(&d, 0.5);
        m.high = quantile_sorted(&d, cfg.quantile);
        Ok(m)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Euclidean distance to the nearest centroid.
    pub fn distance(&self, x: &[f64]) -> f64 {
        if x.len() != self.dims {
            return f64::NAN;
        }
        self.centroids
            .chunks_exact(self.dims)
            .map(|c| c.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
            .fold(f64::INFINITY, f64::min)
            .sqrt()
    }

    /// Score in [0,1]: 0.5 at the training quantile, → 1 far beyond it.
    pub fn score(&self, x: &[f64]) -> f64 {
        let d = self.distance(x);
        if d.is_nan() {
            return 0.0;
        }
        let span = (self.high - self.median).max(1e-9 * (1.0 + self.high.abs()));
        // (d - median)/span is 1 at the high quantile.
        squash((d - self.median).max(0.0) / span, 1.0)
    }
}

/// Linear-interpolated quantile of an ascending slice (0 when empty).
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn blobs(seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = [[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut v = Vec::new();
        for i in 0..600 {
            let c = centres[i % 3];
            v.push(c[0] + rng.random::<f32>() - 0.5);
            v.push(c[1] + rng.random::<f32>() - 0.5);
        }
        Array2::from_shape_vec((600, 2), v).expect("shape")
    }

    #[test]
    fn far_points_score_high_and_cluster_members_low() {
        let m = CentroidModel::fit(
            blobs(1).view(),
            &KMeansConfig {
                k: 3,
                ..Default::default()
            },
        )
        .expect("fit");
        assert!(m.score(&[10.0, 0.1]) < 0.5);
        assert!(m.score(&[0.1, 9.9]) < 0.5);
        assert!(m.score(&[5.0, 5.0]) > 0.95);
        assert!(m.score(&[-30.0, 0.0]) > 0.95);
    }

    #[test]
    fn too_few_rows_is_an_error() {
        let x = Array2::<f32>::zeros((3, 2));
        assert!(CentroidModel::fit(x.view(), &KMeansConfig::default()).is_err());
    }

    #[test]
    fn wrong_width_scores_zero() {
        let m = CentroidModel::fit(
            blobs(2).view(),
            &KMeansConfig {
                k: 3,
                ..Default::default()
            },
        )
        .expect("fit");
        assert_eq!(m.score(&[1.0]), 0.0);
    }

    proptest! {
        #[test]
        fn scores_stay_in_unit_interval(x in -1e9f64..1e9, y in -1e9f64..1e9) {
            let m = CentroidModel::fit(blobs(3).view(), &KMeansConfig { k: 3, ..Default::default() })
                .expect("fit");
            let s = m.score(&[x, y]);
            prop_assert!((0.0..=1.0).contains(&s));
        }
    }
}
