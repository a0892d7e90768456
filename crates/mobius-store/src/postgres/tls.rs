//! TLS to PostgreSQL through rustls with the ring provider, as libpq's `sslmode` asks.
//!
//! The `postgres` crate knows `disable`, `prefer` and `require` only, and neither
//! `verify-ca`, `verify-full` nor `sslrootcert`: those are taken out of the URL here
//! ([`split`]), the rest is the driver's to parse, and the verification is the rustls
//! configuration's ([`connector`]). As in libpq:
//!
//! | `sslmode` | encrypted | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `allow`, `prefer` (the default) | when the server offers TLS | not verified |
//! | `require` | always | not verified (verified as `verify-ca` when `sslrootcert` is given) |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root, and issued for the host connected to |
//!
//! The trusted roots are `sslrootcert`'s PEM file, or the system's (`sslrootcert=system`, or
//! no `sslrootcert`; libpq would read `~/.postgresql/root.crt` there, which a server has no
//! reason to have). `allow` is taken as `prefer`: both are unverified and opportunistic, and
//! `prefer` only tries TLS first.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The driver's mode: whether it asks the server for TLS and whether it must get it.
    pub(super) fn driver(self) -> ::postgres::config::SslMode {
        use ::postgres::config::SslMode as Driver;
        match self {
            SslMode::Disable => Driver::Disable,
            SslMode::Prefer => Driver::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Roots {
    /// A PEM file of one or more certificates (`sslrootcert=FILE`).
    File(PathBuf),
    /// The system's store (`sslrootcert=system`, or none given).
    System,
}

/// The TLS options of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsOptions {
    pub(super) mode: SslMode,
    pub(super) roots: Roots,
}

/// Why a URL's TLS options cannot be honoured; said after the (redacted) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsOptionError(pub(super) String);

impl fmt::Display for TlsOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Options of libpq's about TLS that this build does not honour: refused by name rather than
/// ignored (a client certificate silently not sent would fail later and less clearly).
const UNSUPPORTED: &[&str] = &["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

/// Takes `sslmode` and `sslrootcert` out of `url` (a `postgres://` URL or a `key=value`
/// string): the rest is for the driver to parse.
pub(super) fn split(url: &str) -> Result<(String, TlsOptions), TlsOptionError> {
    let taken = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        take_from_query(url)
    } else {
        take_from_pairs(url)
    };
    let (rest, options) = taken?;
    let mut mode = SslMode::Prefer;
    let mut roots = Roots::System;
    let mut root_given = false;
    for (key, value) in options {
        match key.as_str() {
            "sslmode" => {
                mode = match value.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(TlsOptionError(format!(
                            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        )));
                    }
                }
            }
            "sslrootcert" => {
                root_given = true;
                roots = if value == "system" { Roots::System } else { Roots::File(PathBuf::from(value)) };
            }
            unsupported => {
                return Err(TlsOptionError(format!(
                    "{unsupported} is not supported (client certificates and revocation lists are not); \
                     authenticate with a password over sslmode=verify-full"
                )));
            }
        }
    }
    // libpq: a root certificate given makes `require` verify the chain.
    if mode == SslMode::Require && root_given {
        mode = SslMode::VerifyCa;
    }
    Ok((rest, TlsOptions { mode, roots }))
}

fn is_taken(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert" || UNSUPPORTED.contains(&key)
}

type Taken = (String, Vec<(String, String)>);

/// A URL's query parameters: `?sslmode=…&sslrootcert=…` (percent-encoded).
fn take_from_query(url: &str) -> Result<Taken, TlsOptionError> {
    let Some((head, query)) = url.split_once('?') else { return Ok((url.to_owned(), Vec::new())) };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        if is_taken(&key) {
            taken.push((key, percent_decode(value)?));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() { head.to_owned() } else { format!("{head}?{}", kept.join("&")) };
    Ok((rest, taken))
}

fn percent_decode(text: &str) -> Result<String, TlsOptionError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else {
                return Err(TlsOptionError("a query parameter has a malformed %-escape".into()));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| TlsOptionError("a query parameter is not UTF-8 once decoded".into()))
}

/// A `key=value` connection string (values optionally single-quoted, with backslash escapes,
/// as libpq reads them).
fn take_from_pairs(url: &str) -> Result<Taken, TlsOptionError> {
    let mut rest = String::with_capacity(url.len());
    let mut taken = Vec::new();
    let mut chars = url.char_indices().peekable();
    let mut copied_to = 0;
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else { break };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            // Not a pair: the driver says what is wrong with it.
            return Ok((url.to_owned(), Vec::new()));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Ok((url.to_owned(), Vec::new())),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
        }
        let end = chars.peek().map_or(url.len(), |(i, _)| *i);
        if is_taken(&key) {
            rest.push_str(&url[copied_to..start]);
            copied_to = end;
            taken.push((key, value));
        }
    }
    rest.push_str(&url[copied_to..]);
    Ok((rest.trim().to_owned(), taken))
}

/// The rustls connector `options` ask for, with the ring provider; `None` for `disable`.
pub(super) fn connector(options: &TlsOptions) -> Result<Option<MakeRustlsConnect>, TlsOptionError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match options.mode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer | SslMode::Require => {
            Arc::new(Unverified { algorithms: provider.signature_verification_algorithms })
        }
        SslMode::VerifyCa => {
            Arc::new(ChainOnly { roots: Arc::new(roots(&options.roots)?), provider: provider.clone() })
        }
        SslMode::VerifyFull => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(&options.roots)?), provider.clone())
                .build()
                .map_err(|e| TlsOptionError(format!("cannot verify with these roots: {e}")))?
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsOptionError(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// The trusted roots: `sslrootcert`'s PEM certificates, or the system's.
fn roots(roots: &Roots) -> Result<RootCertStore, TlsOptionError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let shown = path.display();
            let certificates: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(path).and_then(|certificates| certificates.collect()).map_err(|e| {
                    TlsOptionError(format!("cannot read the root certificates in sslrootcert={shown}: {e}"))
                })?;
            if certificates.is_empty() {
                return Err(TlsOptionError(format!("sslrootcert={shown} holds no PEM certificate")));
            }
            for certificate in certificates {
                store.add(certificate).map_err(|e| {
                    TlsOptionError(format!("sslrootcert={shown} holds a certificate that is not a CA's: {e}"))
                })?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(TlsOptionError(format!(
                    "no system root certificates to verify the server with ({why}); name a CA with sslrootcert=FILE"
                )));
            }
        }
    }
    Ok(store)
}

/// `verify-ca`: the chain must lead to a trusted root, whatever name the certificate bears.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = ParsedCertificate::try_from(end_entity)?;
        let algorithms = self.provider.signature_verification_algorithms.all;
        verify_server_cert_signed_by_trust_anchor(&certificate, &self.roots, intermediates, now, algorithms)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// `prefer` and `require`: encrypted against a passive listener, but whoever answers is
/// trusted (libpq's behaviour, and why `verify-full` is the mode to use across networks). The
/// handshake's signatures are still checked against the certificate presented.
#[derive(Debug)]
struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, rest: &str, mode: SslMode, roots: Roots) {
        let (kept, options) = split(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!((kept.as_str(), options.mode, options.roots), (rest, mode, roots), "{url}");
    }

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_both_forms() {
        let file = |p: &str| Roots::File(PathBuf::from(p));
        check("postgres://u@h/db", "postgres://u@h/db", SslMode::Prefer, Roots::System);
        check("postgres://u@h/db?sslmode=disable", "postgres://u@h/db", SslMode::Disable, Roots::System);
        check(
            "postgres://u:pw@h/db?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&application_name=a",
            "postgres://u:pw@h/db?connect_timeout=5&application_name=a",
            SslMode::VerifyFull,
            file("/etc/ca x.pem"),
        );
        check("postgresql://h/db?sslmode=allow", "postgresql://h/db", SslMode::Prefer, Roots::System);
        check("postgres://h/db?sslmode=require", "postgres://h/db", SslMode::Require, Roots::System);
        // As in libpq: a root certificate makes `require` verify the chain.
        check(
            "postgres://h/db?sslmode=require&sslrootcert=ca.pem",
            "postgres://h/db",
            SslMode::VerifyCa,
            file("ca.pem"),
        );
        check(
            "postgres://h/db?sslmode=verify-ca&sslrootcert=system",
            "postgres://h/db",
            SslMode::VerifyCa,
            Roots::System,
        );
        check(
            "host=h sslmode=verify-full  sslrootcert='/a b/c\\'a.pem' dbname=m",
            "host=h    dbname=m",
            SslMode::VerifyFull,
            file("/a b/c'a.pem"),
        );
        check("sslmode = verify-ca host=h", "host=h", SslMode::VerifyCa, Roots::System);
        check("host=h password='x y' port=1", "host=h password='x y' port=1", SslMode::Prefer, Roots::System);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        for (url, said) in [
            ("postgres://h/db?sslmode=verify", "sslmode=verify is not one of"),
            ("postgres://h/db?sslcert=c.pem&sslkey=k.pem", "sslcert is not supported"),
            ("host=h sslcrl=x", "sslcrl is not supported"),
        ] {
            let error = split(url).expect_err(url);
            assert!(error.0.contains(said), "{url}: {error}");
        }
    }

    #[test]
    fn a_root_file_that_is_missing_or_empty_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let options =
            |path: &std::path::Path| TlsOptions { mode: SslMode::VerifyFull, roots: Roots::File(path.to_owned()) };
        let Err(error) = connector(&options(&missing)) else { panic!("connected without roots") };
        assert!(error.0.contains("cannot read the root certificates") && error.0.contains("missing.pem"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let Err(error) = connector(&options(&empty)) else { panic!("connected without roots") };
        assert!(error.0.contains("holds no PEM certificate"), "{error}");
    }
}
