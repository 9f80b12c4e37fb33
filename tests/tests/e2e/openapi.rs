//! The served OpenAPI document describes exactly the routes the server has.

use std::collections::BTreeSet;

use assent_server::http::{errors::device_status, route_table};
use assent_shared::error::{DeviceErrorCode, OAuthErrorCode};
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

// ---------------------------------------------------------------------------
// The document's contents against the server's code: cheap mechanical checks
// beside the Schemathesis run (schemathesis.rs), for what it cannot reach.

/// The document as committed (the server serves it with its own URL).
fn document() -> Value {
    serde_json::from_str(include_str!("../../../server/openapi.json")).expect("openapi.json")
}

/// Every operation of the document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                ops.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    ops
}

/// `value`, or what it points to when it is a `$ref`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(pointer) => doc
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {pointer}")),
        None => value,
    }
}

#[test]
fn every_error_code_is_in_the_documents_enums() {
    let doc = document();
    let documented = |schema: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]["error"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} has an error enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let oauth: BTreeSet<String> = OAuthErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let device: BTreeSet<String> = DeviceErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    // Equal, not only included: a code removed from the server leaves the
    // document too.
    assert_eq!(
        documented("Error"),
        oauth,
        "components.schemas.Error.error.enum vs OAuthErrorCode::ALL"
    );
    assert_eq!(
        documented("DeviceError"),
        device,
        "components.schemas.DeviceError.error.enum vs DeviceErrorCode::ALL"
    );
}

#[test]
fn every_operation_documents_the_answers_any_request_can_get() {
    let doc = document();
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let at = format!("{} {path}", method.to_uppercase());
        // A failed database or a bug; the 30-second timeout.
        for status in ["500", "503"] {
            assert!(responses.contains_key(status), "{at} lists no {status}");
        }
        // Every body has a size limit.
        if op.get("requestBody").is_some() {
            assert!(responses.contains_key("413"), "{at} lists no 413");
        }
        // Credentials that are required can be missing.
        let required_security = op["security"]
            .as_array()
            .is_some_and(|alternatives| alternatives.iter().all(|a| a != &serde_json::json!({})));
        if required_security {
            assert!(responses.contains_key("401"), "{at} lists no 401");
        }
        // Refusals speak the vocabulary of their API: the device protocol's
        // on /device/v1/, OAuth's elsewhere (/metrics answers in text, and a
        // magic link that cannot be used is a page for the person's browser).
        let vocabulary = if path.starts_with("/device/v1/") {
            "#/components/schemas/DeviceError"
        } else {
            "#/components/schemas/Error"
        };
        for (status, response) in responses {
            let code: u16 = status.parse().unwrap();
            let skip = code < 400
                || (path == "/metrics" && code == 401)
                || (path == "/passwordless/link" && code == 400)
                || (path == "/readyz" && code == 503);
            if skip {
                continue;
            }
            let response = resolve(&doc, response);
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            if code == 503 {
                assert!(response.get("content").is_none(), "{at} 503 has no body");
                continue;
            }
            assert_eq!(schema, vocabulary, "{at} {status}");
        }
    }
}

/// The device endpoints' table in docs/protocol.md ("What each endpoint can
/// answer"), the status of each code there (`http::errors::device_status`),
/// and the responses the OpenAPI document lists agree.
#[test]
fn device_statuses_agree_with_the_protocol_and_the_status_table() {
    let doc = document();
    let protocol = include_str!("../../../docs/protocol.md");
    struct Row {
        endpoint: String,
        success: u16,
        /// (status, code)
        refusals: Vec<(u16, String)>,
        /// Endpoints whose refusals this one shares ("as `push-channel`").
        like: Vec<String>,
    }
    let mut rows: Vec<Row> = Vec::new();
    for line in protocol.lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        let Some(endpoint) = cells
            .first()
            .and_then(|c| c.strip_prefix("| `"))
            .and_then(|c| c.strip_suffix('`'))
            .filter(|e| e.contains(" /device/v1/"))
        else {
            continue;
        };
        let success: u16 = cells[1].trim_start_matches('`')[..3].parse().unwrap();
        let mut refusals = Vec::new();
        let mut like = Vec::new();
        let parts: Vec<&str> = cells[2].split('`').collect();
        // Odd parts are inside backticks: `STATUS code`, or after "as " the
        // endpoint whose refusals this one shares.
        for i in (1..parts.len()).step_by(2) {
            let part = parts[i];
            if parts[i - 1].ends_with("as ") {
                like.push(part.to_string());
            } else if let Some((status, code)) = part
                .split_once(' ')
                .filter(|(s, _)| s.len() == 3 && s.parse::<u16>().is_ok())
            {
                refusals.push((status.parse().unwrap(), code.to_string()));
            }
        }
        rows.push(Row {
            endpoint: endpoint.to_string(),
            success,
            refusals,
            like,
        });
    }
    assert!(rows.len() >= 9, "the endpoint table of docs/protocol.md");
    let refusals_of = |endpoint: &str| -> Vec<(u16, String)> {
        let mut all = Vec::new();
        let find = |name: &str| {
            rows.iter()
                .find(|r| r.endpoint == name || r.endpoint.ends_with(&format!("/{name}")))
                .unwrap_or_else(|| panic!("no row for {name} in docs/protocol.md"))
        };
        let row = find(endpoint);
        all.extend(row.refusals.iter().cloned());
        for other in &row.like {
            all.extend(find(other).refusals.iter().cloned());
        }
        all
    };
    for Row {
        endpoint, success, ..
    } in &rows
    {
        let refusals = refusals_of(endpoint);
        let mut expected: BTreeSet<u16> = [*success, 500, 503].into();
        for (status, code) in &refusals {
            let parsed: DeviceErrorCode = code.parse().unwrap_or_else(|_| {
                panic!("docs/protocol.md names {code} for {endpoint}: not a device code")
            });
            // 413 is the size limit, whatever the code.
            if *status != 413 {
                assert_eq!(
                    device_status(parsed).as_u16(),
                    *status,
                    "{code} at {endpoint}: docs/protocol.md vs http/errors.rs"
                );
            }
            expected.insert(*status);
        }
        let (method, path) = endpoint.split_once(' ').unwrap();
        let documented: BTreeSet<u16> = doc["paths"][path][method.to_lowercase()]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{endpoint} is in openapi.json"))
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            documented, expected,
            "{endpoint}: openapi.json vs docs/protocol.md"
        );
    }
}

/// Each length limit the document gives a `/bc-authorize` parameter is the
/// server's: one character more is refused for its length, that many is not.
/// (The limits count bytes; these values are ASCII.) And an empty optional
/// parameter counts as absent, as the document says.
#[tokio::test]
async fn bc_authorize_parameters_are_what_the_document_says() {
    let (server, client) = assent_tests::server_with_alice().await;
    let doc = document();
    let schema = &doc["paths"]["/bc-authorize"]["post"]["requestBody"]["content"]
        ["application/x-www-form-urlencoded"]["schema"];
    let base = [
        ("scope", "openid".to_string()),
        ("login_hint", assent_tests::ALICE.to_string()),
        ("binding_message", "Order 1234".to_string()),
    ];
    let send = |name: &str, value: String| {
        // An ID token hint replaces the login hint (exactly one is allowed).
        let replaces_hint = name == "id_token_hint" && !value.is_empty();
        let mut params: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| *k != name && !(replaces_hint && *k == "login_hint"))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        params.push((name.to_string(), value));
        let (server, client) = (&server, &client);
        async move {
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let response = client.bc_authorize(server, &params).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    };
    let refused_for_length = |body: &Value| {
        body["error"] == "invalid_binding_message"
            || body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("longer than"))
    };
    let mut checked = 0;
    for (name, property) in schema["properties"].as_object().unwrap() {
        let Some(max) = property["maxLength"].as_u64().map(|m| m as usize) else {
            continue;
        };
        let value = |n: usize| match name.as_str() {
            "scope" => format!("openid {}", "a".repeat(n - 7)),
            "requested_expiry" => format!("{}1", "0".repeat(n - 1)),
            _ => "a".repeat(n),
        };
        if max > 0 {
            let (status, body) = send(name, value(max)).await;
            assert!(
                !refused_for_length(&body),
                "{name} of {max} characters is refused for its length: {status} {body}"
            );
        }
        let (status, body) = send(name, value(max + 1)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert!(
            max == 0 || refused_for_length(&body),
            "{name} of {} characters: {body}",
            max + 1
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} limits checked");

    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in schema["properties"].as_object().unwrap().keys() {
        if base.iter().any(|(k, _)| k == name) {
            continue;
        }
        let (status, body) = send(name, String::new()).await;
        assert_eq!(status, StatusCode::OK, "{name}= (empty): {body}");
    }
    for name in required {
        let (status, body) = send(name, String::new()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}= (empty): {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains(&format!("missing required parameter {name}")),
            "{body}"
        );
    }
}

/// Checks `value` against `schema` of the document: the keywords the
/// document uses for response bodies (`$ref`, `type`, `const`, `enum`,
/// `required`, `properties`, `additionalProperties: false`, `items`,
/// `minimum`, `maximum`, `minLength`, `maxLength`; not `pattern`, for want
/// of a regex engine here). Schemathesis checks every response it can get;
/// this checks those it cannot (a device must sign for them).
fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
            other => return Err(format!("{at}: type {other}")),
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let Some(expected) = schema.get("const") {
        if value != expected {
            return Err(format!("{at}: {value} is not {expected}"));
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let (Some(n), Some(min)) = (value.as_f64(), schema["minimum"].as_f64()) {
        if n < min {
            return Err(format!("{at}: {n} < {min}"));
        }
    }
    if let (Some(n), Some(max)) = (value.as_f64(), schema["maximum"].as_f64()) {
        if n > max {
            return Err(format!("{at}: {n} > {max}"));
        }
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min)
            || schema["maxLength"].as_u64().is_some_and(|max| chars > max)
        {
            return Err(format!("{at}: length {chars} out of bounds"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                return Err(format!("{at}: {name} is missing from {value}"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, member) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => check_schema(doc, property, member, &format!("{at}.{name}"))?,
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    return Err(format!("{at}: {name} is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check_schema(doc, schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Asserts that `response` is one the document lists for `method path`,
/// with a JSON body of its schema; returns the body.
async fn documented(doc: &Value, method: &str, path: &str, response: reqwest::Response) -> Value {
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!("{method} {path} answered {status} ({content_type:?}), not JSON: {text}")
    });
    let documented = doc["paths"][path][method]["responses"][status.as_str()].clone();
    assert!(
        !documented.is_null(),
        "{method} {path} answered {status}, which the document does not list: {body}"
    );
    let schema = &resolve(doc, &documented)["content"]["application/json"]["schema"];
    let at = format!("{method} {path} {status}");
    if let Err(why) = check_schema(doc, schema, &body, &at) {
        panic!("{why}");
    }
    body
}

/// Every device endpoint's answers, made by a real signing device, are what
/// the document says: Schemathesis cannot sign, so it sees only refusals.
#[tokio::test]
async fn device_answers_match_their_schemas() {
    use assent_device::verify_challenge;
    use assent_shared::{
        jose::DeviceKey,
        protocol::{
            path, typ, DecisionClaims, DenyReason, EnrollmentClaims, EnrollmentUri, NewKeyClaims,
            ProofClaims, PushChannelClaims, UnenrollClaims, UnmuteClaims, Verdict,
            JOSE_CONTENT_TYPE, PROOF_SCHEME,
        },
    };
    use assent_tests::device::request_binding;

    let (server, client) = assent_tests::server_with_alice().await;
    let doc = document();
    let post = |path: &str, body: String| {
        server
            .http
            .post(server.url(path))
            .header("content-type", JOSE_CONTENT_TYPE)
            .body(body)
            .send()
    };

    // Enrollment (201).
    let link = assent_tests::enrollment_link(&server, assent_tests::ALICE).await;
    let link = EnrollmentUri::parse(&link).unwrap();
    let key = DeviceKey::generate();
    let claims = EnrollmentClaims {
        passkey: None,
        binding: request_binding("POST", &server.url(path::ENROLL)),
        ticket: link.ticket.clone(),
        pin: link.pin.clone(),
        name: "OpenAPI test".into(),
        platform: "test".into(),
        push: None,
    };
    let response = post(path::ENROLL, key.sign(typ::ENROLL, None, true, &claims))
        .await
        .unwrap();
    let enrolled = documented(&doc, "post", path::ENROLL, response).await;
    let device_id = enrolled["device_id"].as_str().unwrap().to_string();
    let server_key: assent_shared::jose::EcPublicJwk =
        serde_json::from_value(enrolled["server_key"].clone()).unwrap();

    // A request, the pending list (200), a "this wasn't me" decision that
    // mutes the user (200 with muted_until), the list while muted, unmute.
    let ack = client.start(&server, assent_tests::ALICE, "openid").await;
    let pending = |key: &DeviceKey| {
        let url = server.url(path::REQUESTS);
        let proof = key.sign(
            typ::PROOF,
            Some(&device_id),
            false,
            &ProofClaims {
                binding: request_binding("GET", &url),
            },
        );
        server
            .http
            .get(url)
            .header("authorization", format!("{PROOF_SCHEME} {proof}"))
            .send()
    };
    let list = documented(&doc, "get", path::REQUESTS, pending(&key).await.unwrap()).await;
    let request_id =
        assent_tests::request_id(server.store(), ack["auth_req_id"].as_str().unwrap()).await;
    let now = assent_server::clock::now_ms() / 1000;
    let challenge = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|jws| {
            verify_challenge(jws.as_str().unwrap(), &server_key, &link.server, now).ok()
        })
        .find(|c| c.claims.request_id == request_id)
        .expect("the request is pending");
    let decision_path = path::decision(&challenge.claims.request_id);
    let binding = request_binding("POST", &server.url(&decision_path));
    let claims = DecisionClaims {
        passkey: None,
        exp: binding.iat + 30,
        binding,
        request_id: challenge.claims.request_id.clone(),
        nonce: challenge.claims.nonce.clone(),
        decision: Verdict::Deny,
        deny_reason: Some(DenyReason::NotMe),
        challenge_hash: challenge.hash(),
        match_code: None,
        user_verification: Vec::new(),
    };
    let body = key.sign(typ::DECISION, Some(&device_id), false, &claims);
    let decided = documented(
        &doc,
        "post",
        "/device/v1/requests/{request_id}/decision",
        post(&decision_path, body).await.unwrap(),
    )
    .await;
    assert!(decided["muted_until"].is_i64(), "{decided}");
    let muted = documented(&doc, "get", path::REQUESTS, pending(&key).await.unwrap()).await;
    assert!(muted["muted_until"].is_i64(), "{muted}");
    let unmute = UnmuteClaims {
        binding: request_binding("POST", &server.url(path::UNMUTE)),
    };
    let body = key.sign(typ::UNMUTE, Some(&device_id), false, &unmute);
    documented(
        &doc,
        "post",
        path::UNMUTE,
        post(path::UNMUTE, body).await.unwrap(),
    )
    .await;

    // The push channel (removed), a key rotation, unenrollment.
    let claims = PushChannelClaims {
        binding: request_binding("POST", &server.url(path::PUSH_CHANNEL)),
        push: None,
    };
    let body = key.sign(typ::PUSH_CHANNEL, Some(&device_id), false, &claims);
    let response = post(path::PUSH_CHANNEL, body).await.unwrap();
    documented(&doc, "post", path::PUSH_CHANNEL, response).await;
    let new_key = DeviceKey::generate();
    let new_key_proof = new_key.sign(
        typ::NEW_KEY,
        None,
        true,
        &NewKeyClaims {
            device_id: device_id.clone(),
            replaces: key.public_jwk().thumbprint(),
            iat: assent_server::clock::now_ms() / 1000,
        },
    );
    let claims = assent_shared::protocol::RotateKeyClaims {
        binding: request_binding("POST", &server.url(path::KEY)),
        new_key_proof,
    };
    let body = key.sign(typ::ROTATE_KEY, Some(&device_id), false, &claims);
    documented(
        &doc,
        "post",
        path::KEY,
        post(path::KEY, body).await.unwrap(),
    )
    .await;
    let claims = UnenrollClaims {
        binding: request_binding("POST", &server.url(path::UNENROLL)),
    };
    let body = new_key.sign(typ::UNENROLL, Some(&device_id), false, &claims);
    documented(
        &doc,
        "post",
        path::UNENROLL,
        post(path::UNENROLL, body).await.unwrap(),
    )
    .await;

    // A request id that is not UTF-8 once percent-decoded is refused in the
    // protocol's JSON like any other refusal (it was axum's plain text).
    let response = post("/device/v1/requests/%FF/decision", "x".into())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let refused = documented(
        &doc,
        "post",
        "/device/v1/requests/{request_id}/decision",
        response,
    )
    .await;
    assert_eq!(refused["error"], "invalid_request", "{refused}");

    // Refusals of each kind, and the push key.
    let response = pending(&new_key).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    documented(&doc, "get", path::REQUESTS, response).await;
    let response = server
        .http
        .get(server.url(path::PUSH_KEY))
        .send()
        .await
        .unwrap();
    documented(&doc, "get", path::PUSH_KEY, response).await;
}
