//! The served OpenAPI document describes exactly the routes the server has.

use std::collections::BTreeSet;

use assent_server::http::route_table;
use assent_tests::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], server.server.base_url());

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(move |m| (path.clone(), m.to_uppercase()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = route_table()
        .iter()
        .flat_map(|r| {
            r.methods
                .iter()
                .map(|m| (r.path.to_string(), m.to_string()))
        })
        .collect();
    assert_eq!(
        documented, routed,
        "openapi.json and the route table disagree"
    );

    // The route table is what the router serves: every listed method is
    // routed (never 404/405) and every other method is 405.
    for route in route_table() {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let response = server
                .http
                .request(m.clone(), server.url(route.path))
                .send()
                .await
                .unwrap();
            let status = response.status();
            // A route may answer 404 itself (no such client logo); the
            // router's own 404 says there is no such endpoint.
            let unrouted = status == StatusCode::NOT_FOUND
                && response.text().await.unwrap().contains("no such endpoint");
            if route.methods.iter().any(|r| r.as_str() == method) {
                assert!(
                    !unrouted && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {} answered {status}",
                    route.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {}",
                    route.path
                );
            }
        }
    }

    // Every schema reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let pointer = reference.split('"').next().unwrap().trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {pointer}");
    }
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_server() {
    let server = TestServer::start(Backend::Sqlite).await;
    let meta: Value = assent_tests::get_json(
        &server.http,
        &server.url("/.well-known/openid-configuration"),
    )
    .await;
    let issuer = server.issuer();
    assert_eq!(meta["issuer"], issuer);
    assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(
        meta["backchannel_authentication_endpoint"],
        format!("{issuer}/bc-authorize")
    );
    assert_eq!(
        meta["backchannel_token_delivery_modes_supported"],
        serde_json::json!(["poll"])
    );
    assert_eq!(meta["backchannel_user_code_parameter_supported"], false);
    assert!(meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&"urn:openid:params:grant-type:ciba".into()));
    for m in [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ] {
        assert!(meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&m.into()));
    }
    assert_eq!(
        meta["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256"])
    );
    for key in [
        "userinfo_endpoint",
        "jwks_uri",
        "scopes_supported",
        "claims_supported",
    ] {
        assert!(!meta[key].is_null(), "{key}");
    }
    let jwks = assent_tests::get_json(&server.http, meta["jwks_uri"].as_str().unwrap()).await;
    let keys = jwks["keys"].as_array().unwrap();
    // ID-token and access-token keys, RS256 and ES256 each: four kids.
    assert_eq!(keys.len(), 4);
    for key in keys {
        assert!(key["kid"].is_string());
        assert!(key.get("d").is_none(), "no private material in the JWKS");
    }
}
