//! `mobius scan secrets`, `mobius scan deps` and `mobius sbom`: the offline scanners of
//! `mobius-scan` and `mobius-audit`, with their exit codes passed through.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use mobius_scan::{Config, ScanArgs, ScanTarget};

use crate::cli::{ReportFormat, SbomArgs, ScanCommand, ScanDepsArgs, ScanSecretsArgs};

/// Where gitleaks looks for a config path, then for the config's text.
const CONFIG_PATH_VAR: &str = "GITLEAKS_CONFIG";
const CONFIG_TEXT_VAR: &str = "GITLEAKS_CONFIG_TOML";

/// The exit status of an audit that could not run: the scanners agree on 2 (gitleaks' 1 is
/// taken by leaks, osv-scanner's 127 is easy to mistake for "command not found").
const EXIT_AUDIT_ERROR: u8 = 2;

pub fn run(json: bool, command: ScanCommand) -> Result<ExitCode> {
    match command {
        ScanCommand::Secrets(args) => Ok(secrets(json, args)),
        ScanCommand::Deps(args) => Ok(deps(json, args)),
    }
}

fn format(json: bool, format: Option<ReportFormat>) -> ReportFormat {
    format.unwrap_or(if json { ReportFormat::Json } else { ReportFormat::Text })
}

fn secrets(json: bool, args: ScanSecretsArgs) -> ExitCode {
    let root = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let target = if args.staged {
        ScanTarget::Staged { repo: root }
    } else if let Some(range) = &args.git {
        ScanTarget::GitRange { repo: root, range: Some(range.clone()).filter(|r| !r.trim().is_empty()) }
    } else {
        ScanTarget::Path(root)
    };
    let mut scan = ScanArgs::new(target);
    scan.config =
        args.config.or_else(|| std::env::var_os(CONFIG_PATH_VAR).filter(|v| !v.is_empty()).map(PathBuf::from));
    scan.baseline = args.baseline;
    scan.format = match format(json, args.format) {
        ReportFormat::Text => mobius_scan::Format::Text,
        ReportFormat::Json => mobius_scan::Format::Json,
        ReportFormat::Sarif => mobius_scan::Format::Sarif,
    };
    scan.output = args.output;
    scan.redact = args.redact;
    scan.exit_code = args.exit_code;
    scan.color = crate::output::color_stdout();
    let mut stdout = std::io::stdout().lock();
    let result = match config_from_environment(&scan) {
        Ok(Some(config)) => mobius_scan::run_with_config(config, &scan, &mut stdout),
        Ok(None) => mobius_scan::run(&scan, &mut stdout),
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::new(err));
            ExitCode::from(mobius_scan::EXIT_ERROR)
        }
    }
}

/// The config given as text in `GITLEAKS_CONFIG_TOML`, when no path says otherwise (gitleaks
/// reads the path first). Its `[extend] path` is relative to the scanned root.
fn config_from_environment(scan: &ScanArgs) -> Result<Option<Config>, mobius_scan::config::ConfigError> {
    if scan.config.is_some() {
        return Ok(None);
    }
    let Some(text) = std::env::var(CONFIG_TEXT_VAR).ok().filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let base = match &scan.target {
        ScanTarget::Path(path) if path.is_file() => path.parent().map(Path::to_path_buf),
        ScanTarget::Path(path) | ScanTarget::GitRange { repo: path, .. } | ScanTarget::Staged { repo: path } => {
            Some(path.clone())
        }
    };
    Config::parse(&text, CONFIG_TEXT_VAR, base.as_deref()).map(Some)
}

fn deps(json: bool, args: ScanDepsArgs) -> ExitCode {
    let audit = mobius_audit::AuditArgs {
        paths: paths_or_here(args.paths),
        osv_dir: args.osv_dir,
        format: match format(json, args.format) {
            ReportFormat::Text => mobius_audit::Format::Text,
            ReportFormat::Json => mobius_audit::Format::Json,
            ReportFormat::Sarif => mobius_audit::Format::Sarif,
        },
        output: args.output,
        max_age: args.max_age,
        fail_on_old: args.fail_on_old,
        fail_on: args.fail_on,
    };
    let mut stdout = std::io::stdout().lock();
    match mobius_audit::audit(&audit, &mut stdout) {
        Ok(mobius_audit::EXIT_NO_PACKAGES) => {
            let paths: Vec<String> = audit.paths.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "no lockfile found in {} (Cargo.lock, package-lock.json, requirements*.txt, poetry.lock, go.sum)",
                paths.join(", ")
            );
            ExitCode::from(mobius_audit::EXIT_NO_PACKAGES)
        }
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::new(err));
            ExitCode::from(EXIT_AUDIT_ERROR)
        }
    }
}

fn paths_or_here(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() { vec![PathBuf::from(".")] } else { paths }
}

pub fn sbom(args: SbomArgs) -> Result<ExitCode> {
    let paths = paths_or_here(args.paths);
    let lockfiles = mobius_audit::read_lockfiles(&paths)?;
    if lockfiles.is_empty() {
        anyhow::bail!(
            "no lockfile found in {} (Cargo.lock, package-lock.json, requirements*.txt, poetry.lock, go.sum)",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let name = match args.name {
        Some(name) => name,
        None => default_name(&paths[0])?,
    };
    let subject = mobius_audit::SbomSubject { name, version: args.version };
    let bom = mobius_audit::sbom(&lockfiles, &subject);
    let mut text = serde_json::to_string_pretty(&bom)?;
    text.push('\n');
    match &args.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write the SBOM")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The name of the directory a path is (or, for a lockfile, is in).
fn default_name(path: &Path) -> Result<String> {
    let absolute = std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let dir = if absolute.is_file() { absolute.parent().map(Path::to_path_buf) } else { Some(absolute) };
    let dir = dir.map(|d| d.canonicalize().unwrap_or(d));
    dir.as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .context("cannot name the application from its path: give --name")
}
