//! The command line, declared with clap. Every flag has help text; `--json` is global.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod flags;
mod gitops;
mod pipelines;
mod security;

pub use flags::*;
pub use gitops::*;
pub use pipelines::*;
pub use security::*;

/// Mobius: one binary for the whole delivery loop — build, test, release, deploy, operate,
/// monitor — and the measurements that steer it.
#[derive(Debug, Parser)]
#[command(name = "mobius", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Where the embedded store lives [default: $XDG_DATA_HOME/mobius]
    #[arg(long, global = true, env = "MOBIUS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: ingestion API, webhooks, DORA and flow queries, metrics
    Serve(ServeArgs),
    /// Put events into the log, or read it
    #[command(subcommand)]
    Events(EventsCommand),
    /// DORA's four keys per service, with performance bands
    Dora(MeasureArgs),
    /// The value stream: where a change's lead time goes, waiting or working
    Flow(MeasureArgs),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Register local git repositories: their commits trigger workflows under `mobius serve`,
    /// and deployments find their changes by ancestry
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Pipeline runs of the server: list, show, logs, cancel, re-run
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Run a server's pipeline jobs on this machine (a self-hosted runner), or list agents
    ///
    /// Polls the server for jobs whose `runs-on` labels it has (`self-hosted`, this OS and
    /// architecture, and --labels), runs them with the same engine as the server, and streams
    /// their logs back. Needs an `agent` token: `mobius token create --scope agent`.
    Agent(AgentArgs),
    /// Validate workflow files: YAML, unknown keys, expressions, `needs`, matrices, actions
    ///
    /// Checks `.github/workflows/*.yml|yaml` and `.mobius/workflows/*.yml|yaml` under the
    /// repository root (the nearest directory above the current one holding `.git`), or the
    /// files and directories given. Exits 1 if any file has an error; warnings alone exit 0.
    Lint(LintArgs),
    /// The action cache: actions fetched from repositories for `uses: owner/repo@ref`
    #[command(subcommand)]
    Actions(ActionsCommand),
    /// Secrets for pipeline runs, by repository and environment, stored encrypted
    ///
    /// A run sees its repository's secrets; a job whose `environment:` names an environment
    /// also sees that environment's, over them. Values are sealed (XChaCha20-Poly1305) under
    /// the key in MOBIUS_SECRET_KEY or the data directory's secret.key, and never printed.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Protection rules of deployment environments: required reviewers, allowed branches
    ///
    /// A job whose `environment:` names a protected environment of its repository waits for a
    /// review (`mobius runs approve|reject RUN JOB`) when the rules require one, and fails
    /// without running a step when its run's branch is not allowed. Kept on the server, per
    /// repository, so a change to a workflow cannot weaken them.
    #[command(subcommand)]
    Environment(EnvironmentCommand),
    /// Feature flag sets in flagd's format: load, list, show, turn flags on and off
    ///
    /// A flag set is a flagd JSON document under a name, optionally belonging to an
    /// environment; every change gets a new version and a `mobius-flag.changed` event. A
    /// release's `flags/*.flagd.json` files are loaded into `<name>.<environment>` when it is
    /// deployed. Changing needs a `deploy` token with --server.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Run workflows locally, without a server
    ///
    /// Lints first; runs the working tree (uncommitted changes included) in a temporary
    /// directory. Exits 0 only if every job succeeded.
    Run(RunArgs),
    /// Write a commented starter mobius.yaml (the service definition) in this directory
    Init(InitArgs),
    /// Deploy a version of a service to an environment (through the server)
    ///
    /// The server runs it on its embedded runtime behind the environment's proxy, with the
    /// environment's strategy (rolling, blue-green or canary) from mobius.yaml.
    Deploy(DeployArgs),
    /// Watch and steer rollouts: status, promote, abort, undo
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Environments declared in git (deploy repositories) and reconciled by the server
    ///
    /// A followed repository's environments/<env>.yaml files say which artifact digest each
    /// service runs there; the server deploys what changes, shows sync and health per service,
    /// refuses (or with --self-heal reverts) deploys by hand, and honours sync windows.
    #[command(subcommand)]
    Gitops(GitopsCommand),
    /// Promote what serves in one environment to another, as a commit to the deploy repository
    ///
    /// Writes the digest serving --from into the file declaring --to, on the branch the
    /// repository is followed at (author and message say who and why); the server then syncs
    /// it like any change to git. Needs --server and a `deploy` token.
    Promote(PromoteArgs),
    /// Run a service's data plane apart from the control plane
    ///
    /// Follows the routing table the server writes in <data-dir>/proxy and publishes its SLIs
    /// there; keeps serving its last table while the server is down. Start the server with
    /// MOBIUS_PROXY=external to use it.
    Proxy(crate::commands::proxy::ProxyArgs),
    /// A tiny HTTP app for trying deployments: version, error rate and latency are flags
    SampleApp(crate::commands::sample_app::SampleAppArgs),
    /// The whole loop in seconds: commit, pipeline, canary, automatic rollback, SLO, DORA
    ///
    /// In a temporary directory, with real processes and real traffic: v1 is built and
    /// deployed to staging then production; v2 goes through a canary and is promoted; v3
    /// (20% errors) fails its canary analysis and is rolled back while users on stable see no
    /// errors. Ends with the rollouts, the SLO and its budget, the incident and its drafted
    /// post-mortem, DORA and the value stream; cleans up.
    Demo(DemoArgs),
    /// Draft a blameless post-mortem of an incident, in Markdown
    ///
    /// Summary, impact (duration, failed requests), detection, the attributed deployment and
    /// its commits, resolution and a UTC timeline from the event log; root causes, action
    /// items and lessons learned are left for people to write.
    Postmortem(PostmortemArgs),
    /// Service level objectives: error budgets, burn rates, alerts
    #[command(subcommand)]
    Slo(SloCommand),
    /// The server's SLO alerts: what fires (page or ticket), since when, its incident
    Alerts(AlertsArgs),
    /// Fault injection on a service's proxy, for game days
    #[command(subcommand)]
    Chaos(ChaosCommand),
    /// Incidents by hand: open, acknowledge, resolve, list, show
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Security scans, offline: secrets (gitleaks' rules and config) and vulnerable
    /// dependencies (an OSV database on disk)
    #[command(subcommand)]
    Scan(ScanCommand),
    /// Write a CycloneDX 1.6 JSON bill of materials of the locked dependencies
    ///
    /// One component per locked package (by package URL), with the lockfile lines it was
    /// found at; the same lockfiles `mobius scan deps` reads.
    #[command(disable_version_flag = true)]
    Sbom(SbomArgs),
    /// Git hooks: a pre-commit hook that blocks secrets
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Policy as code: test Rego gate policies, or decide on an input
    ///
    /// Policies are `policies/*.rego` in `package mobius.gate`, with conftest's `deny`, `warn`
    /// and `exception` rules, evaluated with regorus.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Open an incident (an `incident.detected` event)
    Open {
        service: String,
        /// What users see, in a few words
        #[arg(long)]
        title: String,
        #[arg(long, short, default_value = "production")]
        environment: String,
        #[arg(long, default_value = "sev2", value_parser = ["sev1", "sev2", "sev3", "sev4"])]
        severity: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Acknowledge an incident: someone is on it
    Ack {
        /// The incident's key, or the part after its `#`
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resolve an incident: users are fine again
    Resolve {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Incidents, newest first
    List {
        /// Only the unresolved ones
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// One incident: its facts, attributed change and timeline
    Show {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// Abort or delay a share of an environment's requests until the fault expires
    ///
    /// The failures it injects are left out of error budgets (recorded as a policy exception)
    /// unless --count is given.
    #[command(disable_version_flag = true)]
    Inject {
        service: String,
        environment: String,
        /// Answer with this status (200–599) instead of calling the service
        #[arg(long, value_name = "STATUS", group = "kind")]
        abort: Option<u16>,
        /// Wait this long (e.g. 300ms) before calling the service
        #[arg(long, value_name = "DURATION", group = "kind")]
        delay: Option<String>,
        /// With --delay: add a random 0..JITTER
        #[arg(long, value_name = "DURATION", default_value = "0ms")]
        jitter: String,
        /// Share of the matching requests, 0–100
        #[arg(long, default_value_t = 100.0)]
        percent: f64,
        /// Only requests routed to this version
        #[arg(long)]
        version: Option<String>,
        /// Only requests carrying this header value (NAME=VALUE)
        #[arg(long, value_name = "NAME=VALUE", value_parser = key_value)]
        header: Option<(String, String)>,
        /// How long the fault lasts
        #[arg(long = "for", value_name = "DURATION", default_value = "10m")]
        duration: String,
        /// A name for the fault [default: fault-<time>]
        #[arg(long)]
        id: Option<String>,
        /// Count the injected failures in error budgets
        #[arg(long)]
        count: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Active faults of every environment
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove every fault of an environment
    Clear {
        service: String,
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum SloCommand {
    /// Every SLO's budget left (as a fraction and in time), burn rate, last 24 h and alert
    Status {
        /// Only this service's SLOs
        service: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Where an SLO's error budget went: bad requests by version, by day, and the incidents
    /// of its window with the share of the budget each consumed
    Explain {
        service: String,
        /// The SLO's name (see `mobius slo status`)
        slo: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Whether the error-budget policy would let a deploy of SERVICE through now; exits 1 if
    /// it would refuse (for pipelines and scripts). Records nothing
    Check {
        service: String,
        #[arg(default_value = "production")]
        environment: String,
        /// Ask about a deploy with this reason (hotfix or security)
        #[arg(long, value_name = "WHY")]
        reason: Option<mobius_slo::policy::Reason>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct PostmortemArgs {
    /// The incident's key, or the part after its `#` (e.g. `rollout-3`)
    pub incident: String,
    /// Write the draft to this file instead of standard output
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Record that the post-mortem was written, at this location (a path or URL), instead of
    /// drafting: an incident that consumed over 20% of its budget needs one
    #[arg(long, value_name = "LOCATION", conflicts_with = "output")]
    pub recorded: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the services, proxies and API running at the end (Ctrl-C stops them)
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing mobius.yaml
    #[arg(long)]
    pub force: bool,
    /// Print the JSON schema of mobius.yaml instead
    #[arg(long)]
    pub schema: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The service (its mobius.yaml `service:`)
    pub service: String,
    /// The environment
    pub environment: String,
    /// An artifact a pipeline uploaded, by digest (sha256:…)
    #[arg(long, value_name = "DIGEST", group = "source")]
    pub artifact: Option<String>,
    /// The artifact a pipeline built from this commit
    #[arg(long, value_name = "SHA", group = "source")]
    pub commit: Option<String>,
    /// A local directory holding mobius.yaml (for quick tries): packed here and uploaded, with
    /// symbolic links kept as links (a link out of the directory is refused)
    #[arg(long, value_name = "PATH", group = "source")]
    pub dir: Option<PathBuf>,
    /// Label the version (default: from its content digest)
    #[arg(long = "as", value_name = "VERSION")]
    pub label: Option<String>,
    /// Deploy through a frozen error budget (recorded as a policy exception): hotfix or security
    #[arg(long, value_name = "WHY")]
    pub reason: Option<mobius_slo::policy::Reason>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// The latest rollout of a service to an environment: phase, weight, steps, analysis
    Status {
        service: String,
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Go on from a pause or a manual approval
    Promote {
        service: String,
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Roll back the current rollout now: all traffic to stable
    Abort {
        service: String,
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Back to the previous version (instant while a blue-green keeps it warm)
    Undo {
        service: String,
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Splits `KEY=VALUE` at the first `=`, so values may contain `=`.
pub(crate) fn key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{arg}`")),
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// The server's URL
    #[arg(long, env = "MOBIUS_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// An `agent` token
    #[arg(long, env = "MOBIUS_AGENT_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Labels besides `self-hosted`, the OS and the architecture, comma-separated
    #[arg(long, value_name = "LABELS")]
    pub labels: Vec<String>,
    /// How many jobs it runs at once
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// Where jobs run (and artifacts and caches are kept); default: a directory in $TMPDIR
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Its name on the server; default: the host name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// The agents that called the server: labels, last contact, the job each runs
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7070]
    #[arg(long, env = "MOBIUS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Serve every read endpoint without a token: the event log (with every event's raw
    /// body), DORA and flow, runs and their logs, rollouts, SLOs, alerts, incidents and
    /// post-mortem drafts, policy checks, chaos faults, and /metrics. Mutations still need a
    /// token
    #[arg(long, env = "MOBIUS_PUBLIC_READ")]
    pub public_read: bool,

    /// The server's address as others reach it, e.g. `https://ci.example.com`: commit
    /// statuses link runs under it [default: http://<listen address>]
    #[arg(long, env = "MOBIUS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// A directory of gate policies (`*.rego`, `package mobius.gate`) that decide every
    /// deploy, besides the `policies/` a release ships
    #[arg(long, env = "MOBIUS_POLICY_DIR", value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,

    /// Keep the store in PostgreSQL instead of the data directory's SQLite file, e.g.
    /// `postgres://mobius@db.internal/mobius`. A URL with a password belongs in
    /// MOBIUS_DATABASE_URL or MOBIUS_DATABASE_URL_FILE (or `database_url` in mobius.toml), not
    /// on a command line others can read
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(Debug, Args)]
pub struct RuleArgs {
    /// How long after a deployment an incident is attributed to it [default: 24h]
    #[arg(long, env = "MOBIUS_ATTRIBUTION_WINDOW", value_name = "SPAN")]
    pub attribution_window: Option<String>,
}

/// Where a command sends its work: the local store, or a server.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Talk to a running server instead of the local data directory
    #[arg(long, env = "MOBIUS_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// Bearer token for --server
    #[arg(long, env = "MOBIUS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Import events from files: a JSON array, NDJSON, or one event per file
    ///
    /// Each record is a CDEvent (bare or inside a CloudEvent) or a recorded webhook delivery
    /// ({"webhook": "github", "event": "push", "payload": {...}}). Valid records are stored
    /// even when others are rejected; duplicates change nothing. Files are read as they are
    /// imported, in bounded memory. Into the local store the import is durable once the
    /// command has finished; one that was interrupted may be run again (what it stored is a
    /// duplicate the second time).
    Import {
        /// Files to import (`-` reads standard input)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Records per transaction (default 1,000,000), or with --server per request (at
        /// most, and by default, 10,000)
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        remote: Remote,
    },
    /// Send one event, built from flags or read from standard input with `-`
    Send(SendArgs),
    /// List the raw log in order
    List {
        /// Only events after this log position
        #[arg(long, value_name = "SEQ")]
        after: Option<i64>,
        /// Only events of this type
        #[arg(long = "type", value_name = "TYPE")]
        ty: Option<String>,
        /// At most this many events
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Read the whole event (CDEvent JSON) from standard input
    #[arg(value_name = "-", conflicts_with_all = ["ty", "subject", "content"])]
    pub stdin: Option<String>,
    /// CDEvents type, e.g. dev.cdevents.service.deployed.0.3.0
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "stdin")]
    pub ty: Option<String>,
    /// `subject.id`, e.g. the service name
    #[arg(long, required_unless_present = "stdin")]
    pub subject: Option<String>,
    /// `subject.content` as JSON
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub content: String,
    /// `context.source` [default: /mobius/cli]
    #[arg(long)]
    pub source: Option<String>,
    /// `context.id` [default: a random UUID]
    #[arg(long)]
    pub id: Option<String>,
    /// `context.timestamp` (RFC 3339) [default: now]
    #[arg(long)]
    pub timestamp: Option<String>,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Clone, Args)]
pub struct MeasureArgs {
    /// Only this service (default: every service with deployments or incidents)
    #[arg(long, short)]
    pub service: Option<String>,
    /// Environment to measure
    #[arg(long, short, default_value = "production")]
    pub environment: String,
    /// The window: the last N days, hours or weeks (30d, 12h, 2w) [default: 30d]
    #[arg(long, conflicts_with_all = ["from", "to"], value_name = "SPAN")]
    pub since: Option<String>,
    /// Window start (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Window end, exclusive (RFC 3339 or YYYY-MM-DD) [default: now]
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Band table: seed-2023 or dora-2024 (dora only)
    #[arg(long, default_value = "seed-2023")]
    pub bands: String,
    /// List the deployments, changes and incidents behind each number
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once
    Create {
        /// read: queries; ingest: events; deploy: deployments; run: trigger, cancel and re-run
        /// pipelines; admin: all (every one of these may also read); metrics: only scrape
        /// /metrics (for Prometheus's `authorization`); agent: only take and run jobs
        /// (`mobius agent`); flags: a client key that only evaluates one flag set over OFREP
        /// (a frontend may hold it; needs --set)
        #[arg(long, value_parser = ["read", "ingest", "deploy", "run", "admin", "metrics", "agent", "flags"])]
        scope: String,
        /// A label to recognise it by
        #[arg(long, default_value = "")]
        name: String,
        /// The flag set a `flags` token evaluates
        #[arg(long, value_name = "NAME")]
        set: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Every token: id, scope, name, when it was created (secrets are never shown again)
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a token by id: its secret stops working at once
    Revoke {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}
