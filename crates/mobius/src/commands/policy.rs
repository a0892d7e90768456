//! `mobius policy test` and `mobius policy eval`: the Rego gate policies of `mobius-policy`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mobius_policy::{Input, Policies, PolicyError};

use crate::cli::PolicyCommand;

pub fn run(command: PolicyCommand) -> Result<ExitCode> {
    match command {
        PolicyCommand::Test { dir } => {
            let report = mobius_policy::test(&dir);
            print!("{report}");
            Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        PolicyCommand::Eval { policy, input } => {
            let text = read_input(&input)?;
            let shown = if input == Path::new("-") { "<stdin>".to_owned() } else { input.display().to_string() };
            // The input's position is said with its file, so an editor can jump to it.
            let input = Input::from_json(&text).map_err(|err| match err {
                PolicyError::Input { at, message } => anyhow::anyhow!("{shown}:{}:{}: {message}", at.line, at.column),
                other => anyhow::Error::new(other).context(format!("cannot read {shown}")),
            })?;
            let decision = Policies::load(&policy)?.decide(&input);
            println!("{}", serde_json::to_string_pretty(&decision)?);
            Ok(if decision.allow { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the input from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
