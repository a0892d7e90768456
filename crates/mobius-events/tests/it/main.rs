//! The crate's integration tests: one binary (`cargo test -p mobius-events --test it`), one
//! module per area.

mod cdevents;
mod emit;
mod identity;
mod limits;
mod props;
mod webhooks;

/// `../shared/corpus` beside the project root. Inside a `mobius run` job the project is a copy
/// in the job's workspace, so the corpus is found beside `MOBIUS_SOURCE_DIR`, the directory the
/// copy was made from.
pub fn shared_corpus() -> std::path::PathBuf {
    match std::env::var_os("MOBIUS_SOURCE_DIR") {
        Some(source) => std::path::PathBuf::from(source).join("../shared/corpus"),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    }
}
