//! The HTTP surface: routing, extraction and response shaping only. Every
//! decision is delegated to the domain modules.

mod admin;
mod authenticator;
mod console;
mod device;
mod discovery;
pub mod errors;
mod events;
mod form;
mod mfa;
mod oauth;
mod passwordless;
pub mod serve;
mod unread_body;
mod userinfo;

use std::{sync::Arc, time::Duration};

use axum::{
    http::{Method, StatusCode},
    response::IntoResponse,
    routing::{get, post, MethodRouter},
    Router,
};
use tower_http::{catch_panic::CatchPanicLayer, timeout::TimeoutLayer, trace::TraceLayer};

pub use form::{RequesterAddr, MAX_BODY_BYTES};

use crate::{error::OAuthError, state::Assent};

/// Handler state: the shared server state plus responses rendered at start-up.
#[derive(Clone)]
pub struct AppState {
    pub assent: Assent,
    pub rendered: Arc<discovery::Rendered>,
}

/// One route of the server: path, the methods it answers, its handlers.
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [Method],
    handler: MethodRouter<AppState>,
}

/// Every route the server has. The router is built from this table and the
/// OpenAPI test compares the table with `openapi.json`, so neither can drift.
pub fn route_table() -> Vec<Route> {
    vec![
        Route {
            path: "/.well-known/openid-configuration",
            methods: &[Method::GET],
            handler: get(discovery::openid_configuration),
        },
        Route {
            path: "/.well-known/jwks.json",
            methods: &[Method::GET],
            handler: get(discovery::jwks),
        },
        Route {
            path: "/bc-authorize",
            methods: &[Method::POST],
            handler: post(oauth::bc_authorize),
        },
        Route {
            path: "/oauth/token",
            methods: &[Method::POST],
            handler: post(oauth::token),
        },
        Route {
            path: "/oauth/revoke",
            methods: &[Method::POST],
            handler: post(oauth::revoke),
        },
        Route {
            path: "/passwordless/start",
            methods: &[Method::POST],
            handler: post(passwordless::start),
        },
        Route {
            path: "/passwordless/link",
            methods: &[Method::GET],
            handler: get(passwordless::follow_link),
        },
        Route {
            path: "/backend-auth/magic-link/send",
            methods: &[Method::POST],
            handler: post(passwordless::send_magic_link),
        },
        Route {
            path: "/backend-auth/magic-link/authenticate",
            methods: &[Method::POST],
            handler: post(passwordless::authenticate_magic_link),
        },
        Route {
            path: "/backend-auth/otp/send",
            methods: &[Method::POST],
            handler: post(passwordless::send_otp),
        },
        Route {
            path: "/backend-auth/otp/authenticate",
            methods: &[Method::POST],
            handler: post(passwordless::authenticate_otp),
        },
        Route {
            path: "/mfa/associate",
            methods: &[Method::POST],
            handler: post(mfa::associate),
        },
        Route {
            path: "/mfa/challenge",
            methods: &[Method::POST],
            handler: post(mfa::challenge),
        },
        Route {
            path: "/mfa/authenticators",
            methods: &[Method::GET],
            handler: get(mfa::list_authenticators),
        },
        Route {
            path: "/mfa/authenticators/{id}",
            methods: &[Method::DELETE],
            handler: axum::routing::delete(mfa::delete_authenticator),
        },
        Route {
            path: "/userinfo",
            methods: &[Method::GET, Method::POST],
            handler: get(userinfo::userinfo).post(userinfo::userinfo),
        },
        Route {
            path: "/device/v1/enroll",
            methods: &[Method::POST],
            handler: post(device::enroll),
        },
        Route {
            path: "/device/v1/passkey-registration",
            methods: &[Method::POST],
            handler: post(device::passkey_registration),
        },
        Route {
            path: "/device/v1/requests",
            methods: &[Method::GET],
            handler: get(device::pending),
        },
        Route {
            path: "/device/v1/requests/{request_id}/decision",
            methods: &[Method::POST],
            handler: post(device::decision),
        },
        Route {
            path: "/device/v1/events",
            methods: &[Method::GET],
            handler: get(events::events),
        },
        Route {
            path: "/device/v1/push-key",
            methods: &[Method::GET],
            handler: get(device::push_key),
        },
        Route {
            path: "/device/v1/push-channel",
            methods: &[Method::POST],
            handler: post(device::push_channel),
        },
        Route {
            path: "/device/v1/key",
            methods: &[Method::POST],
            handler: post(device::rotate_key),
        },
        Route {
            path: "/device/v1/unenroll",
            methods: &[Method::POST],
            handler: post(device::unenroll),
        },
        Route {
            path: "/device/v1/unmute",
            methods: &[Method::POST],
            handler: post(device::unmute),
        },
        Route {
            path: "/clients/{client_id}/logo",
            methods: &[Method::GET],
            handler: get(discovery::client_logo),
        },
        Route {
            path: "/admin/v1/clients",
            methods: &[Method::GET, Method::POST],
            handler: get(admin::list_clients).post(admin::create_client),
        },
        Route {
            path: "/admin/v1/clients/{client_id}",
            methods: &[Method::GET, Method::PATCH, Method::DELETE],
            handler: get(admin::get_client)
                .patch(admin::update_client)
                .delete(admin::delete_client),
        },
        Route {
            path: "/admin/v1/users",
            methods: &[Method::GET, Method::POST],
            handler: get(admin::list_users).post(admin::create_user),
        },
        Route {
            path: "/admin/v1/users/{sub}",
            methods: &[Method::GET, Method::PATCH, Method::DELETE],
            handler: get(admin::get_user)
                .patch(admin::update_user)
                .delete(admin::delete_user),
        },
        Route {
            path: "/admin/v1/devices",
            methods: &[Method::GET],
            handler: get(admin::list_devices),
        },
        Route {
            path: "/admin/v1/devices/{device_id}/revoke",
            methods: &[Method::POST],
            handler: post(admin::revoke_device),
        },
        Route {
            path: "/admin/v1/enrollment-tickets",
            methods: &[Method::POST],
            handler: post(admin::create_ticket),
        },
        Route {
            path: "/admin/v1/requests",
            methods: &[Method::GET],
            handler: get(admin::list_requests),
        },
        Route {
            path: "/admin/v1/requests/feed",
            methods: &[Method::GET],
            handler: get(admin::request_feed),
        },
        Route {
            path: "/admin/v1/admin-tokens",
            methods: &[Method::GET, Method::POST],
            handler: get(admin::list_admin_tokens).post(admin::create_admin_token),
        },
        Route {
            path: "/admin/v1/admin-tokens/{id}",
            methods: &[Method::DELETE],
            handler: axum::routing::delete(admin::delete_admin_token),
        },
        Route {
            path: "/admin/v1/apis",
            methods: &[Method::GET, Method::POST],
            handler: get(admin::list_apis).post(admin::create_api),
        },
        Route {
            path: "/admin/v1/apis/{identifier}",
            methods: &[Method::PATCH, Method::DELETE],
            handler: axum::routing::patch(admin::update_api).delete(admin::delete_api),
        },
        Route {
            path: "/admin/v1/apis/{identifier}/grants/{client_id}",
            methods: &[Method::PUT, Method::DELETE],
            handler: axum::routing::put(admin::grant_api).delete(admin::revoke_api_grant),
        },
        Route {
            path: "/admin/v1/keys",
            methods: &[Method::GET],
            handler: get(admin::list_keys),
        },
        Route {
            path: "/admin/v1/keys/rotate",
            methods: &[Method::POST],
            handler: post(admin::rotate_keys),
        },
        Route {
            path: "/admin/v1/audit",
            methods: &[Method::GET],
            handler: get(admin::audit_log),
        },
        Route {
            path: "/authenticator",
            methods: &[Method::GET],
            handler: get(authenticator::root_redirect),
        },
        Route {
            path: "/authenticator/",
            methods: &[Method::GET],
            handler: get(authenticator::index),
        },
        Route {
            path: "/authenticator/{file}",
            methods: &[Method::GET],
            handler: get(authenticator::file),
        },
        Route {
            path: "/openapi.json",
            methods: &[Method::GET],
            handler: get(discovery::openapi),
        },
        Route {
            path: METRICS_PATH,
            methods: &[Method::GET],
            handler: get(discovery::metrics),
        },
        Route {
            path: "/healthz",
            methods: &[Method::GET],
            handler: get(discovery::healthz),
        },
        Route {
            path: "/readyz",
            methods: &[Method::GET],
            handler: get(discovery::readyz),
        },
    ]
}

/// The complete application.
pub fn router(assent: Assent) -> Router {
    let rendered = Arc::new(discovery::Rendered::new(&assent));
    let state = AppState { assent, rendered };
    let metrics_elsewhere = state.assent.settings.metrics_listen.is_some();
    let mut router = Router::new();
    for route in route_table() {
        if metrics_elsewhere && route.path == METRICS_PATH {
            continue;
        }
        router = router.route(route.path, route.handler);
    }
    router
        .merge(console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(unread_body::drain_unread_body))
        .layer(
            // Spans carry method and path only: query strings and bodies may
            // hold secrets and never reach the logs.
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                tracing::debug_span!("http", method = %request.method(), path = %request.uri().path())
            }),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::custom(|_| OAuthError::server_error().into_response()))
}

const METRICS_PATH: &str = "/metrics";

/// `/metrics` alone, for its own listen address (`metrics_listen`), where a
/// scraper on an internal network reaches it and the public does not.
pub fn metrics_router(assent: Assent) -> Router {
    let rendered = Arc::new(discovery::Rendered::new(&assent));
    Router::new()
        .route(METRICS_PATH, get(discovery::metrics))
        .fallback(not_found)
        .with_state(AppState { assent, rendered })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            OAuthError::server_error().into_response()
        }))
}

async fn not_found() -> OAuthError {
    OAuthError::not_found("no such endpoint")
}

async fn method_not_allowed() -> OAuthError {
    OAuthError::method_not_allowed("method not allowed on this endpoint")
}
