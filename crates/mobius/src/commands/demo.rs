//! `mobius demo`: the whole loop on this machine, with real processes and real traffic.
//!
//! In a temporary directory: a git repository with a sample service (`mobius sample-app`,
//! configured by its `mobius.yaml`) and a workflow that packages it; the server's parts in
//! this process (store, pipeline runner, control plane with embedded proxies, the HTTP API);
//! and a load generator. Then three versions go through the loop — commit, workflow run,
//! artifact, staging (rolling), production (canary with analysis):
//! v1 is the first deployment, v2 (healthy) is promoted, v3 (20% 5xx) fails the canary
//! analysis and is rolled back while users pinned to stable see no errors. Every release
//! carries a feature flag, `new-checkout`, dark (off); at the end it is released to 20% of
//! production's users, who ask for it over OFREP with a client key. The summary is DORA, the
//! value stream, the rollouts, the flag and the incident, read from the event log.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use mobius_app::App;
use mobius_delivery::{DeployRequest, Deployer, Source};
use mobius_deploy::load::{self, LoadReport, LoadSpec};
use mobius_deploy::rollout::Phase;
use mobius_insights::{Window, text};
use mobius_log::query::{self, Selection};
use mobius_server::{AppState, ServerConfig};
use mobius_store::{Repository, RunQuery, RunState, Store};
use serde::Serialize;

use crate::cli::DemoArgs;
use crate::output::{color_stdout, print_json};

const SERVICE: &str = "shop";

/// The three versions: label and error rate.
const VERSIONS: [(&str, f64); 3] = [("v1", 0.0), ("v2", 0.0), ("v3", 0.2)];

/// What `--json` prints, and what the text summary shows.
#[derive(Serialize)]
struct Summary {
    rollouts: Vec<RolloutLine>,
    /// Requests of users who were pinned to the stable version while v3 was analysed.
    stable_users: LoadReport,
    /// Everyone else's requests over the whole demo.
    all_users: LoadReport,
    dora: serde_json::Value,
    flow: serde_json::Value,
    incidents: Vec<String>,
    /// The drafted post-mortem of the rollback's incident (Markdown).
    postmortem: Option<String>,
    /// The service's SLOs after the demo: budget, burn rates, alerts.
    slos: Vec<mobius_reliability::slo::SloStatus>,
    /// The flag released to part of production, as its users saw it.
    flag: FlagLine,
    api: String,
    production: String,
    seconds: f64,
}

/// `new-checkout` in production after its release: the split asked for, and what users got.
#[derive(Serialize)]
struct FlagLine {
    set: String,
    flag: String,
    /// The set's version after the release.
    version: u64,
    /// The share of users the split gives `on` (percent).
    target_percent: u32,
    /// Users who asked over OFREP, and those who got `on`.
    users: u32,
    on: u32,
}

#[derive(Serialize)]
struct RolloutLine {
    version: String,
    environment: String,
    strategy: String,
    phase: String,
    message: String,
}

pub async fn run(json: bool, args: DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let scratch =
        tempfile::Builder::new().prefix("mobius-demo-").tempdir().context("cannot create a scratch directory")?;
    let root = scratch.path().to_owned();
    let say = |line: &str| {
        if !json {
            println!("{line}");
        }
    };
    say(&format!("mobius demo in {}", root.display()));

    // The server's parts, in this process: the application and its HTTP API.
    let data = root.join("data");
    let mut config = mobius_app::Config::new(&data);
    config.parallelism = 2;
    // Every commit is polled at once below, as a git hook would make the server do.
    config.poll_interval = Duration::from_secs(3600);
    // The proxies' SLIs into per-minute counters often: the summary's SLO and post-mortem read them.
    config.sli_every = Duration::from_secs(1);
    // The summary evaluates the SLOs itself; no alert round runs during the demo.
    config.alert_every = Duration::from_secs(3600);
    let app = App::open(config).context("cannot open the demo's store")?;
    let background = app.start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api: SocketAddr = listener.local_addr()?;
    let state = AppState::new(
        app.clone(),
        ServerConfig { public_read: true, ofrep_rate: mobius_server::OFREP_RATE, ..ServerConfig::default() },
    );
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mobius_server::serve(listener, state, async {
        let _ = api_stopped.await;
    }));

    let outcome = play(&root, &app, api, json).await;
    let keep = args.keep && outcome.is_ok();
    let result = match outcome {
        Ok(mut summary) => {
            summary.seconds = started.elapsed().as_secs_f64();
            if json {
                print_json(&summary)?;
            } else {
                print_summary(&summary);
            }
            let ok = summary
                .rollouts
                .iter()
                .any(|r| r.version == "v2" && r.phase == "succeeded" && r.environment == "production")
                && summary.rollouts.iter().any(|r| r.version == "v3" && r.phase == "aborted")
                && summary.stable_users.errors_5xx == 0
                && summary.stable_users.failed == 0
                && summary.all_users.failed == 0
                && summary.flag.on > 0
                && summary.flag.on < summary.flag.users;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Err(e) => Err(e),
    };
    if !json {
        println!("\nThe console: http://{api}/ (`mobius demo --keep` leaves it open)");
    }
    if keep {
        // A read token for the console: the demo's store is its own, thrown away at the end.
        let token = mobius_app::tokens::issue("demo (console)", mobius_store::TokenScope::Read);
        let (store, record) = (app.store.clone(), token.record.clone());
        mobius_log::blocking::spawn(move || store.insert_token(&record)).await?;
        println!(
            "\nStill running (--keep): the console at http://{api}/ (sign in with {}), the API beside it, \
             production at the address above. Ctrl-C stops it.",
            token.secret
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    app.delivery.stop_all().await;
    background.stop().await;
    let _ = stop_api.send(());
    let _ = server.await;
    drop(scratch);
    result
}

async fn play(root: &Path, app: &App, api: SocketAddr, json: bool) -> Result<Summary> {
    let (store, runner, deployer) = (&app.store, &app.runs, &app.delivery);
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    let staging = free_port()?;
    let production = free_port()?;
    let repo = root.join("shop");
    std::fs::create_dir_all(repo.join(".github/workflows"))?;
    std::fs::write(repo.join(".github/workflows/ci.yml"), WORKFLOW)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    let repository = Repository { name: "acme/shop".to_owned(), path: repo.display().to_string(), credentials: None };
    store.add_repository(&repository)?;
    // The first poll records where the branches are (none yet); every commit after it
    // triggers a run.
    runner.poll(&repository.name).await?;

    let url = format!("http://127.0.0.1:{production}/");
    // Users arrive once production serves (v1's rollout starts it).
    let mut all: Option<load::LoadHandle> = None;
    let mut rollouts = Vec::new();
    let mut stable_users = LoadReport::default();
    let mut rolled_back = None;
    for (index, (version, error_rate)) in VERSIONS.iter().enumerate() {
        let note = if *error_rate > 0.0 {
            format!(" ({:.0}% of its requests fail)", error_rate * 100.0)
        } else {
            String::new()
        };
        say(format!("\n== {version}{note}"));
        write_spec(&repo, version, *error_rate, staging, production)?;
        git(&repo, &["add", "-A"])?;
        let message = if index == 0 { "Start the shop".to_owned() } else { format!("Release {version}") };
        git(&repo, &["commit", "-qm", &message])?;
        let sha = git(&repo, &["rev-parse", "HEAD"])?;
        // What the post-commit hook does under `mobius serve`. The server's own polling loop
        // may have seen the commit first (its first round waits for its lease): then the run
        // it queued is in the store, since polls of one repository take turns.
        let queued = runner.poll(&repository.name).await?;
        let run = match queued.first() {
            Some(run) => *run,
            None => run_of(store, &repository.name, &sha)?.context("the commit triggered no workflow run")?,
        };
        let outcome = wait_run(store, run).await?;
        let (artifact, _) = store.artifact(&sha)?.context("the workflow uploaded no artifact")?;
        let digest = artifact.rsplit_once('@').map(|(_, d)| d.replace("%3A", ":")).unwrap_or_default();
        say(format!("commit {} → workflow run {run} {outcome} → artifact {}", &sha[..8], &digest[..19]));

        for environment in ["staging", "production"] {
            // Users with a session on the stable version (its cookie): they stay there.
            let pinned = (*version == "v3" && environment == "production").then(|| {
                load::spawn(LoadSpec {
                    url: url.clone(),
                    connections: 4,
                    rate_per_sec: Some(60.0),
                    duration: Duration::from_secs(600),
                    headers: vec![("cookie".to_owned(), format!("mobius-version={}", VERSIONS[index - 1].0))],
                    sticky: false,
                })
            });
            if pinned.is_some() {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let request = DeployRequest {
                service: SERVICE.to_owned(),
                environment: environment.to_owned(),
                source: Source::Artifact(digest.clone()),
                version: Some((*version).to_owned()),
                reason: None,
                by: None,
            };
            let stored = deployer.deploy(request).await?;
            let strategy = stored.rollout.plan.name().to_owned();
            let done = wait_rollout(deployer, environment).await?;
            if environment == "production" && all.is_none() {
                all = Some(load::spawn(LoadSpec {
                    url: url.clone(),
                    connections: 4,
                    rate_per_sec: Some(150.0),
                    duration: Duration::from_secs(600),
                    headers: Vec::new(),
                    sticky: false,
                }));
            }
            say(format!(
                "{environment:<10} {version} {strategy:<10} {:<10} {}",
                done.phase.as_str(),
                if done.message.is_empty() { String::new() } else { done.message.clone() }
            ));
            if let Some(pinned) = pinned {
                stable_users = pinned.stop().await;
            }
            rollouts.push(RolloutLine {
                version: (*version).to_owned(),
                environment: environment.to_owned(),
                strategy,
                phase: done.phase.as_str().to_owned(),
                message: done.message.clone(),
            });
            if done.phase == Phase::Aborted {
                rolled_back = Some(done.id);
                break;
            }
        }
    }
    let all_users = match all {
        Some(all) => all.stop().await,
        None => LoadReport::default(),
    };
    let flag = release_flag(app, api).await?;
    say(format!(
        "\n== {} released to {}% of production: {} of {} users asked over OFREP got it",
        flag.flag, flag.target_percent, flag.on, flag.users
    ));
    // What the proxies counted last is in the store before the summary reads it.
    deployer.record_slis_now().await;
    let slos = {
        // A Prometheus SLI is queried with blocking HTTP.
        let store = store.clone();
        mobius_log::blocking::spawn(move || mobius_reliability::slo::statuses(store.as_ref(), Timestamp::now())).await?
    };
    let postmortem = match rolled_back {
        Some(id) => Some(
            mobius_reliability::incidents::draft(store.as_ref(), &format!("rollout-{id}"))?
                .context("the rollback opened no incident")?,
        ),
        None => None,
    };

    let now = Timestamp::now();
    let window = Window::new(now - jiff::SignedDuration::from_hours(24), now + jiff::SignedDuration::from_secs(1))?;
    let selection = Selection { service: Some(SERVICE.to_owned()), environment: "production".to_owned(), window };
    let dora = query::dora(store.as_ref(), &selection, "seed-2023", false)?;
    let flow = query::flow(store.as_ref(), &selection, false)?;
    let incidents = store
        .events(&mobius_store::EventQuery { limit: 1000, ..mobius_store::EventQuery::default() })?
        .into_iter()
        .filter(|e| e.ty.contains("incident.detected"))
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.raw).ok())
        .filter_map(|v| v["subject"]["content"]["description"].as_str().map(str::to_owned))
        .collect();
    Ok(Summary {
        rollouts,
        stable_users,
        all_users,
        dora: serde_json::to_value(&dora)?,
        flow: serde_json::to_value(&flow)?,
        incidents,
        postmortem,
        slos,
        flag,
        api: format!("http://{api}"),
        production: url,
        seconds: 0.0,
    })
}

/// Releases `new-checkout` (shipped dark by every release's flag file) to part of production,
/// then asks for it over OFREP as that many users would, with a client key.
async fn release_flag(app: &App, api: SocketAddr) -> Result<FlagLine> {
    let (set, flag, percent) = ("shop.production", "new-checkout", 20);
    let document = FLAGS.replace(
        "\"defaultVariant\": \"off\"",
        &format!(
            "\"defaultVariant\": \"off\", \"targeting\": {{\"fractional\": [[\"on\", {percent}], [\"off\", {}]]}}",
            100 - percent
        ),
    );
    let put = mobius_features::Put {
        set: set.to_owned(),
        document,
        environment: Some("production".to_owned()),
        expected: None,
        source_name: Some("demo".to_owned()),
    };
    let actor = mobius_features::Actor { by: "demo".to_owned(), reason: Some(format!("release {flag} to {percent}%")) };
    let outcome = app.flags.put(put, actor).await?;
    let version = outcome.loaded.map_or(0, |l| l.version);
    let key = mobius_app::tokens::issue_scoped("demo (storefront)", mobius_store::TokenScope::Flags, Some(set))
        .map_err(anyhow::Error::msg)?;
    let (store, record) = (app.store.clone(), key.record.clone());
    mobius_log::blocking::spawn(move || store.insert_token(&record)).await?;
    let client = reqwest::Client::new();
    let (users, mut on) = (1_000, 0);
    for user in 0..users {
        let answer: serde_json::Value = client
            .post(format!("http://{api}/ofrep/v1/evaluate/flags/{flag}"))
            .header("x-api-key", &key.secret)
            .json(&serde_json::json!({ "context": { "targetingKey": format!("user-{user}") } }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        on += u32::from(answer["value"] == true);
    }
    Ok(FlagLine { set: set.to_owned(), flag: flag.to_owned(), version, target_percent: percent, users, on })
}

fn print_summary(s: &Summary) {
    println!("\n── Rollouts");
    for r in &s.rollouts {
        println!("  {:<4} {:<10} {:<10} {}", r.version, r.environment, r.strategy, r.phase);
    }
    println!("\n── Traffic on production");
    let line = |name: &str, r: &LoadReport| {
        let versions: Vec<String> = r.by_version.iter().map(|(v, (n, e))| format!("{v}: {n} ({e} 5xx)")).collect();
        println!(
            "  {name:<26} {} requests, {} 5xx, {} failed — {}",
            r.requests,
            r.errors_5xx,
            r.failed,
            versions.join(", ")
        );
    };
    line("everyone", &s.all_users);
    line("users pinned to stable", &s.stable_users);
    println!("\n── Feature flags");
    let f = &s.flag;
    println!(
        "  {} {}: on for {:.1}% of {} users over OFREP (split {}/{}, set version {}, a change in the log)",
        f.set,
        f.flag,
        f64::from(f.on) * 100.0 / f64::from(f.users.max(1)),
        f.users,
        f.target_percent,
        100 - f.target_percent,
        f.version
    );
    println!("\n── SLOs");
    for slo in &s.slos {
        match &slo.budget {
            Some(b) => println!(
                "  {} {}: {}% over {} days — {} requests, {} failed; error budget left {:.0}% ({:.0} of {:.0} min), policy {}",
                slo.service,
                slo.slo,
                slo.objective,
                slo.window_s / 86_400,
                b.total,
                b.bad,
                b.remaining * 100.0,
                b.remaining_time_s / 60.0,
                (1.0 - slo.objective / 100.0) * slo.window_s as f64 / 60.0,
                slo.policy
            ),
            None => println!("  {} {}: unknown", slo.service, slo.slo),
        }
    }
    println!("\n── Incidents");
    for incident in &s.incidents {
        println!("  {incident}");
    }
    if let Some(draft) = &s.postmortem {
        println!("\n── Post-mortem draft (`mobius postmortem` writes it whole; here up to its timeline)");
        for line in draft.lines().take_while(|l| !l.starts_with("## Timeline")) {
            println!("  {line}");
        }
    }
    if let (Ok(dora), Ok(flow)) = (
        serde_json::from_value::<Vec<mobius_insights::DoraReport>>(s.dora.clone()),
        serde_json::from_value::<Vec<mobius_insights::FlowReport>>(s.flow.clone()),
    ) {
        println!("\n── DORA");
        print!("{}", text::render_dora(&dora, color_stdout()));
        println!("\n── Value stream");
        print!("{}", text::render_flow(&flow, color_stdout()));
    }
    println!("\nAPI: {} (read without a token)   production: {}", s.api, s.production);
    println!("Finished in {:.1} s.", s.seconds);
}

/// The push run queued for commit `sha` of `repository`, if there is one.
fn run_of(store: &Arc<dyn Store>, repository: &str, sha: &str) -> Result<Option<i64>> {
    let query = RunQuery { repository: Some(repository.to_owned()), limit: 20, ..RunQuery::default() };
    Ok(store.runs(&query)?.into_iter().find(|r| r.run.sha == sha && r.run.event == "push").map(|r| r.id))
}

/// Waits for a workflow run to end; its state word.
async fn wait_run(store: &Arc<dyn Store>, id: i64) -> Result<&'static str> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(detail) = store.run(id)?
            && detail.record.state.is_final()
        {
            if detail.record.state != RunState::Success {
                bail!(
                    "workflow run {id} ended {}: {}",
                    detail.record.state.as_str(),
                    detail.record.reason.unwrap_or_default()
                );
            }
            return Ok(detail.record.state.as_str());
        }
        if Instant::now() > deadline {
            let _ = store.runs(&RunQuery::default());
            bail!("workflow run {id} did not finish within a minute");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the latest rollout to an environment to finish (its old version retired).
async fn wait_rollout(deployer: &Deployer, environment: &str) -> Result<mobius_deploy::rollout::Rollout> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(stored) = deployer.status(SERVICE, environment)?
            && stored.rollout.phase.is_final()
            && stored.rollout.retire_at.is_none()
        {
            return Ok(stored.rollout);
        }
        if Instant::now() > deadline {
            let state = deployer.status(SERVICE, environment)?.map(|s| {
                let history: Vec<String> = s.rollout.history.iter().rev().take(6).map(|e| e.message.clone()).collect();
                format!("{}: {}; {}", s.rollout.phase.as_str(), s.rollout.message, history.join(" | "))
            });
            bail!("the rollout to {environment} did not finish within 90 s ({})", state.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_spec(repo: &Path, version: &str, error_rate: f64, staging: u16, production: u16) -> Result<()> {
    std::fs::create_dir_all(repo.join("flags"))?;
    std::fs::write(repo.join("flags/shop.flagd.json"), FLAGS)?;
    let text = SPEC
        .replace("{version}", version)
        .replace("{error_rate}", &error_rate.to_string())
        .replace("{staging}", &staging.to_string())
        .replace("{production}", &production.to_string());
    std::fs::write(repo.join("mobius.yaml"), text)?;
    Ok(())
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Demo")
        .env("GIT_AUTHOR_EMAIL", "demo@example.com")
        .env("GIT_COMMITTER_NAME", "Demo")
        .env("GIT_COMMITTER_EMAIL", "demo@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .context("cannot run git (the demo needs it)")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

const WORKFLOW: &str = "\
name: CI
on: push
jobs:
  package:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Check the service definition
        run: grep -q '^service. shop$' mobius.yaml
      - uses: actions/upload-artifact@v4
        with:
          name: shop
          path: |
            mobius.yaml
            flags/
";

/// The release's flag file: `new-checkout` ships dark. Each deploy loads it into
/// `shop.<environment>`.
const FLAGS: &str = r#"{
  "flags": {
    "new-checkout": {
      "state": "ENABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "off"
    }
  }
}
"#;

const SPEC: &str = "\
service: shop
owner: demo-team
run:
  command: mobius
  args: [sample-app]
  env:
    SAMPLE_VERSION: {version}
    SAMPLE_ERROR_RATE: \"{error_rate}\"
  health: /healthz
  readiness_timeout: 10s
  shutdown_grace: 5s
  instances: 2
environments:
  - name: staging
    listen: 127.0.0.1:{staging}
    strategy: rolling
  - name: production
    listen: 127.0.0.1:{production}
    strategy:
      canary:
        steps:
          - set_weight: 20
          - analysis: {count: 2}
          - set_weight: 50
          - analysis: {count: 1}
analysis:
  interval_secs: 2
  min_requests: 20
  max_error_rate: 0.05
slos:
  - name: availability
    objective: 99
    window: 30d
    sli: {availability: {}}
    policy: freeze
";
