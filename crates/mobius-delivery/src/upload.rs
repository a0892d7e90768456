//! Trees uploaded for `mobius deploy --dir`: a client packs its directory into a tar
//! ([`crate::archive::pack`]) and sends it by the tar's digest; the server writes it to a
//! temporary file while hashing it, and keeps it under `<data>/uploads/` only when the digest
//! matches. A deployment then names the upload ([`crate::Source::Upload`]); the tar is checked
//! against the tree's rules when the release is made.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::release::upload_path;

/// The largest upload accepted (512 MiB).
pub const MAX_UPLOAD_BYTES: u64 = 512 << 20;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("`{digest}` is not a digest (sha256:<64 hex>)")]
    BadDigest { digest: String },
    #[error("the upload is over the {} MiB limit", MAX_UPLOAD_BYTES >> 20)]
    TooLarge,
    #[error("the upload's content has digest {actual}, not {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("cannot {action} {}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

/// An upload being received.
pub struct Upload {
    digest: String,
    file: tokio::fs::File,
    partial: PathBuf,
    done: PathBuf,
    hasher: Sha256,
    written: u64,
}

impl Upload {
    /// Starts receiving the tar whose digest is `digest` (`sha256:<hex>`).
    pub async fn begin(data_dir: &Path, digest: &str) -> Result<Upload, UploadError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(UploadError::BadDigest { digest: digest.to_owned() });
        }
        let done = upload_path(data_dir, digest);
        let dir = done.parent().unwrap_or(data_dir).to_owned();
        tokio::fs::create_dir_all(&dir).await.map_err(|source| UploadError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        // A name of its own per upload: two clients sending the same tree do not share a file.
        let partial = dir.join(format!(".{hex}.{}.partial", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&partial).await.map_err(|source| UploadError::Io {
            action: "create",
            path: partial.clone(),
            source,
        })?;
        Ok(Upload { digest: digest.to_owned(), file, partial, done, hasher: Sha256::new(), written: 0 })
    }

    /// Appends a chunk of the body.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        self.written += chunk.len() as u64;
        if self.written > MAX_UPLOAD_BYTES {
            return Err(UploadError::TooLarge);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await.map_err(|source| UploadError::Io {
            action: "write",
            path: self.partial.clone(),
            source,
        })
    }

    /// Checks the digest and keeps the upload (durably) under it; an upload already kept is
    /// the same content, so it is simply kept.
    pub async fn finish(mut self) -> Result<(), UploadError> {
        let actual = format!("sha256:{}", hex::encode(std::mem::take(&mut self.hasher).finalize()));
        if actual != self.digest {
            return Err(UploadError::DigestMismatch { expected: self.digest.clone(), actual });
        }
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| UploadError::Io { action, path, source }
        };
        self.file.sync_all().await.map_err(io("write", &self.partial))?;
        tokio::fs::rename(&self.partial, &self.done).await.map_err(io("keep", &self.done))?;
        Ok(())
    }
}

impl Drop for Upload {
    /// A refused or abandoned upload leaves nothing behind.
    fn drop(&mut self) {
        if self.partial.exists()
            && let Err(e) = std::fs::remove_file(&self.partial)
        {
            tracing::warn!(path = %self.partial.display(), error = %e, "cannot remove an unfinished upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_upload_is_kept_only_under_its_own_digest() {
        let data = tempfile::tempdir().unwrap();
        let body = b"a tar, say";
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(body)));
        let mut upload = Upload::begin(data.path(), &digest).await.unwrap();
        upload.write(body).await.unwrap();
        upload.finish().await.unwrap();
        assert_eq!(std::fs::read(upload_path(data.path(), &digest)).unwrap(), body);

        let other = format!("sha256:{}", "0".repeat(64));
        let mut lying = Upload::begin(data.path(), &other).await.unwrap();
        lying.write(body).await.unwrap();
        assert!(matches!(lying.finish().await, Err(UploadError::DigestMismatch { .. })));
        assert!(!upload_path(data.path(), &other).exists());
        let left: Vec<_> = std::fs::read_dir(data.path().join("uploads")).unwrap().collect();
        assert_eq!(left.len(), 1, "the refused upload left nothing behind");

        for bad in ["sha256:xyz", "md5:00", "sha256:../../etc"] {
            assert!(matches!(Upload::begin(data.path(), bad).await, Err(UploadError::BadDigest { .. })), "{bad}");
        }
    }
}
