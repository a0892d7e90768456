//! The store's behaviour, written once as functions of a `&dyn Store` and run against each
//! backend: a fresh `SqliteStore` in a temporary directory, and a fresh `PgStore` database (see
//! `cluster`). What only one backend has (SQLite's file modes and pragmas) is tested beside it.

mod agents;
mod agents_batch;
mod cluster;
mod commands;
mod events;
mod facts;
mod flags;
mod import;
mod postgres_only;
mod queue;
mod runs;
mod settings;
mod sli;
mod tls;
mod transfers;

use mobius_store::{PgStore, SqliteStore, Store};

/// Runs a behaviour against a fresh SQLite store.
pub fn on_sqlite(behaviour: fn(&dyn Store)) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    behaviour(&store);
}

/// Runs a behaviour against a fresh PostgreSQL database.
pub fn on_postgres(behaviour: fn(&dyn Store)) {
    let database = cluster::Database::create();
    let store = PgStore::connect(&database.url).unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)));
    behaviour(&store);
    // The store's connections close before its database is dropped.
    drop(store);
    drop(database);
}

/// One test per backend for each behaviour: `<behaviour>::sqlite` and `<behaviour>::postgres`.
#[macro_export]
macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            #[test]
            fn sqlite() {
                $crate::on_sqlite(super::$behaviour)
            }

            #[test]
            fn postgres() {
                $crate::on_postgres(super::$behaviour)
            }
        }
    )*};
}

/// An instant a fixed number of seconds after 2023-11-14T22:13:20Z.
pub fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}
