//! Auth0's own SDKs, unmodified, as clients of Assent: auth0-python (driven
//! by `tests/sdk/auth0_py.py` in `tests/.venv`), npm `auth0`'s
//! AuthenticationClient (driven by `tests/js/auth0-client.mjs`) and
//! `@auth0/auth0-auth-js`'s AuthClient, the one with the MFA API (driven by
//! `tests/js/auth0-auth-js.mjs`), each call a child process that prints one
//! JSON object. Both SDKs speak only https, so
//! the server sits behind a [`TlsProxy`]; [`SdkServer`] sets that up, and
//! [`DeliveryServer`] adds the mail and SMS receivers the passwordless
//! connections send to.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use assent_server::{
    client_auth::AuthMethod,
    config::{Secret, Settings, SmsProvider, SmtpTls},
    keys::TokenAlg,
};
use serde_json::Value;
use tokio::process::Command;

use crate::{
    client::Credentials, sms_receiver::SmsReceiver, smtp::SmtpSink, tls_proxy::TlsProxy, Backend,
    TestClient, TestServer,
};

/// Longer than any one SDK call should take (the SDKs' own HTTP timeouts
/// are 5 s for Python and 10 s for Node), short enough to fail a hung test.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkKind {
    Python,
    Node,
    /// `@auth0/auth0-auth-js`.
    NodeAuthJs,
}

/// One of Auth0's SDKs, configured for one client of one server.
#[derive(Debug, Clone)]
pub struct Auth0Sdk {
    pub kind: SdkKind,
    domain: String,
    client_id: String,
    client_secret: Option<String>,
    ca_pem: PathBuf,
}

impl Auth0Sdk {
    /// auth0-python's `auth0.authentication` classes for `domain`
    /// (`localhost:PORT`), trusting the CA in `ca_pem`.
    pub fn python(domain: &str, client_id: &str, secret: Option<&str>, ca_pem: &Path) -> Self {
        Self::new(SdkKind::Python, domain, client_id, secret, ca_pem)
    }

    /// npm auth0's `AuthenticationClient` for `domain` (`localhost:PORT`),
    /// trusting the CA in `ca_pem`.
    pub fn node(domain: &str, client_id: &str, secret: Option<&str>, ca_pem: &Path) -> Self {
        Self::new(SdkKind::Node, domain, client_id, secret, ca_pem)
    }

    /// `@auth0/auth0-auth-js`'s `AuthClient` for `domain` (`localhost:PORT`),
    /// trusting the CA in `ca_pem`.
    pub fn auth_js(domain: &str, client_id: &str, secret: Option<&str>, ca_pem: &Path) -> Self {
        Self::new(SdkKind::NodeAuthJs, domain, client_id, secret, ca_pem)
    }

    fn new(
        kind: SdkKind,
        domain: &str,
        client_id: &str,
        secret: Option<&str>,
        ca_pem: &Path,
    ) -> Self {
        Self {
            kind,
            domain: domain.into(),
            client_id: client_id.into(),
            client_secret: secret.map(str::to_string),
            ca_pem: ca_pem.into(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            SdkKind::Python => "auth0-python",
            SdkKind::Node => "node auth0",
            SdkKind::NodeAuthJs => "@auth0/auth0-auth-js",
        }
    }

    /// Runs one driver subcommand (`args[0]`, then its options as `--name`,
    /// value pairs; the client's `--domain`, `--client-id` and
    /// `--client-secret` are added) and returns what it printed:
    /// `{"ok":true,"result":...}` or
    /// `{"ok":false,"status":...,"error":...,"error_description":...,"message":...}`.
    /// A crash (including the Node SDK refusing an ID token) or output that
    /// is not one JSON object fails the test with the driver's stderr.
    pub async fn call(&self, args: &[&str]) -> Value {
        let mut cmd = match self.kind {
            SdkKind::Python => {
                let python = tests_dir().join(".venv/bin/python");
                assert!(
                    python.exists(),
                    "{} is missing: run scripts/setup (it installs tests/sdk/requirements.txt)",
                    python.display()
                );
                let mut cmd = Command::new(python);
                cmd.arg(tests_dir().join("sdk/auth0_py.py"))
                    .env("REQUESTS_CA_BUNDLE", &self.ca_pem);
                // The connection is to loopback: no proxy of the environment
                // may take it.
                for var in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
                    cmd.env_remove(var);
                }
                cmd
            }
            SdkKind::Node | SdkKind::NodeAuthJs => {
                let (package, driver) = match self.kind {
                    SdkKind::Node => ("auth0", "auth0-client.mjs"),
                    _ => ("@auth0/auth0-auth-js", "auth0-auth-js.mjs"),
                };
                let js = tests_dir().join("js");
                assert!(
                    js.join("node_modules").join(package).exists(),
                    "npm packages missing: run `npm ci` in {} (scripts/setup does)",
                    js.display()
                );
                let mut cmd = Command::new("node");
                cmd.current_dir(&js)
                    .arg(driver)
                    .env("NODE_EXTRA_CA_CERTS", &self.ca_pem);
                cmd
            }
        };
        let (subcommand, options) = args.split_first().expect("a subcommand");
        assert!(
            options.len() % 2 == 0 && options.iter().step_by(2).all(|o| o.starts_with("--")),
            "options come as --name, value pairs: {args:?}"
        );
        let mut pairs: Vec<(&str, &str)> =
            options.chunks(2).map(|pair| (pair[0], pair[1])).collect();
        pairs.extend([
            ("--domain", self.domain.as_str()),
            ("--client-id", &self.client_id),
        ]);
        if let Some(secret) = &self.client_secret {
            pairs.push(("--client-secret", secret));
        }
        // As --name=value: ids, secrets and tokens are base64url and may
        // start with "-", which argparse and parseArgs would take for an
        // option of its own.
        cmd.arg(subcommand)
            .args(pairs.iter().map(|(name, value)| format!("{name}={value}")))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(CALL_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} {args:?} did not finish in {CALL_TIMEOUT:?}",
                    self.name()
                )
            })
            .unwrap_or_else(|e| panic!("cannot run the {} driver: {e}", self.name()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let parsed = serde_json::from_str::<Value>(stdout.trim())
            .ok()
            .filter(Value::is_object);
        match parsed {
            Some(value) if output.status.success() => value,
            _ => panic!(
                "{} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
                self.name(),
                output.status
            ),
        }
    }

    /// [`Auth0Sdk::call`], asserting that the SDK returned; gives its result.
    pub async fn ok(&self, args: &[&str]) -> Value {
        let outcome = self.call(args).await;
        assert_eq!(
            outcome["ok"],
            true,
            "{} {}: {outcome}",
            self.name(),
            args[0]
        );
        outcome["result"].clone()
    }

    /// [`Auth0Sdk::call`], asserting that the SDK raised its error for an
    /// answer with HTTP `status` and OAuth `error`; gives the outcome.
    pub async fn err(&self, args: &[&str], status: u16, error: &str) -> Value {
        let outcome = self.call(args).await;
        assert_eq!(
            (&outcome["ok"], &outcome["status"], &outcome["error"]),
            (
                &Value::Bool(false),
                &Value::from(status),
                &Value::from(error)
            ),
            "{} {}: {outcome}",
            self.name(),
            args[0]
        );
        outcome
    }
}

/// A server on `backend` behind a [`TlsProxy`], its issuer the proxy's
/// `https://localhost:{port}/`, and a client for Auth0's SDKs:
/// `client_secret_post` (both SDKs send the secret in the body, never as
/// Basic) with RS256 ID tokens (the only signature the Node SDK checks).
pub struct SdkServer {
    pub server: TestServer,
    pub proxy: TlsProxy,
    pub client: TestClient,
}

impl SdkServer {
    /// With the CIBA and refresh grants, and a poll interval of 1 s.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(
            backend,
            &[
                assent_shared::oauth::CIBA_GRANT_TYPE,
                assent_shared::oauth::REFRESH_TOKEN_GRANT_TYPE,
            ],
            |_| {},
        )
        .await
    }

    /// With the client allowed `grants`; `configure` adjusts the settings
    /// after the issuer and a poll interval of 1 s are set.
    pub async fn start_with(
        backend: Backend,
        grants: &[&str],
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut proxy = TlsProxy::bind().await;
        let issuer = proxy.issuer();
        let server = TestServer::start_with(backend, |s| {
            s.issuer = Some(issuer);
            s.poll_interval = 1;
            configure(s);
        })
        .await;
        proxy.forward_to(server.server.addr);
        let client = TestClient::register_with_grants(
            server.store(),
            AuthMethod::ClientSecretPost,
            TokenAlg::RS256,
            grants,
        )
        .await;
        Self {
            server,
            proxy,
            client,
        }
    }

    pub fn client_secret(&self) -> &str {
        match &self.client.credentials {
            Credentials::SecretPost(secret) | Credentials::SecretBasic(secret) => secret,
            Credentials::PrivateKeyJwt { .. } => unreachable!("the SDK client has a secret"),
        }
    }

    pub fn python(&self) -> Auth0Sdk {
        Auth0Sdk::python(
            &self.proxy.domain(),
            &self.client.client_id,
            Some(self.client_secret()),
            self.proxy.ca_pem_path(),
        )
    }

    pub fn node(&self) -> Auth0Sdk {
        Auth0Sdk::node(
            &self.proxy.domain(),
            &self.client.client_id,
            Some(self.client_secret()),
            self.proxy.ca_pem_path(),
        )
    }

    /// `@auth0/auth0-auth-js`, the SDK with the MFA API.
    pub fn auth_js(&self) -> Auth0Sdk {
        Auth0Sdk::auth_js(
            &self.proxy.domain(),
            &self.client.client_id,
            Some(self.client_secret()),
            self.proxy.ca_pem_path(),
        )
    }

    /// Both SDKs, for tests that run the same steps with each.
    pub fn sdks(&self) -> [Auth0Sdk; 2] {
        [self.python(), self.node()]
    }

    /// `https://localhost:{port}/`.
    pub fn issuer(&self) -> String {
        self.proxy.issuer()
    }
}

/// An [`SdkServer`] with an SMTP server and an SMS webhook receiver for
/// the server to deliver passwordless codes and links to.
pub struct DeliveryServer {
    pub sdk: SdkServer,
    pub smtp: SmtpSink,
    pub sms: SmsReceiver,
}

impl DeliveryServer {
    /// The sender of every e-mail ([`Settings::smtp_from`]).
    pub const MAIL_FROM: &'static str = "Assent <login@assent.test>";
    /// The bearer token the SMS webhook is sent ([`Settings::sms_token`]).
    pub const SMS_TOKEN: &'static str = "test-sms-token";

    /// The server sends e-mail to `smtp` (plain SMTP on loopback, from
    /// [`Self::MAIL_FROM`]) and SMS to `sms` (the JSON webhook, with
    /// [`Self::SMS_TOKEN`]); its client is allowed `grants`. `configure`
    /// adjusts the settings after that (it gets both receivers).
    pub async fn start_with(
        backend: Backend,
        grants: &[&str],
        configure: impl FnOnce(&mut Settings, &SmtpSink, &SmsReceiver),
    ) -> Self {
        let smtp = SmtpSink::start().await;
        let sms = SmsReceiver::start().await;
        let sdk = SdkServer::start_with(backend, grants, |s| {
            s.smtp_host = Some("127.0.0.1".into());
            s.smtp_port = smtp.port();
            s.smtp_tls = SmtpTls::None;
            s.smtp_from = Some(Self::MAIL_FROM.into());
            s.sms_provider = Some(SmsProvider::Webhook);
            s.sms_url = Some(sms.url());
            s.sms_token = Some(Secret::new(Self::SMS_TOKEN));
            s.sms_allowed_hosts = vec![sms.host_port()];
            configure(s, &smtp, &sms);
        })
        .await;
        Self { sdk, smtp, sms }
    }
}
