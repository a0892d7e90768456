//! Integration tests of the `mobius` binary: the CLI, the server over loopback, durability
//! under kill -9, DORA golden histories, workflow linting and listing, pipelines run by the
//! server, and its hardened doors (who may call, what it reads, what it leaks) and their limits
//! under a flood.

mod actions;
mod agents;
mod alert_failover;
mod browser;
mod cli;
mod console;
mod console_reliability;
mod console_rollouts;
mod console_services;
mod deploy;
mod deploy_secrets;
mod dispatch;
mod durability;
mod environments;
mod flag_gate;
mod flag_rollouts;
mod flags;
mod forge_statuses;
mod gitops;
mod gitops_flags;
mod gitops_promote;
mod golden;
mod hardening;
mod limits;
mod ofrep;
mod pg_faults;
mod pipelines;
mod policy_gate;
mod postgres;
mod prometheus;
mod provider;
mod pull_requests;
mod remote_credentials;
mod remote_repos;
mod replicas;
mod run_queue;
mod runs;
mod runs_deploy;
mod secrets;
mod security;
mod server;
mod slo;
mod stored_secrets;
mod util;
