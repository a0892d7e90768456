//! A release tree as it travels: walked, packed into a tar on the client, unpacked on the
//! server. The same rules hold at both ends, so a tree the client packed unpacks, and a crafted
//! archive cannot reach outside its directory:
//!
//! - regular files (executable or not) and directories; `.git` and `target` are left out;
//! - symbolic links are kept as links, and only when they point inside the tree (relative,
//!   never above its root): a link to `/etc/shadow` or `../secrets` is refused, never followed;
//! - anything else (devices, sockets, FIFOs, hard links) is refused;
//! - on unpacking, every path is relative with plain components, nothing is written through a
//!   link or over an existing entry, and the total size and entry count are bounded.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// At most this many entries in one tree.
pub const MAX_ENTRIES: usize = 100_000;

/// At most this many bytes of file content in one tree (1 GiB).
pub const MAX_TREE_BYTES: u64 = 1 << 30;

/// Why a tree cannot be packed or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path} is a symbolic link to {target}, outside the tree: a release holds only its own files")]
    LinkEscapes { path: String, target: String },
    #[error("{path} is neither a file, a directory nor a link inside the tree")]
    Unsupported { path: String },
    #[error("the archive's entry `{path}` is not a plain relative path")]
    UnsafePath { path: String },
    #[error("the archive writes `{path}` through a link or twice")]
    Overwrite { path: String },
    #[error("the tree has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("the tree holds more than {} MiB", MAX_TREE_BYTES >> 20)]
    TooLarge,
    #[error("the archive is not a tar file")]
    Format(#[source] io::Error),
    #[error("cannot {action} {}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.to_owned();
    move |source| ArchiveError::Io { action, path, source }
}

/// One entry of a tree, by its path relative to the root (with `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File { path: String, executable: bool },
    Link { path: String, target: String },
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::File { path, .. } | Entry::Link { path, .. } => path,
        }
    }
}

/// Every file and link of the tree at `root`, sorted by path, checked against the rules above.
pub fn walk(root: &Path) -> Result<Vec<Entry>, ArchiveError> {
    let mut entries = Vec::new();
    walk_into(root, root, &mut entries)?;
    entries.sort_by(|a, b| a.path().as_bytes().cmp(b.path().as_bytes()));
    Ok(entries)
}

fn walk_into(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<(), ArchiveError> {
    for entry in fs::read_dir(dir).map_err(io("read", dir))? {
        let entry = entry.map_err(io("read", dir))?;
        let name = entry.file_name();
        if name == ".git" || name == "target" {
            continue;
        }
        let path = entry.path();
        let rel = relative(root, &path);
        // Not `metadata`: a link is looked at as a link, never followed.
        let kind = entry.file_type().map_err(io("read", &path))?;
        if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(io("read", &path))?;
            let target = target.to_string_lossy().into_owned();
            check_link(&rel, &target)?;
            out.push(Entry::Link { path: rel, target });
        } else if kind.is_dir() {
            walk_into(root, &path, out)?;
        } else if kind.is_file() {
            let mode = entry.metadata().map_err(io("read", &path))?.permissions().mode();
            out.push(Entry::File { path: rel, executable: mode & 0o111 != 0 });
        } else {
            return Err(ArchiveError::Unsupported { path: rel });
        }
        if out.len() > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

/// A link at `path` (relative to the root) may point only inside the tree: its target is
/// relative and, resolved lexically from the link's directory, never goes above the root.
fn check_link(path: &str, target: &str) -> Result<(), ArchiveError> {
    let escapes = || ArchiveError::LinkEscapes { path: path.to_owned(), target: target.to_owned() };
    let target_path = Path::new(target);
    if target.is_empty() || target_path.is_absolute() {
        return Err(escapes());
    }
    // Depth of the link's directory below the root, then walk the target's components.
    let mut depth = Path::new(path).components().count().saturating_sub(1) as i64;
    for component in target_path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(escapes());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(escapes()),
        }
    }
    Ok(())
}

/// The digest of a tree: the same as an artifact of these files would have (paths, contents
/// and sizes), with each link standing for itself by its target.
pub fn digest(root: &Path, entries: &[Entry]) -> Result<String, ArchiveError> {
    let mut manifest = Sha256::new();
    for entry in entries {
        let (path, content_digest, size) = match entry {
            Entry::File { path, .. } => {
                let full = root.join(path);
                let mut file = fs::File::open(&full).map_err(io("read", &full))?;
                let mut hasher = Sha256::new();
                let size = io::copy(&mut file, &mut hasher).map_err(io("read", &full))?;
                (path, hex::encode(hasher.finalize()), size)
            }
            Entry::Link { path, target } => (path, format!("link:{target}"), 0),
        };
        manifest.update(path.as_bytes());
        manifest.update([0]);
        manifest.update(content_digest.as_bytes());
        manifest.update([0]);
        manifest.update(size.to_string().as_bytes());
        manifest.update(b"\n");
    }
    Ok(format!("sha256:{}", hex::encode(manifest.finalize())))
}

/// Copies the tree's entries into `dest` (files with their executable bit, links as links).
pub fn copy(root: &Path, entries: &[Entry], dest: &Path) -> Result<(), ArchiveError> {
    for entry in entries {
        let to = dest.join(entry.path());
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        match entry {
            Entry::File { path, executable } => {
                let from = root.join(path);
                fs::copy(&from, &to).map_err(io("copy", &from))?;
                set_mode(&to, *executable)?;
            }
            Entry::Link { target, .. } => std::os::unix::fs::symlink(target, &to).map_err(io("create", &to))?,
        }
    }
    Ok(())
}

fn set_mode(path: &Path, executable: bool) -> Result<(), ArchiveError> {
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("set the mode of", path))
}

/// Packs the tree at `root` into a tar written to `out` (deterministic: sorted entries, no
/// owners or times), after checking it against the rules. Returns the tree's digest.
pub fn pack(root: &Path, out: impl Write) -> Result<String, ArchiveError> {
    let entries = walk(root)?;
    let mut builder = tar::Builder::new(out);
    let mut total = 0u64;
    for entry in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            Entry::File { path, executable } => {
                let full = root.join(path);
                let mut file = fs::File::open(&full).map_err(io("read", &full))?;
                let size = file.metadata().map_err(io("read", &full))?.len();
                total += size;
                if total > MAX_TREE_BYTES {
                    return Err(ArchiveError::TooLarge);
                }
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                builder.append_data(&mut header, path, &mut file).map_err(io("pack", &full))?;
            }
            Entry::Link { path, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                builder.append_link(&mut header, path, target).map_err(io("pack", &root.join(path)))?;
            }
        }
    }
    builder.into_inner().map_err(io("pack", root))?.flush().map_err(io("pack", root))?;
    digest(root, &entries)
}

/// Unpacks a tar made by [`pack`] (or anything that follows the same rules) into `dest`, an
/// empty directory. Returns the entries written.
pub fn unpack(archive: impl Read, dest: &Path) -> Result<Vec<Entry>, ArchiveError> {
    let mut archive = tar::Archive::new(archive);
    let mut written: HashSet<PathBuf> = HashSet::new();
    let mut links: HashSet<PathBuf> = HashSet::new();
    let mut entries = Vec::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(ArchiveError::Format)? {
        let mut entry = entry.map_err(ArchiveError::Format)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let rel = plain_relative(&raw).ok_or_else(|| ArchiveError::UnsafePath { path: shown.clone() })?;
        // Nothing is written through a link or over what is already there.
        if rel.ancestors().skip(1).any(|a| links.contains(a)) || !written.insert(rel.clone()) {
            return Err(ArchiveError::Overwrite { path: shown });
        }
        let to = dest.join(&rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        let rel_text = rel.to_string_lossy().into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total += entry.size();
                if total > MAX_TREE_BYTES {
                    return Err(ArchiveError::TooLarge);
                }
                let executable = entry.header().mode().map_err(ArchiveError::Format)? & 0o111 != 0;
                let mut file = fs::File::create_new(&to).map_err(io("create", &to))?;
                io::copy(&mut entry, &mut file).map_err(io("write", &to))?;
                set_mode(&to, executable)?;
                entries.push(Entry::File { path: rel_text, executable });
            }
            tar::EntryType::Directory => fs::create_dir_all(&to).map_err(io("create", &to))?,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .ok_or_else(|| ArchiveError::UnsafePath { path: shown.clone() })?;
                check_link(&rel_text, &target)?;
                std::os::unix::fs::symlink(&target, &to).map_err(io("create", &to))?;
                links.insert(rel);
                entries.push(Entry::Link { path: rel_text, target });
            }
            _ => return Err(ArchiveError::Unsupported { path: shown }),
        }
        if entries.len() > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries);
        }
    }
    entries.sort_by(|a, b| a.path().as_bytes().cmp(b.path().as_bytes()));
    Ok(entries)
}

/// `raw` as a relative path of plain components (no `..`, `.`, root or empty path).
fn plain_relative(raw: &[u8]) -> Option<PathBuf> {
    let text = std::str::from_utf8(raw).ok()?;
    let path = Path::new(text.trim_end_matches('/'));
    let plain = !text.is_empty()
        && !text.contains('\0')
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some();
    plain.then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::write(dir.path().join("mobius.yaml"), "service: shop\n").unwrap();
        fs::write(dir.path().join("bin/shop"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.path().join("bin/shop"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("bin/shop", dir.path().join("run")).unwrap();
        dir
    }

    #[test]
    fn a_tree_packs_and_unpacks_with_its_links_and_modes_and_one_digest() {
        let src = tree();
        let mut tar = Vec::new();
        let packed = pack(src.path(), &mut tar).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let entries = unpack(tar.as_slice(), dest.path()).unwrap();
        assert_eq!(entries, walk(src.path()).unwrap());
        assert_eq!(digest(dest.path(), &entries).unwrap(), packed, "the same tree, the same digest");
        assert_eq!(fs::read_link(dest.path().join("run")).unwrap(), Path::new("bin/shop"), "a link stays a link");
        let mode = fs::metadata(dest.path().join("bin/shop")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let mut again = Vec::new();
        pack(src.path(), &mut again).unwrap();
        assert_eq!(tar, again, "packing is deterministic");
    }

    #[test]
    fn links_that_leave_the_tree_are_refused_never_followed() {
        for target in ["/etc/passwd", "../../outside", "../bin/../../x", "./../.."] {
            let src = tree();
            std::os::unix::fs::symlink(target, src.path().join("bin/escape")).unwrap();
            let refused = pack(src.path(), Vec::new());
            assert!(
                matches!(&refused, Err(ArchiveError::LinkEscapes { path, .. }) if path == "bin/escape"),
                "{target}: {refused:?}"
            );
        }
        assert!(check_link("link", "").is_err(), "an empty target is no link into the tree");
        assert!(check_link("a/b/link", "../../c").is_ok(), "up to the root is inside");
        assert!(check_link("link", "./x/../y").is_ok());
    }

    /// A hand-made archive cannot place files outside the directory, through a link, or twice.
    #[test]
    fn crafted_archives_are_refused() {
        fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
            let mut builder = tar::Builder::new(Vec::new());
            build(&mut builder);
            builder.into_inner().unwrap()
        }
        fn file(builder: &mut tar::Builder<Vec<u8>>, path: &str) {
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            header.set_entry_type(tar::EntryType::Regular);
            // `append_data` refuses `..`; a hostile client writes the name itself.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, &b"hi"[..]).unwrap();
        }
        fn link(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("dot-dot", archive(|b| file(b, "../evil"))),
            ("absolute", archive(|b| file(b, "/tmp/evil"))),
            ("link out", archive(|b| link(b, "l", "/etc"))),
            (
                "through a link",
                archive(|b| {
                    link(b, "d", "sub");
                    file(b, "d/x");
                }),
            ),
            (
                "twice",
                archive(|b| {
                    file(b, "x");
                    file(b, "x");
                }),
            ),
        ];
        for (name, tar) in cases {
            let dest = tempfile::tempdir().unwrap();
            let outside = dest.path().parent().unwrap().join("evil");
            let refused = unpack(tar.as_slice(), &dest.path().join("release"));
            assert!(refused.is_err(), "{name}: {refused:?}");
            assert!(!outside.exists(), "{name}: wrote outside");
        }
    }
}
