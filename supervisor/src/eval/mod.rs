//! `supervisor eval ...`: quality figures on public labelled data, computed
//! by the same code the live pipeline runs, printing how each figure is
//! computed (`--json`: one JSON object on stdout).

pub mod loghub;
pub mod nab;
pub mod rca;
pub mod smd;

#[derive(Debug, clap::Subcommand)]
pub enum EvalCmd {
    /// Numenta Anomaly Benchmark: NAB score per profile.
    Nab(nab::Args),
    /// Server Machine Dataset: precision / recall / F1 and interpretation hit rate.
    Smd(smd::Args),
    /// Loghub 2k samples: template grouping and parsing accuracy.
    Loghub(loghub::Args),
    /// Root-cause analysis on generated or recorded fault scenarios.
    Rca(rca::Args),
}

pub fn run(cmd: EvalCmd) -> anyhow::Result<()> {
    match cmd {
        EvalCmd::Nab(a) => nab::run(a),
        EvalCmd::Smd(a) => smd::run(a),
        EvalCmd::Loghub(a) => loghub::run(a),
        EvalCmd::Rca(a) => rca::run(a),
    }
}
