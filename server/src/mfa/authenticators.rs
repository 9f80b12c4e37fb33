//! A user's second factors as the MFA API shows them
//! (`GET /mfa/authenticators`), removes them (`DELETE`), and enrolls new
//! ones (`POST /mfa/associate`): an Assent device through an enrollment
//! link, a TOTP app, or an SMS or e-mail destination.

use serde::Serialize;

use super::{challenge, totp, Caller};
use crate::{
    error::OAuthError,
    messaging::{self, Channel},
    params::Params,
    secrets::{random_bytes, random_token, sha256_hex},
    state::Assent,
    storage::{
        AuthenticatorKind, AuthenticatorRow, ClientRow, NewOobCode, UserRow,
        MAX_AUTHENTICATORS_PER_USER,
    },
};

/// How long an enrollment link of `/mfa/associate` works.
const ENROLLMENT_TTL_SECS: u64 = 600;
/// Devices enrolling through the MFA API are polled for at this interval.
const ENROLLMENT_POLL_SECS: i64 = 5;
/// Where the ids of Assent devices start (the rest is the device's id).
const PUSH_ID_PREFIX: &str = "push|";

/// An authenticator as `GET /mfa/authenticators` lists it (Auth0's shape).
#[derive(Debug, Serialize)]
pub struct AuthenticatorView {
    pub id: String,
    pub authenticator_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub active: bool,
}

/// The id of the recovery code "authenticator" Auth0 lists.
fn recovery_code_id(user_sub: &str) -> String {
    format!("recovery-code|{}", &sha256_hex(user_sub)[..22])
}

/// `GET /mfa/authenticators`: the user's Assent devices, other factors
/// (active or waiting for their first code) and the recovery code.
pub async fn list(assent: &Assent, caller: &Caller) -> Result<Vec<AuthenticatorView>, OAuthError> {
    caller.require("read:authenticators", true)?;
    let user_sub = caller.user_sub();
    let devices = assent.store.devices(Some(user_sub)).await?;
    let mut views: Vec<AuthenticatorView> = devices
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| AuthenticatorView {
            id: format!("{PUSH_ID_PREFIX}{}", d.id),
            authenticator_type: "oob",
            oob_channel: Some("auth0".into()),
            name: Some(d.name),
            active: true,
        })
        .collect();
    views.extend(
        assent
            .store
            .authenticators(user_sub)
            .await?
            .into_iter()
            .map(|a| AuthenticatorView {
                authenticator_type: a.kind.as_str(),
                oob_channel: a.oob_channel,
                name: a.name,
                active: a.active,
                id: a.id,
            }),
    );
    if assent.store.has_recovery_codes(user_sub).await? {
        views.push(AuthenticatorView {
            id: recovery_code_id(user_sub),
            authenticator_type: "recovery-code",
            oob_channel: None,
            name: None,
            active: true,
        });
    }
    Ok(views)
}

/// `DELETE /mfa/authenticators/{id}`: an Assent device is revoked (it
/// stops receiving requests at once), another factor deleted.
pub async fn delete(assent: &Assent, caller: &Caller, id: &str) -> Result<(), OAuthError> {
    caller.require("remove:authenticators", false)?;
    let user_sub = caller.user_sub();
    let removed = match id.strip_prefix(PUSH_ID_PREFIX) {
        Some(device_id) => {
            let owned = assent
                .store
                .device(device_id)
                .await?
                .is_some_and(|d| d.user_sub == user_sub && d.revoked_at.is_none());
            let revoked = owned
                && assent
                    .store
                    .revoke_device(
                        device_id,
                        "removed through the MFA API",
                        assent.clock.now_ms(),
                    )
                    .await?;
            if revoked {
                assent.store.drop_orphaned_recovery_codes(user_sub).await?;
            }
            revoked
        }
        None => assent.store.delete_authenticator(user_sub, id).await?,
    };
    if removed {
        tracing::info!(user = %user_sub, authenticator = id, "MFA authenticator deleted");
        Ok(())
    } else {
        Err(OAuthError::not_found("no such authenticator"))
    }
}

/// What `POST /mfa/associate` answers (Auth0's shape).
#[derive(Debug, Serialize)]
pub struct Association {
    pub authenticator_type: &'static str,
    /// The new authenticator's id (not for a device: it has none until it
    /// enrolls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// TOTP: the secret (base32), for apps that cannot scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// TOTP: the `otpauth://` link; an Assent device: the `assent://enroll`
    /// link. Either is what the QR code shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode_uri: Option<String>,
    /// The QR code of `barcode_uri`, as an SVG document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode_svg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_channel: Option<&'static str>,
    /// Out of band: what the mfa-oob grant takes to complete the login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_code: Option<String>,
    /// `prompt` for a code sent by SMS or e-mail: the user types it in as
    /// the grant's `binding_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding_method: Option<&'static str>,
    /// Only with the user's first factor: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// A list parameter: a JSON array (its JSON text, as the parser keeps it)
/// or space-separated words in a form.
fn list_param(params: &Params, name: &'static str) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map(Some)
            .map_err(|_| OAuthError::invalid_request(format!("{name} must be an array of strings")))
    } else {
        Ok(Some(
            text.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }
}

/// `POST /mfa/associate`. An `mfa_token` may enroll the user's first factor
/// only (Auth0's rule); once the user has one, enrolling another needs an
/// access token of the MFA API with the `enroll` scope.
pub async fn associate(
    assent: &Assent,
    client: &ClientRow,
    caller: &Caller,
    params: &Params,
) -> Result<Association, OAuthError> {
    let types = list_param(params, "authenticator_types")?.ok_or_else(|| {
        OAuthError::invalid_request("missing required parameter authenticator_types")
    })?;
    let channels = list_param(params, "oob_channels")?;
    let user = assent
        .store
        .user(caller.user_sub())
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("the user is blocked"))?;
    let first_factor = !assent.store.has_second_factor(&user.sub).await?;
    match caller {
        Caller::MfaToken(..) if !first_factor => {
            return Err(OAuthError::access_denied(
                "User is already enrolled: adding another authenticator needs an access token \
                 of the MFA API with the enroll scope",
            ))
        }
        Caller::MfaToken(..) => {}
        Caller::AccessToken { .. } => caller.require("enroll", false)?,
    }
    let mut answer = match (types.as_slice(), channels.as_deref()) {
        ([kind], None) if kind == "otp" => associate_totp(assent, client, caller, &user).await?,
        ([kind], Some([channel])) if kind == "oob" && channel == "auth0" => {
            if matches!(caller, Caller::MfaToken(..)) && !assent.settings.mfa_self_enroll_devices {
                return Err(OAuthError::access_denied(
                    "an Assent device also approves back-channel logins, so it joins only after \
                     MFA (an access token of the MFA API with the enroll scope) or from an \
                     operator's enrollment link: enroll another factor first",
                ));
            }
            associate_device(assent, client, caller, &user).await?
        }
        ([kind], Some([channel])) if kind == "oob" && channel == "sms" => {
            let phone = params
                .get("phone_number")
                .map(str::trim)
                .filter(|p| messaging::is_e164(p))
                .ok_or_else(|| {
                    OAuthError::invalid_request(
                        "phone_number must be an E.164 number (+ and 8 to 15 digits) for the \
                         sms channel",
                    )
                })?;
            associate_destination(assent, client, caller, &user, Channel::Sms, phone).await?
        }
        ([kind], Some([channel])) if kind == "oob" && channel == "email" => {
            let email = match params.get("email").map(str::trim) {
                Some(given) => given.to_string(),
                None => user.email.clone().ok_or_else(|| {
                    OAuthError::invalid_request("the user has no e-mail address: give email")
                })?,
            };
            if !messaging::is_email_address(&email) {
                return Err(OAuthError::invalid_request(
                    "email must be an e-mail address for the email channel",
                ));
            }
            associate_destination(assent, client, caller, &user, Channel::Email, &email).await?
        }
        ([kind], _) if kind == "oob" => {
            return Err(OAuthError::invalid_request(
                "oob_channels must be one of [\"auth0\"], [\"sms\"] or [\"email\"]",
            ))
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "authenticator_types must be [\"otp\"] or [\"oob\"] (with oob_channels)",
            ))
        }
    };
    if first_factor {
        answer.recovery_codes = Some(vec![new_recovery_code(assent, &user.sub).await?]);
    }
    tracing::info!(
        user = %user.sub,
        client_id = %client.client_id,
        authenticator_type = answer.authenticator_type,
        oob_channel = answer.oob_channel,
        "MFA authenticator associated"
    );
    Ok(answer)
}

/// A TOTP app: inactive until a first code from it completes a login.
async fn associate_totp(
    assent: &Assent,
    client: &ClientRow,
    caller: &Caller,
    user: &UserRow,
) -> Result<Association, OAuthError> {
    let secret = random_bytes(totp::SECRET_BYTES);
    let id = format!("totp|dev_{}", random_token(12));
    store_authenticator(
        assent,
        &AuthenticatorRow {
            id: id.clone(),
            user_sub: user.sub.clone(),
            kind: AuthenticatorKind::Otp,
            oob_channel: None,
            name: None,
            secret_sealed: Some(assent.keys.seal_secret(&secret, &totp::seal_context(&id))),
            last_step: None,
            active: false,
            created_at: assent.clock.now_ms(),
            address: None,
            pending_token_sha256: caller.mfa_token_sha256().map(str::to_string),
        },
    )
    .await?;
    let encoded = data_encoding::BASE32_NOPAD.encode(&secret);
    let uri = totp::otpauth_uri(&assent.endpoints.issuer, &client.name, user, &encoded);
    Ok(Association {
        authenticator_type: "otp",
        id: Some(id),
        secret: Some(encoded),
        barcode_svg: crate::qr::svg(&uri).ok(),
        barcode_uri: Some(uri),
        oob_channel: None,
        oob_code: None,
        binding_method: None,
        recovery_codes: None,
    })
}

/// An Assent device: the enrollment link the authenticator app opens (or
/// scans), and the `oob_code` that completes the login once the device has
/// enrolled with it.
async fn associate_device(
    assent: &Assent,
    client: &ClientRow,
    caller: &Caller,
    user: &UserRow,
) -> Result<Association, OAuthError> {
    let ticket = crate::admin::enrollment_ticket(assent, &user.sub, ENROLLMENT_TTL_SECS).await?;
    let oob_code = crate::secrets::new_secret();
    let now = assent.clock.now_ms();
    assent
        .store
        .insert_oob_code(&NewOobCode {
            oob_code_sha256: sha256_hex(&oob_code),
            mfa_token_sha256: caller.mfa_token_sha256().map(str::to_string),
            client_id: client.client_id.clone(),
            user_sub: user.sub.clone(),
            authenticator_id: None,
            enrollment_ticket_sha256: Some(ticket.ticket_sha256.clone()),
            binding_code_digest: None,
            poll_interval: ENROLLMENT_POLL_SECS,
            created_at: now,
            expires_at: ticket.expires_at,
        })
        .await?;
    Ok(Association {
        authenticator_type: "oob",
        id: None,
        secret: None,
        barcode_svg: crate::qr::svg(&ticket.enrollment_uri).ok(),
        barcode_uri: Some(ticket.enrollment_uri),
        oob_channel: Some("auth0"),
        oob_code: Some(oob_code),
        binding_method: None,
        recovery_codes: None,
    })
}

/// An SMS or e-mail destination: inactive until the code sent to it comes
/// back as the mfa-oob grant's `binding_code`.
async fn associate_destination(
    assent: &Assent,
    client: &ClientRow,
    caller: &Caller,
    user: &UserRow,
    channel: Channel,
    address: &str,
) -> Result<Association, OAuthError> {
    if !messaging::channel_configured(&assent.settings, channel) {
        return Err(OAuthError::invalid_request(format!(
            "this server is not configured to send {channel} messages"
        )));
    }
    let (prefix, oob_channel) = match channel {
        Channel::Sms => ("sms", "sms"),
        Channel::Email => ("email", "email"),
    };
    let row = AuthenticatorRow {
        id: format!("{prefix}|dev_{}", random_token(12)),
        user_sub: user.sub.clone(),
        kind: AuthenticatorKind::Oob,
        oob_channel: Some(oob_channel.to_string()),
        name: Some(messaging::mask_recipient(address)),
        secret_sealed: None,
        last_step: None,
        active: false,
        created_at: assent.clock.now_ms(),
        address: Some(address.to_string()),
        pending_token_sha256: caller.mfa_token_sha256().map(str::to_string),
    };
    store_authenticator(assent, &row).await?;
    let oob_code = match challenge::send_code(assent, client, caller.mfa_token_sha256(), &row).await
    {
        Ok(oob_code) => oob_code,
        Err(e) => {
            // Nothing was sent (limit, provider): no entry that no code
            // can ever confirm.
            assent
                .store
                .delete_authenticator(&user.sub, &row.id)
                .await?;
            return Err(e);
        }
    };
    Ok(Association {
        authenticator_type: "oob",
        id: Some(row.id),
        secret: None,
        barcode_uri: None,
        barcode_svg: None,
        oob_channel: Some(oob_channel),
        oob_code: Some(oob_code),
        binding_method: Some("prompt"),
        recovery_codes: None,
    })
}

/// Stores a new authenticator, within the per-user limit.
async fn store_authenticator(assent: &Assent, row: &AuthenticatorRow) -> Result<(), OAuthError> {
    if assent.store.insert_authenticator(row).await? {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(format!(
            "a user has at most {MAX_AUTHENTICATORS_PER_USER} authenticators: delete one first"
        )))
    }
}

/// A new recovery code for the user, replacing any other (Auth0 keeps one).
pub(super) async fn new_recovery_code(
    assent: &Assent,
    user_sub: &str,
) -> Result<String, OAuthError> {
    let code = fresh_recovery_code();
    let digest = recovery_digest(&code);
    assent
        .store
        .replace_recovery_codes(user_sub, &[digest], assent.clock.now_ms())
        .await?;
    Ok(code)
}

/// 24 characters of an unambiguous alphabet (32 symbols, so every byte
/// maps without bias): 120 bits, easy to copy.
pub(super) fn fresh_recovery_code() -> String {
    let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes(24)
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

/// A recovery code's digest: plain SHA-256 suffices for 120 random bits
/// (nothing to try against it), and, unlike a keyed digest, survives a
/// change of key-encryption key.
pub(super) fn recovery_digest(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    sha256_hex(&normalized)
}
