//! TLS to PostgreSQL, against a cluster of the test's own: `ssl = on` with a certificate for
//! `localhost` signed by a CA made here, and `pg_hba.conf` admitting TCP connections over TLS
//! only (`hostssl`). Each `sslmode` is checked as libpq defines it.

use mobius_store::{PgStore, Store, StoreError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::cluster::Cluster;

/// A certificate authority: its certificate (PEM) and what signs with it.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for `localhost` only (not for `127.0.0.1`: a name that does not
/// match is what `verify-full` refuses and `verify-ca` lets by), and its key, both PEM.
fn server_certificate(ca: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, ca).unwrap();
    (certificate.pem(), key.serialize_pem())
}

/// A cluster that speaks TLS and admits nothing else over TCP, with a database `tls`.
struct TlsCluster {
    cluster: Cluster,
    /// Holds `ca.pem` (the CA that signed the server's certificate) and `other-ca.pem`.
    pki: tempfile::TempDir,
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let ca = authority("mobius test CA");
        let (certificate, key) = server_certificate(&ca);
        let pki = tempfile::tempdir().unwrap();
        std::fs::write(pki.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(pki.path().join("other-ca.pem"), authority("someone else's CA").pem()).unwrap();

        let mut cluster = Cluster::init().unwrap_or_else(|why| panic!("no PostgreSQL for the TLS tests: {why}"));
        cluster.write("server.crt", &certificate);
        cluster.write("server.key", &key);
        cluster.configure("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        cluster.write("pg_hba.conf", "local all all trust\nhostssl all all 127.0.0.1/32 trust\n");
        cluster.start().unwrap_or_else(|why| panic!("the TLS cluster did not start: {why}"));
        cluster.create_database("tls");
        TlsCluster { cluster, pki }
    }

    fn ca(&self, name: &str) -> String {
        self.pki.path().join(name).display().to_string()
    }

    /// The URL of `tls` at `host` (resolved to loopback whatever it is: `hostaddr`), as the
    /// user `postgres` with a password (trust ignores it; errors must not show it), and `query`.
    fn url(&self, host: &str, query: &str) -> String {
        let port = self.cluster.port();
        format!("postgres://postgres:hunter2@{host}:{port}/tls?hostaddr=127.0.0.1&connect_timeout=10&{query}")
    }
}

/// The error and its sources, `outer: inner: innermost`.
fn chain(error: &StoreError) -> String {
    let mut said = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        said.push_str(&format!(": {s}"));
        source = s.source();
    }
    said
}

fn works(store: &PgStore) {
    store.put_state("tls", "on").unwrap();
    assert_eq!(store.state("tls").unwrap().as_deref(), Some("on"));
}

fn refused(url: &str) -> String {
    match PgStore::connect(url) {
        Ok(_) => panic!("{url} was connected"),
        Err(error) => {
            let said = chain(&error);
            assert!(!said.contains("hunter2"), "the password is never shown: {said}");
            said
        }
    }
}

#[test]
fn each_sslmode_is_honoured_against_a_server_that_requires_tls() {
    let tls = TlsCluster::start();
    let ca = tls.ca("ca.pem");

    // verify-full: the CA signed it and it was issued for the host connected to.
    let store = PgStore::connect(&tls.url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}")))
        .unwrap_or_else(|e| panic!("{}\n{}", chain(&e), tls.cluster.log()));
    works(&store);
    assert!(store.url().contains("postgres:***@localhost"), "{}", store.url());
    drop(store);

    // A certificate another CA signed is refused, saying why.
    let said = refused(&tls.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", tls.ca("other-ca.pem"))));
    assert!(said.starts_with("cannot connect to PostgreSQL at postgres://postgres:***@localhost:"), "{said}");
    assert!(said.contains("invalid peer certificate") && said.contains("UnknownIssuer"), "{said}");

    // A name the certificate does not bear: verify-full refuses, verify-ca only checks the chain.
    let said = refused(&tls.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")));
    assert!(said.contains("invalid peer certificate") && said.contains("not valid for name"), "{said}");
    works(&PgStore::connect(&tls.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"))).unwrap());
    let said = refused(&tls.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={}", tls.ca("other-ca.pem"))));
    assert!(said.contains("UnknownIssuer"), "{said}");
    // As in libpq, `require` with a root certificate verifies the chain.
    refused(&tls.url("localhost", &format!("sslmode=require&sslrootcert={}", tls.ca("other-ca.pem"))));

    // require and prefer (the default): encrypted, whoever answers.
    works(&PgStore::connect(&tls.url("127.0.0.1", "sslmode=require")).unwrap());
    works(&PgStore::connect(&tls.url("127.0.0.1", "application_name=default-prefers-tls")).unwrap());

    // disable: in the clear, which this server refuses.
    let said = refused(&tls.url("127.0.0.1", "sslmode=disable"));
    assert!(said.contains("no pg_hba.conf entry") && said.contains("no encryption"), "{said}");

    // The key=value form says the same things.
    let port = tls.cluster.port();
    let pairs = format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user=postgres password=hunter2 dbname=tls sslmode=verify-full sslrootcert='{ca}'"
    );
    works(&PgStore::connect(&pairs).unwrap());
}
