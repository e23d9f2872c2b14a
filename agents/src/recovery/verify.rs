//! Verification: a health check that must pass within a limit and keep
//! passing for a hold window. [`Hold`] is the pure rule; [`verify`] polls
//! the real check (HTTP status, command exit, metric below a threshold).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::{Check, Verification};
use super::exec::{Executors, check_url, run_command};

/// The state of one verification.
#[derive(Clone, Debug)]
pub struct Hold {
    deadline_ms: u64,
    hold_ms: u64,
    passing_since: Option<u64>,
}

/// What the next observation means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Keep checking.
    Pending,
    /// Passed and held for the whole window.
    Passed,
    /// Did not pass and hold before the limit.
    Failed,
}

impl Hold {
    /// Times in ms since the verification started.
    pub fn new(within_ms: u64, hold_ms: u64) -> Self {
        Self {
            deadline_ms: within_ms,
            hold_ms,
            passing_since: None,
        }
    }

    /// A check result at `t_ms`. A failure during the hold window restarts
    /// it; the check must *start* passing before the limit and then hold.
    pub fn observe(&mut self, t_ms: u64, ok: bool) -> Progress {
        if ok {
            let since = *self.passing_since.get_or_insert(t_ms);
            if t_ms - since >= self.hold_ms {
                return Progress::Passed;
            }
            if since > self.deadline_ms {
                return Progress::Failed;
            }
            Progress::Pending
        } else {
            self.passing_since = None;
            if t_ms >= self.deadline_ms {
                Progress::Failed
            } else {
                Progress::Pending
            }
        }
    }
}

/// The result of a verification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub checks: u32,
    pub detail: String,
    pub elapsed_ms: u64,
}

/// Run one check once: `Ok(())` = healthy, `Err(why)` otherwise.
pub async fn check_once(ex: &Executors, check: &Check, timeout: Duration) -> Result<(), String> {
    match check {
        Check::Http { url, status } => {
            let url = check_url(url, &ex.allowed_hosts)?;
            let r = ex
                .http
                .get(url.clone())
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let code = r.status().as_u16();
            if code == *status {
                Ok(())
            } else {
                Err(format!("{url} answered {code}, expected {status}"))
            }
        }
        Check::Command {
            program,
            args,
            exit,
        } => {
            let r = run_command(program, args, timeout).await;
            if r.exit == Some(*exit) {
                Ok(())
            } else {
                Err(r.detail)
            }
        }
        Check::Metric { url, name, below } => {
            let url = check_url(url, &ex.allowed_hosts)?;
            let text = ex
                .http
                .get(url.clone())
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .text()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let values = metric_values(&text, name);
            if values.is_empty() {
                return Err(format!("no series {name} at {url}"));
            }
            let worst = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if worst < *below {
                Ok(())
            } else {
                Err(format!("{name} = {worst}, not below {below}"))
            }
        }
    }
}

/// Values of every series named exactly `name` in Prometheus text.
pub fn metric_values(text: &str, name: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = if rest.starts_with('{') {
                &rest[rest.find('}')? + 1..]
            } else if rest.starts_with(' ') {
                rest
            } else {
                return None;
            };
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// Poll the verification's check until it passes and holds, or fails.
pub async fn verify(ex: &Executors, v: &Verification) -> Verdict {
    let started = Instant::now();
    let mut hold = Hold::new(v.within.0.as_millis() as u64, v.hold.0.as_millis() as u64);
    let mut checks = 0;
    let mut last = String::new();
    loop {
        let r = check_once(ex, &v.check, v.timeout.0).await;
        checks += 1;
        let t = started.elapsed().as_millis() as u64;
        if let Err(e) = &r {
            last = e.clone();
        }
        match hold.observe(t, r.is_ok()) {
            Progress::Passed => {
                return Verdict {
                    passed: true,
                    checks,
                    detail: format!("healthy, held for {:?}", v.hold.0),
                    elapsed_ms: t,
                };
            }
            Progress::Failed => {
                return Verdict {
                    passed: false,
                    checks,
                    detail: format!("not healthy within {:?}: {last}", v.within.0),
                    elapsed_ms: t,
                };
            }
            Progress::Pending => tokio::time::sleep(v.interval.0).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn must_pass_before_the_limit_and_hold() {
        let mut h = Hold::new(1000, 300);
        assert_eq!(h.observe(0, false), Progress::Pending);
        assert_eq!(h.observe(500, true), Progress::Pending);
        // A failure in the hold window restarts it.
        assert_eq!(h.observe(700, false), Progress::Pending);
        assert_eq!(h.observe(900, true), Progress::Pending);
        assert_eq!(h.observe(1100, true), Progress::Pending);
        assert_eq!(h.observe(1200, true), Progress::Passed);

        let mut h = Hold::new(1000, 300);
        assert_eq!(h.observe(1000, false), Progress::Failed);
        let mut h = Hold::new(1000, 300);
        assert_eq!(h.observe(1100, true), Progress::Failed);
        let mut h = Hold::new(1000, 0);
        assert_eq!(h.observe(10, true), Progress::Passed);
    }

    #[test]
    fn metric_values_match_the_exact_name() {
        let text = "# HELP x\nqueue_depth{pool=\"a\"} 3\nqueue_depth 5.5\nqueue_depth_max 99\n";
        assert_eq!(metric_values(text, "queue_depth"), vec![3.0, 5.5]);
    }
}
