//! Client logos. The server fetched each logo from where the operator said
//! and serves it itself; the app loads it only from the account's own
//! server (never from a URL of a third party, which would tell that party
//! when the user looks at a request), caps its size, and hands it to the
//! window as a `data:` URL (the window's content policy allows nothing else).

use base64::{engine::general_purpose::STANDARD, Engine};
use futures_util::StreamExt;

use super::{lock, Authenticator, UiEvent};

/// Larger logos are not shown.
const MAX_LOGO_BYTES: usize = 256 * 1024;
/// Raster formats only: an SVG can carry scripts and external references.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

impl Authenticator {
    /// The logo at `uri` as a `data:` URL, if it was fetched and is one we show.
    pub(super) fn logo(&self, uri: Option<&str>) -> Option<String> {
        lock(&self.0.logos).get(uri?).cloned().flatten()
    }

    /// Fetches the logos not seen yet; the window hears when one arrived.
    pub(super) async fn fetch_logos(&self, server: &str, uris: Vec<String>) {
        let mut arrived = false;
        for uri in uris {
            if lock(&self.0.logos).contains_key(&uri) {
                continue;
            }
            let logo = if same_origin(&uri, server) {
                match fetch_image(&uri).await {
                    Ok(logo) => Some(logo),
                    Err(why) => {
                        log::warn!("not showing the logo at {uri}: {why}");
                        None
                    }
                }
            } else {
                log::warn!("not loading the logo at {uri}: it is not on the account's server");
                None
            };
            arrived |= logo.is_some();
            lock(&self.0.logos).insert(uri, logo);
        }
        if arrived {
            self.emit(UiEvent::InboxChanged);
        }
    }
}

/// Scheme, host and port agree.
fn same_origin(uri: &str, server: &str) -> bool {
    match (reqwest::Url::parse(uri), reqwest::Url::parse(server)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

async fn fetch_image(uri: &str) -> Result<String, String> {
    let response = assent_device::client::http_client()
        .get(uri)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the server answered {}", response.status()));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !IMAGE_TYPES.contains(&content_type.as_str()) {
        return Err(format!(
            "{content_type:?} is not an image type the app shows"
        ));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if body.len() + chunk.len() > MAX_LOGO_BYTES {
            return Err(format!("it is larger than {MAX_LOGO_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(format!(
        "data:{content_type};base64,{}",
        STANDARD.encode(body)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_accounts_own_server_is_asked_for_logos() {
        let server = "https://auth.example.com";
        assert!(same_origin(
            "https://auth.example.com/clients/a/logo",
            server
        ));
        assert!(same_origin(
            "https://auth.example.com:443/clients/a/logo",
            "https://auth.example.com/"
        ));
        for other in [
            "http://auth.example.com/clients/a/logo",
            "https://auth.example.com:8443/clients/a/logo",
            "https://cdn.example.com/logo.png",
            "https://auth.example.com.evil.test/logo.png",
            "data:image/png;base64,AAAA",
            "not a url",
        ] {
            assert!(!same_origin(other, server), "{other}");
        }
    }
}
