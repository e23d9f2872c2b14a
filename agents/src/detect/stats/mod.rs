//! Streaming statistical detectors. Pure logic; the detect actor drives them.
//!
//! - [`robust`]: per-stream Holt(-Winters) baseline with a robust spread:
//!   spikes, level shifts, variance changes on one univariate series.
//! - [`iforest`]: isolation forest (Liu et al. 2008) with a flat,
//!   branch-free tree layout, and a sliding reservoir to retrain from.
//! - [`kmeans`]: distance-to-nearest-centroid scoring (linfa-clustering).
//! - [`novelty`]: novelty against the stream's own history: a new extreme
//!   of its range, and a window shape unlike any remembered one (scored by
//!   its tail probability).
//! - [`ensemble`]: calibrated [0,1] score, hysteresis flag, ranked evidence;
//!   the univariate and multivariate detectors built from the parts above.

pub mod ensemble;
pub mod iforest;
pub mod kmeans;
pub mod novelty;
pub mod robust;
pub mod seasonal;
