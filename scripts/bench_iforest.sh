#!/usr/bin/env bash
# Isolation forest: this crate's implementation against scikit-learn's
# IsolationForest(n_estimators=100, max_samples=256), one thread each, on
# the same data in the same run. Prints both fit and score times, the
# ratios (sklearn time / ours) and both ROC AUCs.
#
# Data: 200,000 rows (override: ROWS=...), 8 and 38 dimensions, Gaussian
# inliers and 1 % outliers shifted by 4σ in a random half of the
# dimensions, generated once with numpy (seed 7) and written to CSV
# (features..., label). Both fit on every row (labels unused) and score
# every row. Fit time: best of 5 fits; score time: one pass over all rows.
#
# scikit-learn is installed with pip into a throw-away virtualenv that is
# deleted on exit.
#
# Usage: scripts/bench_iforest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
cargo build --release -q -p agents --example bench_detect
BIN=${CARGO_TARGET_DIR:-target}/release/examples/bench_detect
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check numpy scikit-learn

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
for DIMS in 8 38; do
  csv="$work/data_$DIMS.csv"
  "$work/venv/bin/python" - "$csv" "$ROWS" "$DIMS" <<'PY'
import sys, numpy as np
path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
x = rng.standard_normal((n, d)).astype(np.float32)
y = rng.random(n) < 0.01
shift = (rng.random((n, d)) < 0.5) & y[:, None]
x = x + 4.0 * shift
np.savetxt(path, np.hstack([x, y[:, None].astype(np.float32)]), delimiter=",", fmt="%.6g")
PY
  ours=$("$BIN" --csv "$csv" --json)
  theirs=$("$work/venv/bin/python" - "$csv" <<'PY'
import sys, json, time, numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
data = np.loadtxt(sys.argv[1], delimiter=",", dtype=np.float32)
x, y = data[:, :-1], data[:, -1] > 0.5
fit = float("inf")
for seed in range(5):
    m = IsolationForest(n_estimators=100, max_samples=256, n_jobs=1, random_state=seed)
    t = time.perf_counter(); m.fit(x); fit = min(fit, time.perf_counter() - t)
t = time.perf_counter(); s = -m.score_samples(x); score = time.perf_counter() - t
print(json.dumps({"fit_s": fit, "score_s": score, "auc": roc_auc_score(y, s)}))
PY
)
  python3 - "$DIMS" "$ROWS" "$ours" "$theirs" <<'PY'
import sys, json
d, n, o, t = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"{d}-dim, {n} rows, 100 trees x 256 samples, one thread:")
print(f"  fit   ours {o['fit_s']*1e3:9.3f} ms   sklearn {t['fit_s']*1e3:9.3f} ms   ratio {t['fit_s']/o['fit_s']:6.1f}x")
print(f"  score ours {o['score_s']:9.3f} s    sklearn {t['score_s']:9.3f} s    ratio {t['score_s']/o['score_s']:6.1f}x"
      f"   (ours {n/o['score_s']/1e6:.2f} M points/s, sklearn {n/t['score_s']/1e6:.2f} M points/s)")
print(f"  ROC AUC ours {o['auc']:.4f}   sklearn {t['auc']:.4f}   difference {o['auc']-t['auc']:+.4f}")
PY
done
