//! Integration tests of the pipelines crate: one module per area.

mod actions;
mod agents;
mod deploy;
mod engine;
mod exec;
mod expr;
mod mask;
mod props;
mod repo_actions;
mod reusable;
mod sandbox;
mod security;
mod store_sync;
mod workflow;

/// `../shared/corpus` beside the project root. Inside a `mobius run` job the project is a copy
/// in the job's workspace, so the corpus is found beside `MOBIUS_SOURCE_DIR`, the directory the
/// copy was made from.
pub fn shared_corpus() -> std::path::PathBuf {
    match std::env::var_os("MOBIUS_SOURCE_DIR") {
        Some(source) => std::path::PathBuf::from(source).join("../shared/corpus"),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    }
}
