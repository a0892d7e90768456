//! Scans a directory (or, with `--git`, a repository's whole history) with the built-in
//! rules and prints throughput; `bench/scan/run.sh` drives it.
//!
//! Usage: `scan [--git] [--json] PATH`

use std::time::Instant;

use mobius_scan::{ScanArgs, ScanTarget};

fn main() -> std::process::ExitCode {
    let mut git = false;
    let mut json = false;
    let mut path = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--git" => git = true,
            "--json" => json = true,
            _ => path = Some(std::path::PathBuf::from(arg)),
        }
    }
    let Some(path) = path else {
        eprintln!("usage: scan [--git] [--json] PATH");
        return std::process::ExitCode::from(mobius_scan::EXIT_ERROR);
    };
    let target = if git { ScanTarget::GitRange { repo: path, range: None } } else { ScanTarget::Path(path) };
    let args = ScanArgs::new(target);
    let started = Instant::now();
    let outcome = match mobius_scan::scan(&args) {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            return std::process::ExitCode::from(err.exit_code());
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let stdout = std::io::stdout();
        mobius_scan::report::write_json(&mut stdout.lock(), &outcome.findings, false).expect("stdout");
    }
    let mb = outcome.bytes as f64 / 1e6;
    eprintln!(
        "scanned {mb:.1} MB in {seconds:.2} s ({:.1} MB/s): {} findings",
        mb / seconds.max(1e-9),
        outcome.findings.len()
    );
    std::process::ExitCode::SUCCESS
}
