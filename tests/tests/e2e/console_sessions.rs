//! Console sessions without a browser: every page needs one, a session
//! ends at its absolute expiry however busy it is, taking the role away
//! ends it at once, a login link works once, and a form without the CSRF
//! token or from another origin changes nothing.

use std::time::Duration;

use assent_server::console;
use assent_tests::{client::create_user, process::run_cli, Backend, TestServer};
use reqwest::{header, redirect::Policy, StatusCode};

/// Every console page, as a browser asks for it.
const PAGES: [&str; 10] = [
    "/console/",
    "/console/verify",
    "/console/clients",
    "/console/users",
    "/console/requests",
    "/console/audit",
    "/console/keys",
    "/console/settings",
    "/console/admin-tokens",
    "/console/verify/some-id",
];

fn browser_like() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn get(server: &TestServer, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = browser_like()
        .get(format!("{}{path}", server.issuer()))
        .header(header::ACCEPT, "text/html");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("assent-console={cookie}"));
    }
    request.send().await.unwrap()
}

async fn sessions(backend: Backend) {
    let server = TestServer::start_on_localhost(backend, |_| {}).await;
    create_user(
        server.store(),
        "olga",
        Some("olga@example.com"),
        Some("Olga"),
    )
    .await;
    run_cli(&server.db.url, &["user", "role", "set", "olga", "admin"]).await;

    // No page without a session: the browser is sent to the sign-in page.
    for path in PAGES {
        let response = get(&server, path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            response.headers()[header::LOCATION],
            "/console/sign-in",
            "{path}"
        );
    }
    let forged = get(&server, "/console/", Some("not-a-session")).await;
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);

    // A login link works once.
    let link = console::create_login_link(server.assent(), "olga")
        .await
        .unwrap();
    let token = link.split_once('#').unwrap().1.to_string();
    let (secret, role) = console::redeem_login_link(server.assent(), &token, "127.0.0.1")
        .await
        .unwrap()
        .expect("a fresh link signs in");
    assert_eq!(role.as_str(), "admin");
    assert!(
        console::redeem_login_link(server.assent(), &token, "127.0.0.1")
            .await
            .unwrap()
            .is_none()
    );
    let page = get(&server, "/console/", Some(&secret)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");

    // The admin API takes the session too: reads as they are, changes with
    // the session's CSRF token from the console's origin, audited as the person.
    let api = |method: reqwest::Method, path: &str| {
        browser_like()
            .request(method, format!("{}{path}", server.issuer()))
            .header(header::COOKIE, format!("assent-console={secret}"))
    };
    let listed = api(reqwest::Method::GET, "/admin/v1/users")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let new_user = serde_json::json!({"sub": "bob", "email": "bob@example.com"});
    let refused = api(reqwest::Method::POST, "/admin/v1/users")
        .header(header::ORIGIN, server.issuer())
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let session = console::session(server.assent(), &secret)
        .await
        .unwrap()
        .unwrap();
    let foreign = api(reqwest::Method::POST, "/admin/v1/users")
        .header(header::ORIGIN, "https://evil.example")
        .header("x-csrf-token", &session.csrf)
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let created = api(reqwest::Method::POST, "/admin/v1/users")
        .header(header::ORIGIN, server.issuer())
        .header("x-csrf-token", &session.csrf)
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let log = run_cli(
        &server.db.url,
        &["audit", "list", "--action", "user.create"],
    )
    .await;
    assert!(log.contains("console:olga"), "{log}");
    // An operator's session may not touch admin tokens.
    run_cli(&server.db.url, &["user", "role", "set", "bob", "operator"]).await;
    let link = console::create_login_link(server.assent(), "bob")
        .await
        .unwrap();
    let (bob, _) = console::redeem_login_link(
        server.assent(),
        link.split_once('#').unwrap().1,
        "127.0.0.1",
    )
    .await
    .unwrap()
    .unwrap();
    let tokens = browser_like()
        .get(format!("{}/admin/v1/admin-tokens", server.issuer()))
        .header(header::COOKIE, format!("assent-console={bob}"))
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), StatusCode::FORBIDDEN);

    // A form from another origin, or without the CSRF token, changes nothing.
    for (origin, csrf) in [("https://evil.example", true), (server.issuer(), false)] {
        let session = console::session(server.assent(), &secret)
            .await
            .unwrap()
            .unwrap();
        let body = if csrf {
            format!("csrf={}", session.csrf)
        } else {
            String::new()
        };
        let refused = browser_like()
            .post(format!("{}/console/sign-out", server.issuer()))
            .header(header::COOKIE, format!("assent-console={secret}"))
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{origin}");
        assert!(console::session(server.assent(), &secret)
            .await
            .unwrap()
            .is_some());
    }

    // Busy all day: kept alive every 20 minutes, over at 12 hours anyway.
    let mut alive = Duration::ZERO;
    while console::session(server.assent(), &secret)
        .await
        .unwrap()
        .is_some()
    {
        server.advance_clock(Duration::from_secs(20 * 60));
        alive += Duration::from_secs(20 * 60);
        assert!(alive <= Duration::from_secs(13 * 3600), "never expired");
    }
    assert!(
        alive >= Duration::from_secs(11 * 3600 + 40 * 60) && alive <= console::ABSOLUTE_TIMEOUT,
        "ended after {alive:?}"
    );

    // Taking the role away ends a session at its next request.
    let link = console::create_login_link(server.assent(), "olga")
        .await
        .unwrap();
    let (secret, _) = console::redeem_login_link(
        server.assent(),
        link.split_once('#').unwrap().1,
        "127.0.0.1",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        get(&server, "/console/", Some(&secret)).await.status(),
        StatusCode::OK
    );
    run_cli(&server.db.url, &["user", "role", "clear", "olga"]).await;
    assert_eq!(
        get(&server, "/console/", Some(&secret)).await.status(),
        StatusCode::SEE_OTHER
    );
    // And a user without a role gets no link.
    assert!(console::create_login_link(server.assent(), "olga")
        .await
        .is_err());
}

#[tokio::test]
async fn console_sessions_on_sqlite() {
    sessions(Backend::Sqlite).await;
}

#[tokio::test]
async fn console_sessions_on_postgres() {
    sessions(Backend::Postgres).await;
}
