//! Passwordless login end to end with real delivery: the server mails codes
//! and links through a real SMTP server (aiosmtpd) and texts codes to an
//! SMS provider's webhook (a loopback receiver that fails when told), and
//! Auth0's own SDKs (auth0-python, npm auth0) complete the logins from what
//! arrived, behind the TLS proxy they need. Also the back-end magic-link
//! API's branded mail, and the outbox surviving `kill -9`.

use std::time::Duration;

use assent_server::storage::{ClientChanges, UserChanges};
use assent_shared::oauth::{
    AUTHORIZATION_CODE_GRANT_TYPE, PASSWORDLESS_OTP_GRANT_TYPE, REFRESH_TOKEN_GRANT_TYPE,
};
use assent_tests::{
    client::create_user,
    db::TestDb,
    jwt_payload, on_both_backends,
    otp::six_digits,
    process::ServeProcess,
    sdk::{Auth0Sdk, DeliveryServer, SdkKind},
    sms_receiver::SmsReceiver,
    smtp::ReceivedMail,
    Backend,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ALICE: &str = "auth0|alice";
const ALICE_EMAIL: &str = "alice@example.com";
const ALICE_PHONE: &str = "+14155552671";
const CALLBACK: &str = "https://app.example.com/callback";
const WAIT: Duration = Duration::from_secs(30);

/// A [`DeliveryServer`] whose client may use passwordless login, magic
/// links and refresh, with [`CALLBACK`] registered; and Alice, with an
/// e-mail address and a phone number.
async fn delivery_server(backend: Backend) -> DeliveryServer {
    let env = DeliveryServer::start_with(
        backend,
        &[
            PASSWORDLESS_OTP_GRANT_TYPE,
            AUTHORIZATION_CODE_GRANT_TYPE,
            REFRESH_TOKEN_GRANT_TYPE,
        ],
        |_, _, _| {},
    )
    .await;
    let server = &env.sdk.server;
    assent_server::clients::update(
        server.store(),
        &env.sdk.client.client_id,
        ClientChanges {
            redirect_uris: Some(CALLBACK.into()),
            ..ClientChanges::default()
        },
        Some(&server.assent().clients),
    )
    .await
    .unwrap();
    create_user(server.store(), ALICE, Some(ALICE_EMAIL), Some("Alice")).await;
    assent_server::users::update(
        server.store(),
        ALICE,
        UserChanges {
            phone_number: Some(Some(ALICE_PHONE.into())),
            email_verified: Some(false),
            ..UserChanges::default()
        },
    )
    .await
    .unwrap();
    env
}

/// The magic link in a mail's text part.
fn link_in(mail: &ReceivedMail) -> String {
    let text = mail.text_body.as_deref().expect("a text part");
    let start = text.find("https://").expect("a link in the mail");
    text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(['>', ')', '.'])
        .to_string()
}

/// An HTTP client that trusts the proxy's CA and does not follow redirects.
fn browser(env: &DeliveryServer) -> reqwest::Client {
    let ca = std::fs::read(env.sdk.proxy.ca_pem_path()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows a magic link as a browser would; returns the redirect's `code`
/// and `state`.
async fn follow(env: &DeliveryServer, link: &str) -> (String, Option<String>) {
    let response = browser(env).get(link).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            location.scheme(),
            location.host_str().unwrap(),
            location.path()
        ),
        CALLBACK
    );
    let get = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
    };
    (get("code").expect("a code"), get("state"))
}

/// Checks tokens of a passwordless login of Alice; returns the ID token's claims.
fn check_tokens(tokens: &Value, amr: Value) -> Value {
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert!(tokens["access_token"].is_string());
    let id = jwt_payload(tokens["id_token"].as_str().expect("an ID token"));
    assert_eq!(id["sub"], ALICE);
    assert_eq!(id["amr"], amr);
    id
}

async fn email_code_with(env: &DeliveryServer, sdk: &Auth0Sdk) {
    let started = sdk
        .ok(&[
            "passwordless-email",
            "--email",
            "Alice@Example.com",
            "--send",
            "code",
        ])
        .await;
    if sdk.kind == SdkKind::Python {
        // Auth0's answer (the Node SDK's sendEmail returns only the status).
        assert!(started["_id"].is_string(), "{started}");
        assert_eq!(started["email"], "Alice@Example.com");
    }
    let mail = env.smtp.next_message(WAIT).await;
    assert_eq!(mail.envelope_to, [ALICE_EMAIL]);
    assert_eq!(mail.from_header.as_deref(), Some(DeliveryServer::MAIL_FROM));
    let code = six_digits(mail.text_body.as_deref().unwrap());
    assert!(mail.html_body.as_deref().unwrap().contains(&code));
    let scope = "openid profile email offline_access";
    let login = [
        "passwordless-login",
        "--realm",
        "email",
        "--username",
        ALICE_EMAIL,
        "--otp",
        &code,
        "--scope",
        scope,
    ];
    let tokens = sdk.ok(&login).await;
    check_tokens(&tokens, json!(["otp"]));
    assert_eq!(tokens["scope"], scope);
    assert!(tokens["refresh_token"].is_string());
    // Once only.
    sdk.err(&login, 400, "invalid_grant").await;
    // The code proved the address.
    let alice = env.sdk.server.store().user(ALICE).await.unwrap().unwrap();
    assert!(alice.email_verified);
}

on_both_backends! {
    async fn sdks_log_in_with_an_emailed_code(backend: Backend) {
        let env = delivery_server(backend).await;
        for sdk in env.sdk.sdks() {
            email_code_with(&env, &sdk).await;
        }
    }
}

on_both_backends! {
    async fn sdks_log_in_with_a_texted_code_after_the_provider_failed(backend: Backend) {
        let env = delivery_server(backend).await;
        for sdk in env.sdk.sdks() {
            // The provider fails once (503): the outbox tries again.
            env.sms.fail_next(1);
            let attempts = env.sms.attempts();
            let started = sdk.ok(&["passwordless-sms", "--phone", "+1 (415) 555-2671"]).await;
            if sdk.kind == SdkKind::Python {
                assert_eq!(started["phone_number"], ALICE_PHONE, "{started}");
            }
            let sms = env.sms.next_sms(WAIT).await;
            assert_eq!(sms.to, ALICE_PHONE);
            assert!(env.sms.attempts() >= attempts + 2, "a retry after the 503");
            let code = six_digits(&sms.body);
            let tokens = sdk
                .ok(&[
                    "passwordless-login", "--realm", "sms", "--username", ALICE_PHONE,
                    "--otp", &code, "--scope", "openid",
                ])
                .await;
            check_tokens(&tokens, json!(["otp", "sms"]));
            assert!(tokens.get("refresh_token").is_none_or(Value::is_null), "no offline_access asked");
        }
    }
}

on_both_backends! {
    async fn sdks_log_in_with_a_magic_link(backend: Backend) {
        let env = delivery_server(backend).await;
        for sdk in env.sdk.sdks() {
            let auth_params = json!({
                "redirect_uri": CALLBACK, "response_type": "code", "state": "st-1",
                "scope": "openid email offline_access",
            })
            .to_string();
            sdk.ok(&[
                "passwordless-email", "--email", ALICE_EMAIL, "--send", "link",
                "--auth-params", &auth_params,
            ])
            .await;
            let mail = env.smtp.next_message(WAIT).await;
            let link = link_in(&mail);
            assert!(link.starts_with(&format!("{}passwordless/link?token=", env.sdk.issuer())), "{link}");
            // A link checker's HEAD does not spend it.
            let head = browser(&env).head(&link).send().await.unwrap();
            assert_eq!(head.status(), StatusCode::OK);
            let (code, state) = follow(&env, &link).await;
            assert_eq!(state.as_deref(), Some("st-1"));
            // A link works once: the second visit is a page saying so.
            let again = browser(&env).get(&link).send().await.unwrap();
            assert_eq!(again.status(), StatusCode::BAD_REQUEST);
            assert!(again.text().await.unwrap().contains("cannot be used"));

            let exchange = ["authorization-code", "--code", &code, "--redirect-uri", CALLBACK];
            let tokens = sdk.ok(&exchange).await;
            check_tokens(&tokens, json!(["otp"]));
            assert_eq!(tokens["scope"], "openid email offline_access");
            assert!(tokens["refresh_token"].is_string());
            // The code, once.
            sdk.err(&exchange, 400, "invalid_grant").await;
        }
        // A redirect URI that is not registered is refused when the link is asked for.
        let sdk = env.sdk.python();
        let bad = json!({ "redirect_uri": "https://evil.example/cb" }).to_string();
        sdk.err(
            &["passwordless-email", "--email", ALICE_EMAIL, "--send", "link", "--auth-params", &bad],
            400,
            "invalid_request",
        )
        .await;
    }
}

/// A 1×1 PNG.
const LOGO_PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

on_both_backends! {
    async fn the_backend_api_mails_a_branded_link_and_trades_its_code(backend: Backend) {
        let env = delivery_server(backend).await;
        let server = &env.sdk.server;
        let client = &env.sdk.client;
        let response = client
            .post_json(
                server,
                "/backend-auth/magic-link/send",
                json!({
                    "email": ALICE_EMAIL,
                    "state": "cart-42",
                    "email_expiration": 600,
                    "email_content": {
                        "subject": "Sign in to Acme",
                        "primaryColor": "#AA3300",
                        "base64logo": LOGO_PNG_BASE64,
                        "headerText": "Welcome back",
                        "bodyText": "Use the button below <b>now</b>",
                        "linkText": "Sign me in",
                        "senderName": "Acme Store"
                    },
                    "client_attributes": { "ip_address": "203.0.113.9", "user_agent": "Firefox 140" }
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap()["message"], "Email sent successfully");
        let mail = env.smtp.next_message(WAIT).await;
        assert_eq!(mail.subject.as_deref(), Some("Sign in to Acme"));
        assert!(
            mail.from_header.as_deref().unwrap().starts_with("Acme Store <login@assent.test>")
                || mail.from_header.as_deref().unwrap().starts_with("\"Acme Store\" <login@assent.test>"),
            "the display name is the brand's, the address the server's: {:?}",
            mail.from_header
        );
        let html = mail.html_body.clone().unwrap();
        assert!(html.to_ascii_lowercase().contains("#aa3300"));
        assert!(html.contains("Welcome back") && html.contains("Sign me in"));
        assert!(
            html.contains("now") && !html.contains("<b>now</b>"),
            "branding text is escaped"
        );
        assert!(html.contains("cid:"), "the logo is an inline part");
        let raw = String::from_utf8_lossy(&mail.raw);
        assert!(raw.contains("Content-ID") && raw.contains("image/png"));
        let text = mail.text_body.clone().unwrap();
        assert!(text.contains("203.0.113.9"), "the requester is shown: {text}");

        let (code, state) = follow(&env, &link_in(&mail)).await;
        assert_eq!(state.as_deref(), Some("cart-42"));
        // Auth0's grant cannot redeem a code of the back-end API.
        let response = client
            .post(server, "/oauth/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)])
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = client
            .post_json(server, "/backend-auth/magic-link/authenticate", json!({ "code": code }))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        assert!(tokens["session_id"].is_string() && tokens["refresh_token"].is_string());
        check_tokens(&tokens, json!(["otp"]));
        let again = client
            .post_json(server, "/backend-auth/magic-link/authenticate", json!({ "code": code }))
            .await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    }
}

on_both_backends! {
    /// A code accepted while the SMS provider is down, then the server
    /// killed with -9: the restarted server sends it (the outbox is in the
    /// database), and the code works.
    async fn a_code_queued_before_kill_9_is_sent_after_the_restart(backend: Backend) {
        let db = TestDb::create(backend).await;
        let sms = SmsReceiver::start().await;
        sms.fail_next(1_000);
        let env: Vec<(&str, String)> = vec![
            ("ASSENT_SMS_PROVIDER", "webhook".into()),
            ("ASSENT_SMS_URL", sms.url()),
            ("ASSENT_SMS_ALLOWED_HOSTS", sms.host_port()),
        ];
        let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut first = ServeProcess::start(&db.url, &env_refs).await;
        let store = assent_server::storage::Store::connect(&db.url, 2).await.unwrap();
        let client = assent_tests::TestClient::register_with_grants(
            &store,
            assent_server::client_auth::AuthMethod::ClientSecretPost,
            assent_server::keys::TokenAlg::RS256,
            &[PASSWORDLESS_OTP_GRANT_TYPE],
        )
        .await;
        create_user(&store, ALICE, Some(ALICE_EMAIL), None).await;
        assent_server::users::update(
            &store,
            ALICE,
            UserChanges { phone_number: Some(Some(ALICE_PHONE.into())), ..UserChanges::default() },
        )
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let (id, secret) = match &client.credentials {
            assent_tests::client::Credentials::SecretPost(s) => (client.client_id.clone(), s.clone()),
            _ => unreachable!(),
        };
        let started = http
            .post(format!("{}/passwordless/start", first.base_url))
            .json(&json!({ "client_id": id, "client_secret": secret,
                           "connection": "sms", "phone_number": ALICE_PHONE }))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), StatusCode::OK);
        // The provider refused at least once: the message is in the outbox.
        let tried = assent_tests::wait::poll_until(WAIT, || async { sms.attempts() }, |n| *n >= 1).await;
        assert!(tried >= 1, "the provider was tried");
        first.child.start_kill().unwrap();
        first.child.wait().await.unwrap();
        assert!(sms.received().is_empty());

        sms.fail_next(0);
        let second = ServeProcess::start(&db.url, &env_refs).await;
        let text = sms.next_sms(Duration::from_secs(90)).await;
        assert_eq!(text.to, ALICE_PHONE);
        let code = six_digits(&text.body);
        let tokens: Value = http
            .post(format!("{}/oauth/token", second.base_url))
            .form(&[
                ("grant_type", PASSWORDLESS_OTP_GRANT_TYPE), ("client_id", &id), ("client_secret", &secret),
                ("realm", "sms"), ("username", ALICE_PHONE), ("otp", &code), ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        check_tokens(&tokens, json!(["otp", "sms"]));
        second.terminate().await;
    }
}
