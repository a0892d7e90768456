//! Secrets scoped to a repository, and optionally to one of its deployment environments,
//! stored encrypted.
//!
//! Each value is sealed with XChaCha20-Poly1305 under the server's 256-bit key, with a random
//! 192-bit nonce and the secret's scope and name as associated data, so a sealed value moved to
//! another scope or name no longer opens. The key is `MOBIUS_SECRET_KEY` (64 hex digits) when
//! given, else the file `secret.key` in the data directory, created with mode 0600 on first
//! use. A sealed constant kept in the store (the `secret-key-check` document) tells a wrong key
//! at once: [`Secrets::open`] refuses it, so a server never starts with secrets it cannot read.
//! [`Secrets::rotate`] reseals every secret under a new key in one transaction.
//!
//! Values are never logged, printed or returned by listings: [`Secrets::list`] gives names,
//! scopes and when they changed; only [`Secrets::for_repository`] opens them, for a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jiff::Timestamp;
use mobius_store::{SecretRecord, Store, StoreError};

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secret.key";

/// The store document holding the sealed check value.
const CHECK_KEY: &str = "secret-key-check";

/// What the check document seals.
const CHECK_PLAINTEXT: &[u8] = b"mobius secret key check";

/// Why secrets cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `MOBIUS_SECRET_KEY` or the key file is not 64 hex digits.
    #[error("the secret key {origin} is not 64 hexadecimal digits (a 256-bit key)")]
    BadKey { origin: String },
    /// The key file could not be read or created.
    #[error("cannot read or create the secret key file {}", path.display())]
    KeyFile { path: PathBuf, source: std::io::Error },
    /// The key does not open what the store holds.
    #[error(
        "the secret key does not match the one the stored secrets were sealed with: give the right \
         MOBIUS_SECRET_KEY or {KEY_FILE}"
    )]
    WrongKey,
    /// A name outside `[A-Z_][A-Z0-9_]*`, or one GitHub reserves.
    #[error("secret name `{0}` is not valid: use A-Z, 0-9 and _, not starting with a digit or GITHUB_")]
    BadName(String),
    /// An empty value.
    #[error("the value of secret `{0}` is empty")]
    Empty(String),
    /// A sealed value that does not open (changed in the store by hand).
    #[error("secret `{name}` of {scope} cannot be opened with this key")]
    Corrupt { scope: String, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A 256-bit key.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> SecretKey {
        SecretKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// A key from 64 hex digits; `origin` names where it came from in the error.
    pub fn from_hex(text: &str, origin: &str) -> Result<SecretKey, SecretError> {
        let bad = || SecretError::BadKey { origin: origin.to_owned() };
        let bytes = hex::decode(text.trim()).map_err(|_| bad())?;
        Ok(SecretKey(bytes.try_into().map_err(|_| bad())?))
    }

    /// The key as 64 hex digits, for the key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `given` (from `MOBIUS_SECRET_KEY`) if any, else the key file in `data_dir`, created
    /// (mode 0600, never replaced) when missing.
    pub fn load(data_dir: &Path, given: Option<&str>) -> Result<SecretKey, SecretError> {
        if let Some(text) = given {
            return SecretKey::from_hex(text, "in MOBIUS_SECRET_KEY");
        }
        let path = data_dir.join(KEY_FILE);
        let file_error = |source| SecretError::KeyFile { path: path.clone(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretKey::from_hex(&text, &format!("in {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::create_dir_all(data_dir).map_err(file_error)?;
                let key = SecretKey::generate();
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(file_error)?;
                file.write_all(format!("{}\n", key.to_hex()).as_bytes()).map_err(file_error)?;
                file.sync_all().map_err(file_error)?;
                Ok(key)
            }
            Err(error) => Err(file_error(error)),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

/// The secrets in a store, sealed under one key.
#[derive(Clone)]
pub struct Secrets {
    store: Arc<dyn Store>,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// A secret as listed (and as the API and `--json` show it): never its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretInfo {
    pub repository: String,
    /// `""` for a repository secret.
    pub environment: String,
    pub name: String,
    pub updated: Timestamp,
    pub updated_by: String,
}

/// The secrets a run of one repository sees: the repository's, and each environment's.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct RunSecrets {
    pub repository: BTreeMap<String, String>,
    pub environments: BTreeMap<String, BTreeMap<String, String>>,
}

impl std::fmt::Debug for RunSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSecrets")
            .field("repository", &self.repository.keys().collect::<Vec<_>>())
            .field("environments", &self.environments.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// The secrets of `store` under `key`: refused when the key is not the one they were
    /// sealed with. The first open of a store records the check value.
    pub fn open(store: Arc<dyn Store>, key: &SecretKey) -> Result<Secrets, SecretError> {
        let secrets = Secrets { store, cipher: key.cipher() };
        match secrets.store.state(CHECK_KEY)? {
            Some(sealed) => {
                if secrets.open_text(&sealed, CHECK_KEY.as_bytes()) != Some(CHECK_PLAINTEXT.to_vec()) {
                    return Err(SecretError::WrongKey);
                }
            }
            None => secrets.store.put_state(CHECK_KEY, &secrets.seal_text(CHECK_KEY.as_bytes(), CHECK_PLAINTEXT))?,
        }
        Ok(secrets)
    }

    /// Adds or replaces a secret.
    pub fn set(
        &self,
        repository: &str,
        environment: &str,
        name: &str,
        value: &str,
        who: &str,
    ) -> Result<(), SecretError> {
        check_name(name)?;
        if value.is_empty() {
            return Err(SecretError::Empty(name.to_owned()));
        }
        let (nonce, ciphertext) = self.seal(&aad(repository, environment, name), value.as_bytes());
        self.store.put_secret(&SecretRecord {
            repository: repository.to_owned(),
            environment: environment.to_owned(),
            name: name.to_owned(),
            nonce,
            ciphertext,
            updated: Timestamp::now(),
            updated_by: who.to_owned(),
        })?;
        Ok(())
    }

    /// Removes a secret; `false` if there was none.
    pub fn remove(&self, repository: &str, environment: &str, name: &str) -> Result<bool, SecretError> {
        Ok(self.store.delete_secret(repository, environment, name)?)
    }

    /// Names and scopes, of one repository or all.
    pub fn list(&self, repository: Option<&str>) -> Result<Vec<SecretInfo>, SecretError> {
        Ok(self
            .store
            .secrets(repository)?
            .into_iter()
            .map(|s| SecretInfo {
                repository: s.repository,
                environment: s.environment,
                name: s.name,
                updated: s.updated,
                updated_by: s.updated_by,
            })
            .collect())
    }

    /// The opened secrets of one repository, for a run.
    pub fn for_repository(&self, repository: &str) -> Result<RunSecrets, SecretError> {
        let mut run = RunSecrets::default();
        for record in self.store.secrets(Some(repository))? {
            let value = self.open_record(&record)?;
            match record.environment.as_str() {
                "" => run.repository.insert(record.name, value),
                environment => run.environments.entry(environment.to_owned()).or_default().insert(record.name, value),
            };
        }
        Ok(run)
    }

    /// Reseals every secret (and the check value) under `new_key`, in one transaction;
    /// returns the secrets under the new key and how many were resealed.
    pub fn rotate(&self, new_key: &SecretKey) -> Result<(Secrets, usize), SecretError> {
        let next = Secrets { store: self.store.clone(), cipher: new_key.cipher() };
        let mut resealed = Vec::new();
        for mut record in self.store.secrets(None)? {
            let value = self.open_record(&record)?;
            let (nonce, ciphertext) =
                next.seal(&aad(&record.repository, &record.environment, &record.name), value.as_bytes());
            record.nonce = nonce;
            record.ciphertext = ciphertext;
            resealed.push(record);
        }
        let check = next.seal_text(CHECK_KEY.as_bytes(), CHECK_PLAINTEXT);
        self.store.reseal_secrets(&resealed, CHECK_KEY, &check)?;
        Ok((next, resealed.len()))
    }

    fn open_record(&self, record: &SecretRecord) -> Result<String, SecretError> {
        let corrupt = || SecretError::Corrupt {
            scope: scope(&record.repository, &record.environment),
            name: record.name.clone(),
        };
        if record.nonce.len() != 24 {
            return Err(corrupt());
        }
        let payload =
            Payload { msg: &record.ciphertext, aad: &aad(&record.repository, &record.environment, &record.name) };
        let plain = self.cipher.decrypt(XNonce::from_slice(&record.nonce), payload).map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }

    /// Seals a document the application keeps outside the secret store (an agent job's
    /// payload, which carries that job's secrets), bound to `purpose`: opening it needs the
    /// same key and the same purpose.
    pub fn seal_document(&self, purpose: &str, plaintext: &[u8]) -> String {
        self.seal_text(purpose.as_bytes(), plaintext)
    }

    /// Opens what [`Secrets::seal_document`] sealed; `None` when the key or the purpose differs
    /// or the text was altered.
    pub fn open_document(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        self.open_text(sealed, purpose.as_bytes())
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption fails only for inputs past the cipher's limit (256 GiB).
        let ciphertext = self.cipher.encrypt(&nonce, Payload { msg: plaintext, aad }).unwrap_or_default();
        (nonce.to_vec(), ciphertext)
    }

    /// A sealed value as one hex string (nonce, then ciphertext), for a state document.
    fn seal_text(&self, aad: &[u8], plaintext: &[u8]) -> String {
        let (nonce, ciphertext) = self.seal(aad, plaintext);
        format!("{}{}", hex::encode(nonce), hex::encode(ciphertext))
    }

    fn open_text(&self, text: &str, aad: &[u8]) -> Option<Vec<u8>> {
        let bytes = hex::decode(text.trim()).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(24)?;
        self.cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad }).ok()
    }
}

/// What a sealed value is bound to: its scope and name.
fn aad(repository: &str, environment: &str, name: &str) -> Vec<u8> {
    format!("{repository}\n{environment}\n{name}").into_bytes()
}

fn scope(repository: &str, environment: &str) -> String {
    match environment {
        "" => format!("repository {repository}"),
        environment => format!("environment {environment} of {repository}"),
    }
}

/// `[A-Z_][A-Z0-9_]*`, not starting with `GITHUB_` (GitHub refuses those names too).
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && !name.starts_with("GITHUB_") {
        Ok(())
    } else {
        Err(SecretError::BadName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_store::sqlite::SqliteStore;

    fn store(dir: &Path) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(dir).unwrap())
    }

    #[test]
    fn a_sealed_document_opens_only_with_its_key_and_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::load(dir.path(), None).unwrap();
        let secrets = Secrets::open(store(dir.path()), &key).unwrap();
        let sealed = secrets.seal_document("agent job 7", b"{\"TOKEN\":\"plain-token-4711\"}");
        assert!(!sealed.contains("plain-token-4711"));
        assert_eq!(secrets.open_document("agent job 7", &sealed).unwrap(), b"{\"TOKEN\":\"plain-token-4711\"}");
        assert_eq!(secrets.open_document("agent job 8", &sealed), None);
        let mut altered = sealed.clone();
        let flipped = if sealed.ends_with("00") { "11" } else { "00" };
        altered.replace_range(sealed.len() - 2.., flipped);
        assert_eq!(secrets.open_document("agent job 7", &altered), None);
        let other = Secrets::open(store(tempfile::tempdir().unwrap().path()), &SecretKey::generate()).unwrap();
        assert_eq!(other.open_document("agent job 7", &sealed), None);
    }

    #[test]
    fn sealed_at_rest_scoped_rotated_and_a_wrong_key_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::load(dir.path(), None).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let secrets = Secrets::open(store(dir.path()), &key).unwrap();
        secrets.set("acme/app", "", "TOKEN", "plain-token-4711", "cli").unwrap();
        secrets.set("acme/app", "production", "DEPLOY_KEY", "prod-key-0815", "cli").unwrap();
        secrets.set("acme/other", "", "TOKEN", "other-token-42", "cli").unwrap();
        let run = secrets.for_repository("acme/app").unwrap();
        assert_eq!(run.repository, BTreeMap::from([("TOKEN".to_owned(), "plain-token-4711".to_owned())]));
        assert_eq!(run.environments["production"]["DEPLOY_KEY"], "prod-key-0815");
        assert_eq!(secrets.list(None).unwrap().len(), 3);

        // The plaintext is in no file of the data directory (database, WAL, key file), where
        // the scopes, stored in clear, are found: the scan reads the right files.
        let contains = |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
        let mut found = Vec::new();
        let mut scopes_seen = false;
        let mut pending = vec![dir.path().to_path_buf()];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            scopes_seen |= contains(&bytes, "acme/other");
            for secret in ["plain-token-4711", "prod-key-0815", "other-token-42"] {
                if contains(&bytes, secret) {
                    found.push((path.clone(), secret));
                }
            }
        }
        assert!(scopes_seen);
        assert!(found.is_empty(), "{found:?}");

        // A wrong key is refused at open; the same key loaded again opens.
        let wrong = SecretKey::generate();
        assert!(matches!(Secrets::open(store(dir.path()), &wrong), Err(SecretError::WrongKey)));
        let again = SecretKey::load(dir.path(), None).unwrap();
        assert!(Secrets::open(store(dir.path()), &again).is_ok());

        // Rotation keeps every secret readable under the new key, and only under it.
        let new_key = SecretKey::generate();
        let (rotated, count) = secrets.rotate(&new_key).unwrap();
        assert_eq!(count, 3);
        assert_eq!(rotated.for_repository("acme/app").unwrap(), run);
        assert!(matches!(Secrets::open(store(dir.path()), &key), Err(SecretError::WrongKey)));
        let reopened = Secrets::open(store(dir.path()), &SecretKey::from_hex(&new_key.to_hex(), "test").unwrap());
        assert_eq!(reopened.unwrap().for_repository("acme/other").unwrap().repository["TOKEN"], "other-token-42");
    }

    #[test]
    fn names_values_and_keys_are_checked() {
        for good in ["TOKEN", "_X", "A1_B2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "token", "1X", "A-B", "GITHUB_TOKEN", "A B"] {
            assert!(matches!(check_name(bad), Err(SecretError::BadName(_))), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::open(store(dir.path()), &SecretKey::generate()).unwrap();
        assert!(matches!(secrets.set("a/b", "", "X", "", "cli"), Err(SecretError::Empty(_))));
        assert!(secrets.list(None).unwrap().is_empty());
        let error = SecretKey::from_hex("abc", "in MOBIUS_SECRET_KEY").unwrap_err().to_string();
        assert_eq!(error, "the secret key in MOBIUS_SECRET_KEY is not 64 hexadecimal digits (a 256-bit key)");
    }
}
