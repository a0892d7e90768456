//! `mobius dora` and `mobius flow`, through the event log's interface: the local data
//! directory, or `--server`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use mobius_insights::text;

use super::backend::Backend;
use super::backend::log::Measure;
use crate::cli::MeasureArgs;
use crate::output::{color_stdout, print_json};

pub async fn dora(data_dir: Option<&Path>, json: bool, args: MeasureArgs) -> Result<ExitCode> {
    let log = Backend::choose(data_dir, &args.remote, None)?.log();
    let reports = log.dora(&measure(&args)).await?;
    if json {
        match (&args.service, reports.as_slice()) {
            (Some(_), [one]) => print_json(one)?,
            _ => print_json(&reports)?,
        }
    } else if reports.is_empty() {
        println!("No deployments or incidents in {} yet.", args.environment);
    } else {
        print!("{}", text::render_dora(&reports, color_stdout()));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn flow(data_dir: Option<&Path>, json: bool, args: MeasureArgs) -> Result<ExitCode> {
    let log = Backend::choose(data_dir, &args.remote, None)?.log();
    let reports = log.flow(&measure(&args)).await?;
    if json {
        match (&args.service, reports.as_slice()) {
            (Some(_), [one]) => print_json(one)?,
            _ => print_json(&reports)?,
        }
    } else if reports.is_empty() {
        println!("No deployments in {} yet.", args.environment);
    } else {
        print!("{}", text::render_flow(&reports, color_stdout()));
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(args: &MeasureArgs) -> Measure {
    Measure {
        service: args.service.clone(),
        environment: args.environment.clone(),
        since: args.since.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        bands: args.bands.clone(),
        explain: args.explain,
    }
}
