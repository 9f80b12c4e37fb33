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

/// The parameters of an OAuth request body: `application/x-www-form-urlencoded`
/// (RFC 6749) or `application/json` (as Auth0's Authentication API also
/// accepts), size capped, with the same rules for both ([`Params`]).
pub struct Form(pub Params);

impl FromRequest<AppState> for Form {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &AppState) -> Result<Self, Self::Rejection> {
        let parse = match body_kind(req.headers()) {
            Some(BodyKind::Form) => Params::parse,
            Some(BodyKind::Json) => Params::parse_json,
            None => return Err(OAuthError::unsupported_media_type(
                "the request body must be application/x-www-form-urlencoded or application/json",
            )),
        };
        let body = read_body(req.into_body(), MAX_BODY_BYTES).await?;
        parse(&body).map(Form)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
}

/// What the `Content-Type` says the body is, if one of the two we read.
pub fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())?
        .trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Some(BodyKind::Form)
    } else if mime.eq_ignore_ascii_case("application/json") {
        Some(BodyKind::Json)
    } else {
        None
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
    body_kind(headers) == Some(BodyKind::Form)
}

/// The address of whoever made the request: the peer, or, behind proxies
/// the operator trusts, the rightmost `X-Forwarded-For` address that is not
/// one of them (entries left of it were written by the caller, who can write
/// anything there).
pub struct RequesterAddr(pub Option<IpAddr>);

impl RequesterAddr {
    /// Where a request that asks the user's devices came from, as the
    /// device shows it: this address and the caller's `User-Agent`.
    pub fn context(&self, headers: &HeaderMap) -> crate::approval::RequesterContext {
        crate::approval::RequesterContext {
            ip: self.0.map(|ip| ip.to_string()),
            user_agent: headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

impl FromRequestParts<AppState> for RequesterAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let settings = &state.assent.settings;
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self(peer.map(|peer| {
            requester_address(
                peer,
                &forwarded,
                settings.trust_x_forwarded_for,
                &settings.trusted_proxies,
            )
        })))
    }
}

/// Walks the chain from the peer leftwards while the hop is trusted: with
/// `one_hop`, the peer is trusted as the one proxy; `networks` trust every
/// hop inside them. An entry that is not an address ends the walk at the
/// hop that wrote it.
pub fn requester_address(
    peer: IpAddr,
    forwarded_for: &str,
    one_hop: bool,
    networks: &[ipnet::IpNet],
) -> IpAddr {
    let trusted = |ip: &IpAddr| networks.iter().any(|n| n.contains(ip));
    let mut chain = forwarded_for
        .rsplit(',')
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let mut current = peer;
    let mut hops_left = usize::from(one_hop);
    loop {
        let trust_this_hop = if trusted(&current) {
            true
        } else if hops_left > 0 {
            hops_left -= 1;
            true
        } else {
            false
        };
        if !trust_this_hop {
            return current;
        }
        match chain.next().map(|entry| entry.parse::<IpAddr>()) {
            Some(Ok(previous)) => current = previous,
            // A trusted proxy wrote garbage, or there is nothing further
            // left: the last address we can vouch for is this hop.
            Some(Err(_)) | None => return current,
        }
    }
}

#[cfg(test)]
mod forwarded_tests {
    use super::requester_address;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_requester() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // Nothing trusted: the header is ignored, whatever it says.
        assert_eq!(
            requester_address(ip("203.0.113.9"), "1.2.3.4", false, &[]),
            ip("203.0.113.9")
        );
        // The caller wrote "1.2.3.4" itself; the trusted proxy appended the
        // address it saw: that one counts.
        assert_eq!(
            requester_address(ip("10.0.0.2"), "1.2.3.4, 198.51.100.7", false, &proxies),
            ip("198.51.100.7")
        );
        // Two trusted proxies in a row.
        assert_eq!(
            requester_address(
                ip("10.0.0.2"),
                "1.2.3.4, 198.51.100.7, 10.0.0.3",
                false,
                &proxies
            ),
            ip("198.51.100.7")
        );
        // A peer outside the trusted networks is the requester.
        assert_eq!(
            requester_address(ip("198.51.100.50"), "1.2.3.4", false, &proxies),
            ip("198.51.100.50")
        );
        // One hop: the peer is the proxy, its entry (the rightmost) counts.
        assert_eq!(
            requester_address(ip("127.0.0.1"), "1.2.3.4, 198.51.100.7", true, &[]),
            ip("198.51.100.7")
        );
        // Garbage or nothing from a trusted proxy: the proxy itself.
        assert_eq!(
            requester_address(ip("10.0.0.2"), "not-an-ip", false, &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            requester_address(ip("10.0.0.2"), "", false, &proxies),
            ip("10.0.0.2")
        );
    }
}
