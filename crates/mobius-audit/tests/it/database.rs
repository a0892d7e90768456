//! The OSV database: layout, withdrawn records, corrupt archives and records, age.

use std::fs;
use std::time::{Duration, SystemTime};

use mobius_audit::osv::{AsOfSource, DatabaseError};
use mobius_audit::{AuditError, Warning};
use serde_json::json;

use crate::fixture::{Fixture, advisory, cargo_lock, findings, now};

fn fixed_before(version: &str) -> serde_json::Value {
    json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": version}]}]})
}

#[test]
fn withdrawn_advisories_are_ignored() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    let mut withdrawn = advisory("RUSTSEC-2000-0001", "crates.io", "smallvec", fixed_before("2.0.0"));
    withdrawn["withdrawn"] = json!("2024-05-21T00:00:00Z");
    let live = advisory("RUSTSEC-2000-0002", "crates.io", "smallvec", fixed_before("1.5.0"));
    fixture.archive("crates.io", &[withdrawn, live]);
    let report = fixture.report();
    assert_eq!(
        findings(&report),
        [("smallvec".to_owned(), "1.0.0".to_owned(), "RUSTSEC-2000-0002".to_owned(), Some("1.5.0".to_owned()))]
    );
    assert_eq!((report.database[0].records, report.database[0].withdrawn), (2, 1));
}

#[test]
fn osv_scanner_cache_layout_is_found() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    fixture.archive("osv-scanner/crates.io", &[advisory("RUSTSEC-1", "crates.io", "smallvec", fixed_before("2.0.0"))]);
    assert_eq!(fixture.report().findings.len(), 1);
}

#[test]
fn a_missing_ecosystem_archive_is_an_error_naming_where_it_was_expected() {
    let fixture = Fixture::new();
    fixture.lockfile("go.sum", "github.com/a/b v1.0.0 h1:x=\n");
    fixture.archive("crates.io", &[]);
    let error = mobius_audit::run(&fixture.args(), now()).unwrap_err();
    let expected = format!(
        "no OSV database for Go in {}: expected {}",
        fixture.osv().display(),
        fixture.osv().join("Go/all.zip").display()
    );
    assert_eq!(error.to_string(), expected);
}

#[test]
fn a_corrupt_archive_is_an_error_naming_it() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    let path = fixture.osv().join("crates.io/all.zip");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"this is not a zip archive").unwrap();
    let error = mobius_audit::run(&fixture.args(), now()).unwrap_err();
    assert!(matches!(&error, AuditError::Database(DatabaseError::CorruptArchive { archive, .. }) if *archive == path));
    assert_eq!(error.to_string(), format!("{} is not a readable zip archive", path.display()));
}

#[test]
fn a_damaged_entry_is_an_error_naming_the_archive_and_the_entry() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    let record = serde_json::to_vec(&advisory("RUSTSEC-9", "crates.io", "smallvec", fixed_before("2.0.0"))).unwrap();
    let path = fixture.raw_archive(
        "crates.io",
        &[("RUSTSEC-9.json".to_owned(), record.clone())],
        zip::CompressionMethod::Stored,
    );
    // Flip a byte of the stored record: the archive's directory still reads, the entry's CRC
    // no longer matches.
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.windows(record.len()).position(|w| w == record.as_slice()).unwrap() + 10;
    bytes[at] ^= 0x20;
    fs::write(&path, bytes).unwrap();
    let error = mobius_audit::run(&fixture.args(), now()).unwrap_err();
    assert!(
        matches!(&error, AuditError::Database(DatabaseError::CorruptEntry { entry, .. }) if entry == "RUSTSEC-9.json"),
        "{error:?}"
    );
    assert_eq!(error.to_string(), format!("{}: entry RUSTSEC-9.json cannot be extracted", path.display()));
}

#[test]
fn an_invalid_record_is_an_error_naming_the_entry_and_the_position() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    let bad = b"{\n  \"id\": \"BAD-1\",\n  \"modified\": \"yesterday\"\n}".to_vec();
    let both_events = json!({"id": "BAD-2", "modified": "2024-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "crates.io", "name": "x"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1.0.0"}]}]}
    ]});
    for (name, bytes, detail) in [
        ("BAD-1.json", bad, "line 3"),
        ("BAD-2.json", serde_json::to_vec(&both_events).unwrap(), "exactly one of introduced, fixed"),
    ] {
        let path = fixture.raw_archive("crates.io", &[(name.to_owned(), bytes)], zip::CompressionMethod::Deflated);
        let error = mobius_audit::run(&fixture.args(), now()).unwrap_err();
        assert_eq!(error.to_string(), format!("{}: entry {name} is not a valid OSV record", path.display()));
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.contains(detail), "{source}");
    }
}

#[test]
fn an_unreadable_event_version_is_reported_not_guessed() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    fixture.archive("crates.io", &[advisory("RUSTSEC-3", "crates.io", "smallvec", fixed_before("1.x"))]);
    let report = fixture.report();
    assert!(report.findings.is_empty());
    let [Warning::Undecided { advisory, reason, .. }] = report.warnings.as_slice() else {
        panic!("{:?}", report.warnings)
    };
    assert_eq!(advisory, "RUSTSEC-3");
    assert!(reason.starts_with("crates.io version \"1.x\" is not valid"), "{reason}");
}

#[test]
fn an_old_database_warns_or_fails_as_asked() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    // Newest `modified` is 2024-05-20; the audit runs at 2024-06-01: 11 days and some hours.
    fixture.archive("crates.io", &[advisory("RUSTSEC-1", "crates.io", "smallvec", fixed_before("0.1.0"))]);
    let day = Duration::from_secs(86_400);

    let mut args = fixture.args();
    args.max_age = Some(30 * day);
    assert!(mobius_audit::run(&args, now()).unwrap().warnings.is_empty());

    args.max_age = Some(7 * day);
    let report = mobius_audit::run(&args, now()).unwrap();
    let [Warning::StaleDatabase { age_days, max_age_days, as_of, .. }] = report.warnings.as_slice() else {
        panic!("{:?}", report.warnings)
    };
    assert_eq!((*age_days, *max_age_days), (11, 7));
    assert_eq!(as_of.to_string(), "2024-05-20T10:00:00Z");

    args.fail_on_old = true;
    let error = mobius_audit::run(&args, now()).unwrap_err();
    assert!(matches!(error, AuditError::StaleDatabase { age_days: 11, max_age_days: 7, .. }), "{error:?}");
    assert!(error.to_string().contains("is 11 days old (data as of 2024-05-20T10:00:00Z), more than the 7 allowed"));
}

#[test]
fn an_archive_without_records_is_dated_by_its_file() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.0.0"]));
    let path = fixture.archive("crates.io", &[]);
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14
    fs::File::options().write(true).open(&path).unwrap().set_modified(modified).unwrap();
    let mut args = fixture.args();
    args.max_age = Some(Duration::from_secs(90 * 86_400));
    let report = mobius_audit::run(&args, now()).unwrap();
    assert_eq!(report.database[0].as_of_source, AsOfSource::FileModified);
    assert_eq!(report.database[0].as_of.as_second(), 1_700_000_000);
    assert!(
        matches!(report.warnings.as_slice(), [Warning::StaleDatabase { age_days: 199, .. }]),
        "{:?}",
        report.warnings
    );
}
