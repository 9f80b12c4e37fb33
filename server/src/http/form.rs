//! Extractors that enforce OAuth's input discipline before a handler runs.

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap},
};

use super::AppState;
use crate::{
    error::{OAuthError, OAuthErrorCode},
    params::Params,
};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A form-encoded body: `application/x-www-form-urlencoded` required, size
/// capped, repeated parameters refused.
pub struct Form(pub Params);

impl FromRequest<AppState> for Form {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_form(req.headers()) {
            return Err(OAuthError::unsupported_media_type(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        let body = read_body(req.into_body(), MAX_BODY_BYTES).await?;
        Params::parse(&body).map(Form)
    }
}

/// The whole body, at most `limit` bytes; a larger one is `413 invalid_request`.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, OAuthError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        OAuthError::body_too_large(
            OAuthErrorCode::InvalidRequest,
            "the request body is too large",
        )
    })
}

pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The address of whoever made the request: the peer, or the first
/// `X-Forwarded-For` entry when the operator trusts a proxy in front.
pub struct RequesterAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for RequesterAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.assent.settings.trust_x_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return Ok(Self(forwarded));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(peer))
    }
}
