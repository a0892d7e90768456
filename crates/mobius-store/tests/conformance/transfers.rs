//! Files of agent jobs' transfers: named per transfer, stored once per digest, read only
//! through a transfer that names them, and deleted when no transfer names them any more.

use mobius_store::Store;
use mobius_store::transfers::{MADE, SOURCE};

crate::conformance!(
    a_transfer_reads_back_what_it_names_and_nothing_else,
    holding_names_the_blobs_the_store_has_and_lists_the_rest,
    releasing_keeps_the_content_another_transfer_names,
    renaming_forgets_the_content_nothing_names_any_more,
    transfers_are_listed_by_prefix,
);

/// A digest-shaped name (the store does not check it; the application does).
fn digest(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn a_transfer_reads_back_what_it_names_and_nothing_else(store: &dyn Store) {
    let tar = vec![0u8, 159, 146, 150, 255]; // not UTF-8: bytes survive as they are
    store.put_transfer_file("t1", SOURCE, &digest(1), &tar).unwrap();
    store.put_transfer_file("t1", &digest(2), &digest(2), b"artifact file").unwrap();
    assert_eq!(store.transfer_file("t1", SOURCE).unwrap(), Some(tar));
    assert_eq!(store.transfer_file("t1", &digest(2)).unwrap().as_deref(), Some(&b"artifact file"[..]));
    assert_eq!(store.transfer_file("t1", MADE).unwrap(), None, "a name never given");
    assert_eq!(store.transfer_file("t2", SOURCE).unwrap(), None, "another transfer names nothing");
    assert_eq!(store.transfer_file("t2", &digest(2)).unwrap(), None, "content is reached only by a name");
}

fn holding_names_the_blobs_the_store_has_and_lists_the_rest(store: &dyn Store) {
    store.put_transfer_file("t1", &digest(1), &digest(1), b"one").unwrap();
    store.put_transfer_file("t1", &digest(3), &digest(3), b"three").unwrap();
    let asked = [digest(4), digest(3), digest(2), digest(1)];
    assert_eq!(store.hold_transfer_blobs("t2", &asked).unwrap(), [digest(4), digest(2)], "missing, in order");
    assert_eq!(store.transfer_file("t2", &digest(3)).unwrap().as_deref(), Some(&b"three"[..]), "now t2's too");
    assert_eq!(store.transfer_file("t2", &digest(2)).unwrap(), None);
    assert_eq!(store.hold_transfer_blobs("t2", &asked[1..2]).unwrap(), Vec::<String>::new(), "held twice: once");
    assert_eq!(store.hold_transfer_blobs("t2", &[]).unwrap(), Vec::<String>::new());
}

fn releasing_keeps_the_content_another_transfer_names(store: &dyn Store) {
    store.put_transfer_file("t1", SOURCE, &digest(1), b"tar").unwrap();
    store.put_transfer_file("t1", &digest(2), &digest(2), b"shared").unwrap();
    assert!(store.hold_transfer_blobs("t2", &[digest(2)]).unwrap().is_empty());
    store.release_transfer("t1").unwrap();
    assert_eq!(store.transfer_file("t1", SOURCE).unwrap(), None);
    assert_eq!(store.transfer_file("t2", &digest(2)).unwrap().as_deref(), Some(&b"shared"[..]), "t2 still names it");
    assert_eq!(store.hold_transfer_blobs("t3", &[digest(1), digest(2)]).unwrap(), [digest(1)], "t1's own is gone");
    store.release_transfer("t2").unwrap();
    store.release_transfer("t3").unwrap();
    assert_eq!(store.hold_transfer_blobs("t4", &[digest(1), digest(2)]).unwrap(), [digest(1), digest(2)], "all gone");
    store.release_transfer("never-made").unwrap();
}

fn renaming_forgets_the_content_nothing_names_any_more(store: &dyn Store) {
    store.put_transfer_file("t1", MADE, &digest(1), b"[first]").unwrap();
    store.put_transfer_file("t1", MADE, &digest(2), b"[second]").unwrap();
    assert_eq!(store.transfer_file("t1", MADE).unwrap().as_deref(), Some(&b"[second]"[..]));
    assert_eq!(store.hold_transfer_blobs("t2", &[digest(1)]).unwrap(), [digest(1)], "the first was deleted");
    store.put_transfer_file("t1", MADE, &digest(2), b"[second]").unwrap();
    assert_eq!(store.transfer_file("t1", MADE).unwrap().as_deref(), Some(&b"[second]"[..]), "put again: kept");
}

fn transfers_are_listed_by_prefix(store: &dyn Store) {
    for transfer in ["run-12-b", "run-12-a", "run-3-x", "release:ab", "run_1"] {
        store.put_transfer_file(transfer, SOURCE, &digest(1), b"tar").unwrap();
    }
    store.put_transfer_file("run-12-a", MADE, &digest(2), b"[]").unwrap();
    assert_eq!(store.transfers("run-").unwrap(), ["run-12-a", "run-12-b", "run-3-x"], "each once, in order");
    assert_eq!(store.transfers("run-12-").unwrap(), ["run-12-a", "run-12-b"]);
    assert_eq!(store.transfers("release:").unwrap(), ["release:ab"]);
    assert_eq!(store.transfers("%").unwrap(), Vec::<String>::new(), "a prefix, not a pattern");
    assert_eq!(store.transfers("").unwrap().len(), 5);
}
