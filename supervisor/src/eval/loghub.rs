//! `supervisor eval loghub`.

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the data set.
    #[arg(long)]
    pub data: std::path::PathBuf,
    /// Print the figures as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("eval loghub is not available in this build yet")
}
