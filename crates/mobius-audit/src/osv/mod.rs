//! An offline OSV database: the per-ecosystem `all.zip` exports that osv-scanner downloads and
//! caches as `<cache>/osv-scanner/<Ecosystem>/all.zip` (one OSV JSON record per entry), read
//! from a directory, and matched against packages with OSV's range semantics ([`range`]).
//!
//! The directory may be the cache (holding `osv-scanner/`) or the `osv-scanner` directory
//! itself. An ecosystem a lockfile needs but the directory lacks is an error, not a silent
//! pass. Withdrawn records are dropped as they are read.

pub mod cvss;
pub mod range;
pub mod record;
pub mod severity;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::package::{Ecosystem, Package};
use crate::version::VersionError;
use range::Verdict;
use record::Record;
use severity::Severity;

/// A database that could not be read. Every variant names the archive, and the entry where
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// No `all.zip` for an ecosystem the lockfiles use.
    #[error("no OSV database for {ecosystem} in {}: expected {}", dir.display(), expected.display())]
    MissingArchive {
        /// The ecosystem.
        ecosystem: Ecosystem,
        /// The database directory.
        dir: PathBuf,
        /// Where the archive was looked for first.
        expected: PathBuf,
    },
    /// The archive could not be opened or its metadata read.
    #[error("cannot read {}", archive.display())]
    Read {
        /// The archive.
        archive: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// The file is not a readable zip archive.
    #[error("{} is not a readable zip archive", archive.display())]
    CorruptArchive {
        /// The archive.
        archive: PathBuf,
        /// What the zip reader said.
        source: zip::result::ZipError,
    },
    /// An entry could not be extracted.
    #[error("{}: entry {entry} cannot be extracted", archive.display())]
    CorruptEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's name (or `#index` when even that is unreadable).
        entry: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An entry is not a valid OSV record.
    #[error("{}: entry {entry} is not a valid OSV record", archive.display())]
    InvalidRecord {
        /// The archive.
        archive: PathBuf,
        /// The entry's name.
        entry: String,
        /// Where in the entry, and what.
        source: serde_json::Error,
    },
}

/// How recent an archive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AsOfSource {
    /// The newest `modified` among its records.
    NewestModified,
    /// The file's modification time (an archive with no records).
    FileModified,
}

/// One ecosystem's archive, as read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Archive {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// Its path.
    pub path: PathBuf,
    /// Records read (withdrawn ones included).
    pub records: usize,
    /// Records dropped as withdrawn.
    pub withdrawn: usize,
    /// How recent its data is.
    pub as_of: Timestamp,
    /// Where `as_of` comes from.
    pub as_of_source: AsOfSource,
}

/// A record, with its severity worked out once.
#[derive(Debug, Clone)]
pub struct Advisory {
    /// The OSV record.
    pub record: Record,
    /// Its severity band, if it states one.
    pub severity: Option<Severity>,
    /// Its CVSS v3 base score, if it has a v3 vector.
    pub score: Option<f64>,
}

/// An advisory that affects a package.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    /// The advisory.
    pub advisory: &'a Advisory,
    /// The lowest fixed version above the package's, when a range names one.
    pub fixed: Option<String>,
}

/// An advisory whose ranges could not be evaluated for a package (a version its ordering
/// cannot read): reported so the gap is visible.
#[derive(Debug, Clone)]
pub struct Undecided<'a> {
    /// The advisory.
    pub advisory: &'a Advisory,
    /// Why.
    pub error: VersionError,
}

/// The advisories for the packages an audit asked about.
#[derive(Debug, Default)]
pub struct Database {
    advisories: Vec<Advisory>,
    by_package: HashMap<(Ecosystem, String), Vec<usize>>,
    archives: Vec<Archive>,
}

impl Database {
    /// Where the archive of `ecosystem` is in `dir`, if it is there.
    pub fn locate(dir: &Path, ecosystem: Ecosystem) -> Option<PathBuf> {
        [dir.join(ecosystem.osv_name()), dir.join("osv-scanner").join(ecosystem.osv_name())]
            .into_iter()
            .map(|d| d.join("all.zip"))
            .find(|p| p.is_file())
    }

    /// Reads the archives of every ecosystem among `packages`, keeping the records that
    /// affect one of them (by name; versions are checked by [`Database::matches`]).
    pub fn load(dir: &Path, packages: &[Package]) -> Result<Database, DatabaseError> {
        let wanted: HashSet<(Ecosystem, String)> =
            packages.iter().map(|p| (p.ecosystem, p.ecosystem.canonical_name(&p.name))).collect();
        let mut ecosystems: Vec<Ecosystem> = wanted.iter().map(|(e, _)| *e).collect();
        ecosystems.sort();
        ecosystems.dedup();
        let mut database = Database::default();
        for ecosystem in ecosystems {
            let archive = Database::locate(dir, ecosystem).ok_or_else(|| DatabaseError::MissingArchive {
                ecosystem,
                dir: dir.to_owned(),
                expected: dir.join(ecosystem.osv_name()).join("all.zip"),
            })?;
            database.read_archive(ecosystem, &archive, &wanted)?;
        }
        Ok(database)
    }

    fn read_archive(
        &mut self,
        ecosystem: Ecosystem,
        path: &Path,
        wanted: &HashSet<(Ecosystem, String)>,
    ) -> Result<(), DatabaseError> {
        let read_error = |source| DatabaseError::Read { archive: path.to_owned(), source };
        let file = File::open(path).map_err(read_error)?;
        let file_modified = file.metadata().and_then(|m| m.modified()).map_err(read_error)?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|source| DatabaseError::CorruptArchive { archive: path.to_owned(), source })?;
        let (mut records, mut withdrawn, mut newest) = (0, 0, None::<Timestamp>);
        let mut buffer = Vec::new();
        for index in 0..zip.len() {
            let corrupt = |entry: String, source: Box<dyn std::error::Error + Send + Sync>| {
                DatabaseError::CorruptEntry { archive: path.to_owned(), entry, source }
            };
            let mut entry = zip.by_index(index).map_err(|e| corrupt(format!("#{index}"), e.into()))?;
            let name = entry.name().map_err(|e| corrupt(format!("#{index}"), e.into()))?.into_owned();
            if entry.is_dir() || !name.ends_with(".json") {
                continue;
            }
            buffer.clear();
            entry.read_to_end(&mut buffer).map_err(|e| corrupt(name.clone(), e.into()))?;
            let record: Record = serde_json::from_slice(&buffer).map_err(|source| DatabaseError::InvalidRecord {
                archive: path.to_owned(),
                entry: name,
                source,
            })?;
            records += 1;
            newest = Some(newest.map_or(record.modified, |n| n.max(record.modified)));
            if record.withdrawn.is_some() {
                withdrawn += 1;
                continue;
            }
            let keys: Vec<(Ecosystem, String)> = record
                .affected
                .iter()
                .filter_map(|a| a.package.as_ref())
                .filter_map(|p| {
                    let ecosystem = Ecosystem::from_osv(&p.ecosystem)?;
                    Some((ecosystem, ecosystem.canonical_name(&p.name)))
                })
                .filter(|key| wanted.contains(key))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let (severity, score) = severity::assess(&record);
            let at = self.advisories.len();
            self.advisories.push(Advisory { record, severity, score });
            for key in keys {
                let list = self.by_package.entry(key).or_default();
                if list.last() != Some(&at) {
                    list.push(at);
                }
            }
        }
        let (as_of, as_of_source) = match newest {
            Some(newest) => (newest, AsOfSource::NewestModified),
            None => {
                let modified = Timestamp::try_from(file_modified).unwrap_or(Timestamp::UNIX_EPOCH);
                (modified, AsOfSource::FileModified)
            }
        };
        self.archives.push(Archive { ecosystem, path: path.to_owned(), records, withdrawn, as_of, as_of_source });
        Ok(())
    }

    /// The archives read, in ecosystem order.
    pub fn archives(&self) -> &[Archive] {
        &self.archives
    }

    /// The advisories that affect `package`, and those that could not be decided for it.
    pub fn matches(&self, package: &Package) -> (Vec<Match<'_>>, Vec<Undecided<'_>>) {
        let name = package.ecosystem.canonical_name(&package.name);
        let (mut found, mut undecided) = (Vec::new(), Vec::new());
        let Some(indices) = self.by_package.get(&(package.ecosystem, name.clone())) else {
            return (found, undecided);
        };
        for &index in indices {
            let advisory = &self.advisories[index];
            let mut verdict = Ok(Verdict::Unaffected);
            for affected in &advisory.record.affected {
                let Some(p) = &affected.package else { continue };
                if Ecosystem::from_osv(&p.ecosystem) != Some(package.ecosystem)
                    || package.ecosystem.canonical_name(&p.name) != name
                {
                    continue;
                }
                match range::evaluate(package.ecosystem, &package.version, affected) {
                    Ok(Verdict::Unaffected) => {}
                    affected @ Ok(Verdict::Affected { .. }) => {
                        verdict = affected;
                        break;
                    }
                    Err(error) => verdict = Err(error),
                }
            }
            match verdict {
                Ok(Verdict::Affected { fixed }) => found.push(Match { advisory, fixed }),
                Ok(Verdict::Unaffected) => {}
                Err(error) => undecided.push(Undecided { advisory, error }),
            }
        }
        (found, undecided)
    }
}
