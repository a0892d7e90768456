//! What only SQLite has: a file that survives reopening, and its modes. The store's
//! behaviour is tested on every backend in `tests/conformance`.

use super::*;

#[test]
fn state_documents_are_replaced_whole_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.state("alerter").unwrap(), None);
    store.put_state("alerter", "{\"a\":1}").unwrap();
    store.put_state("alerter", "{\"a\":2}").unwrap();
    store.put_state("other", "[]").unwrap();
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.state("alerter").unwrap().as_deref(), Some("{\"a\":2}"));
    assert_eq!(store.state("other").unwrap().as_deref(), Some("[]"));
}

#[test]
fn the_data_directory_and_database_are_private_and_tightened_when_they_were_not() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let store = SqliteStore::open(&dir).unwrap();
    store.put_state("k", "v").unwrap();
    let wal = dir.join("mobius.db-wal");
    assert_eq!((mode(&dir), mode(&dir.join("mobius.db")), mode(&wal)), (0o700, 0o600, 0o600), "created so");
    drop(store);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("mobius.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = SqliteStore::open(&dir).unwrap();
    assert_eq!((mode(&dir), mode(&dir.join("mobius.db"))), (0o700, 0o600), "tightened at start");
}
