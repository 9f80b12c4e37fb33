//! The web authenticator's files (`/authenticator/`), built into the
//! binary: an installable web app for phones that enrolls a passkey and
//! signs every decision with it (docs/protocol.md, section 5).

use std::sync::LazyLock;

use axum::{
    extract::{rejection::PathRejection, Path},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};

use crate::error::OAuthError;

/// What the app's pages may load and do: only its own files, and requests
/// to its own origin. No inline script or style, no frames, no forms.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
     worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// Revalidation tag: a strong ETag from the file's SHA-256.
    etag: HeaderValue,
}

macro_rules! assets {
    ($( $name:literal => $content_type:literal ),* $(,)?) => {
        [$(
            (
                $name,
                $content_type,
                include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/authenticator/", $name))
                    as &'static [u8],
            ),
        )*]
    };
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    assets![
        "index.html" => "text/html; charset=utf-8",
        "app.js" => "text/javascript; charset=utf-8",
        "protocol.js" => "text/javascript; charset=utf-8",
        "sw.js" => "text/javascript; charset=utf-8",
        "style.css" => "text/css; charset=utf-8",
        "manifest.webmanifest" => "application/manifest+json",
        "icon-192.png" => "image/png",
        "icon-512.png" => "image/png",
        "icon-maskable-512.png" => "image/png",
        "apple-touch-icon.png" => "image/png",
    ]
    .into_iter()
    .map(|(name, content_type, bytes)| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let etag = format!(
            "\"{}\"",
            assent_shared::jose::b64url(&digest.as_ref()[..16])
        );
        Asset {
            name,
            content_type,
            bytes,
            etag: HeaderValue::from_str(&etag).expect("base64url is a valid header value"),
        }
    })
    .collect()
});

/// `GET /authenticator`: the app lives under the trailing slash (its
/// relative links and its service worker's scope need it). Relative, so
/// that a path before it (an issuer behind a prefix) stays.
pub async fn root_redirect() -> Redirect {
    Redirect::permanent("authenticator/")
}

/// `GET /authenticator/`: the app.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /authenticator/{file}`: a file of the app; `enroll` is the app too
/// (the enrollment link, its ticket in the fragment).
pub async fn file(file: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    let Ok(Path(file)) = file else {
        return OAuthError::not_found("no such file of the web authenticator").into_response();
    };
    let name = if file == "enroll" {
        "index.html"
    } else {
        file.as_str()
    };
    serve(name, &headers)
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return OAuthError::not_found("no such file of the web authenticator").into_response();
    };
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == asset.etag)
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, asset.etag.clone());
    // Revalidated on every use: an upgraded server serves its new app at
    // once, and the service worker's update check sees it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
