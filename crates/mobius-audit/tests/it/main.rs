//! Integration tests for mobius-audit: lockfiles and an OSV database written to a temporary
//! directory (the database as zip archives, laid out as osv-scanner caches them), then the
//! audit run through its public entry points.

mod audit;
mod database;
mod fixture;
mod lockfiles;
mod output;
mod provenance;
mod ranges;
mod sbom;
