//! `mobius postmortem INCIDENT [--output FILE] [--recorded LOCATION]`: a blameless post-mortem
//! draft from what the event log, the facts and the SLI counters say about an incident (see
//! `mobius_reliability::incidents` and `mobius_insights::postmortem`), or the record that it
//! was written; through the reliability interface: the local data directory, or `--server`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::backend::Backend;
use crate::cli::PostmortemArgs;

pub async fn run(data_dir: Option<&Path>, args: PostmortemArgs) -> Result<ExitCode> {
    let reliability = Backend::choose(data_dir, &args.remote, None)?.reliability();
    if let Some(location) = &args.recorded {
        let key = reliability.record_postmortem(&args.incident, location).await?;
        println!("Recorded the post-mortem of {key} at {location}");
        return Ok(ExitCode::SUCCESS);
    }
    let text = reliability.postmortem_draft(&args.incident).await?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            println!("Wrote the draft to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
