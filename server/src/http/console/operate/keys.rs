//! The signing keys (`/console/keys`): what each is doing, for operators;
//! rotating them, for admins.

use askama::Template;
use axum::{
    extract::{rejection::QueryRejection, Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{done, query_or_default, At, Done, Fields};
use crate::{
    console::Area,
    error::OAuthError,
    http::{
        console::{error_page, page, source, ConsoleUser, Frame},
        AppState, RequesterAddr,
    },
    keys::KeyPurpose,
    operations::Operator,
};

/// The purposes an admin may rotate (the VAPID key is bound to every Web
/// Push subscription), with what they sign.
const PURPOSES: [(KeyPurpose, &str, bool); 3] = [
    (KeyPurpose::IdToken, "ID tokens", true),
    (KeyPurpose::AccessToken, "Access tokens", true),
    (
        KeyPurpose::DeviceChallenge,
        "Challenges shown on devices",
        false,
    ),
];

/// When new keys may start signing, in seconds: late enough for every
/// relying party to have fetched them.
const ACTIVATE_IN: [(u64, &str); 5] = [
    (600, "in 10 minutes"),
    (3600, "in 1 hour"),
    (6 * 3600, "in 6 hours"),
    (24 * 3600, "in 1 day"),
    (7 * 24 * 3600, "in 7 days"),
];

/// A key as the page shows it.
pub struct KeyLine {
    pub kid: String,
    pub purpose: String,
    pub alg: String,
    pub state: &'static str,
    pub signs_from: At,
    pub sealed_by: String,
}

/// A purpose as the rotation form offers it.
pub struct Purpose {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    frame: Frame,
    keys: Vec<KeyLine>,
    notice: Option<&'static str>,
    purposes: Vec<Purpose>,
    activate_in: &'static [(u64, &'static str)],
}

/// `GET /console/keys`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    query: Result<Query<Done>, QueryRejection>,
) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let op = Operator::serving(&state.assent, session.actor(), String::new());
    let mut keys = match op.keys().await {
        Ok(keys) => keys,
        Err(e) => return error_page(e, Some(&session)),
    };
    keys.sort_by(|a, b| {
        (
            &a.row.purpose,
            &a.row.alg,
            b.row.activates_at,
            b.row.created_at,
        )
            .cmp(&(
                &b.row.purpose,
                &b.row.alg,
                a.row.activates_at,
                a.row.created_at,
            ))
    });
    let keys = keys
        .iter()
        .map(|k| KeyLine {
            kid: k.row.kid.clone(),
            purpose: k.row.purpose.clone(),
            alg: k.row.alg.clone(),
            state: k.state,
            // A first-start key signs from its creation.
            signs_from: At::of(if k.row.activates_at == 0 {
                k.row.created_at
            } else {
                k.row.activates_at
            }),
            sealed_by: k.row.kek_id.clone().unwrap_or_else(|| "not sealed".into()),
        })
        .collect();
    page(
        StatusCode::OK,
        &KeysPage {
            frame: Frame::at(&session, "keys"),
            keys,
            notice: query_or_default(query).notice(),
            purposes: PURPOSES
                .iter()
                .map(|&(p, label, checked)| Purpose {
                    value: p.as_str(),
                    label,
                    checked,
                })
                .collect(),
            activate_in: &ACTIVATE_IN,
        },
    )
}

/// The purposes and delay the form asks for.
fn rotation(form: &Fields) -> Result<(Vec<KeyPurpose>, u64), OAuthError> {
    let purposes = form
        .all("purpose")
        .into_iter()
        .map(|p| {
            p.parse::<KeyPurpose>()
                .map_err(|e| OAuthError::invalid_request(format!("Keys: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if purposes.is_empty() {
        return Err(OAuthError::invalid_request(
            "Keys: choose at least one kind of key to rotate",
        ));
    }
    let activate_in = form
        .text("activate_in")
        .parse()
        .ok()
        .filter(|secs| ACTIVATE_IN.iter().any(|(s, _)| s == secs))
        .ok_or_else(|| {
            OAuthError::invalid_request("Start signing: choose one of the times offered")
        })?;
    Ok((purposes, activate_in))
}

/// `POST /console/keys/rotate`: new keys, published now, signing later.
pub async fn rotate(
    State(state): State<AppState>,
    requester: RequesterAddr,
    user: ConsoleUser,
    request: Request,
) -> Response {
    let (session, form): (_, Fields) =
        match user.posted(&state.assent, Area::Administer, request).await {
            Ok(posted) => posted,
            Err(refused) => return refused,
        };
    let op = Operator::serving(&state.assent, session.actor(), source(&requester));
    let rotated = async {
        let (purposes, activate_in) = rotation(&form)?;
        op.rotate_keys(
            state.assent.keys.key_encryption_keys(),
            &purposes,
            activate_in,
        )
        .await
    };
    match rotated.await {
        Ok(_) => done("/console/keys?done=rotated"),
        Err(e) => error_page(e, Some(&session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_form_reads_as_offered() {
        let form = |s: &str| -> Fields { serde_urlencoded::from_str(s).unwrap() };
        let (purposes, secs) =
            rotation(&form("purpose=token&purpose=access&activate_in=600")).unwrap();
        assert_eq!(purposes, [KeyPurpose::IdToken, KeyPurpose::AccessToken]);
        assert_eq!(secs, 600);
        assert!(rotation(&form("activate_in=600")).is_err(), "no purpose");
        assert!(
            rotation(&form("purpose=token&activate_in=5")).is_err(),
            "not offered"
        );
        assert!(rotation(&form("purpose=nonsense&activate_in=600")).is_err());
    }
}
