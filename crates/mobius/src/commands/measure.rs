//! `mobius dora` and `mobius flow`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use jiff::Timestamp;
use mobius_insights::dora::DoraReport;
use mobius_insights::flow::FlowReport;
use mobius_insights::text;
use mobius_log::query::{self, Selection};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::cli::MeasureArgs;
use crate::client::Client;
use crate::output::{color_stdout, print_json};

pub async fn dora(data_dir: Option<&Path>, json: bool, args: MeasureArgs) -> Result<ExitCode> {
    let reports: Vec<DoraReport> = match Client::from(&args.remote)? {
        Some(client) => remote(&client, "/api/v1/dora", &args).await?,
        None => {
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            query::dora(store.as_ref(), &selection(&args)?, &args.bands, args.explain)?
        }
    };
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
    let reports: Vec<FlowReport> = match Client::from(&args.remote)? {
        Some(client) => remote(&client, "/api/v1/flow", &args).await?,
        None => {
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            query::flow(store.as_ref(), &selection(&args)?, args.explain)?
        }
    };
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

fn selection(args: &MeasureArgs) -> Result<Selection> {
    let window = query::window(args.since.as_deref(), args.from.as_deref(), args.to.as_deref(), Timestamp::now())?;
    Ok(Selection { service: args.service.clone(), environment: args.environment.clone(), window })
}

/// The API answers one object for `service=…` and a list otherwise; always return a list.
async fn remote<T: DeserializeOwned>(client: &Client, path: &str, args: &MeasureArgs) -> Result<Vec<T>> {
    let mut params: Vec<(&str, String)> =
        vec![("environment", args.environment.clone()), ("bands", args.bands.clone())];
    for (key, value) in [("service", &args.service), ("since", &args.since), ("from", &args.from), ("to", &args.to)] {
        if let Some(value) = value {
            params.push((key, value.clone()));
        }
    }
    if args.explain {
        params.push(("explain", "true".into()));
    }
    let value: serde_json::Value = client.json(client.request(Method::GET, path).query(&params)).await?;
    Ok(match value {
        serde_json::Value::Array(items) => items.into_iter().map(serde_json::from_value).collect::<Result<_, _>>()?,
        one => vec![serde_json::from_value(one)?],
    })
}
