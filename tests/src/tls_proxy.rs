//! A TLS-terminating TCP proxy for clients that will only speak https to
//! a server (Auth0's SDKs build every URL as `https://{domain}`): it
//! presents a certificate for `localhost` and `127.0.0.1` from a throwaway
//! CA made for this proxy alone, and copies the bytes of each connection,
//! decrypted, to a plain-HTTP server.
//!
//! Binding comes before forwarding so that the server behind can be started
//! knowing its public address (its issuer is `https://localhost:{port}/`).
//! Clients trust the CA through the PEM file at [`TlsProxy::ca_pem_path`]
//! (`REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, ...).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::TlsAcceptor;

pub struct TlsProxy {
    /// Until [`TlsProxy::forward_to`] starts accepting on it.
    listener: Option<TcpListener>,
    port: u16,
    acceptor: TlsAcceptor,
    ca_pem_path: PathBuf,
    /// Holds the CA file; removed with the proxy.
    _dir: tempfile::TempDir,
    accepting: Option<JoinHandle<()>>,
}

impl TlsProxy {
    /// Binds 127.0.0.1 on an ephemeral port and makes the CA and the
    /// certificate; nothing is accepted until [`TlsProxy::forward_to`].
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Assent test CA (throwaway)");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Python 3.13's default X509_STRICT verification wants the leaf to
        // name its issuer's key.
        leaf_params.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf_params.signed_by(&leaf_key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_pem_path = dir.path().join("ca.pem");
        std::fs::write(&ca_pem_path, ca_cert.pem()).unwrap();

        // The provider named, not taken from the process default: the test
        // binary links more than one.
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();

        Self {
            listener: Some(listener),
            port,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem_path,
            _dir: dir,
            accepting: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `localhost:{port}`: what Auth0's SDKs call the domain.
    pub fn domain(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// `https://localhost:{port}/`, the issuer for a server behind this
    /// proxy, spelled as Auth0 spells its own (and as its SDKs check `iss`).
    pub fn issuer(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }

    /// The CA certificate (PEM) that clients must trust.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// Starts accepting: each connection's TLS is terminated here and its
    /// bytes copied both ways to `upstream`. Connections end with the proxy.
    pub fn forward_to(&mut self, upstream: SocketAddr) {
        let listener = self
            .listener
            .take()
            .expect("forward_to is called once per proxy");
        let acceptor = self.acceptor.clone();
        self.accepting = Some(tokio::spawn(async move {
            // Owned by this task: aborting it (on drop) ends every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        connections.spawn(relay(acceptor.clone(), client, upstream));
                    }
                    // Reap finished connections so the set does not grow.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }
}

/// One connection: a failed handshake (a client that distrusts the CA) or
/// an upstream that went away just ends it, as it would with a real proxy;
/// the client sees the error.
async fn relay(acceptor: TlsAcceptor, client: TcpStream, upstream: SocketAddr) {
    let Ok(mut tls) = acceptor.accept(client).await else {
        return;
    };
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
    }
}
