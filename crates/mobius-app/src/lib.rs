//! The application (see Cargo.toml).
