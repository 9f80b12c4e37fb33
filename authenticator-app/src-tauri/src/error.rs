//! Errors as the person holding the device reads them: a stable `kind` the
//! interface can react to, and a sentence in plain words.

use assent_device::DeviceClientError;
use assent_shared::error::DeviceErrorCode;
use serde::{Deserialize, Serialize};

use crate::pin::PinError;

/// What went wrong, in the terms the interface branches on. Serialized in
/// snake_case: these spellings are the window's contract (`ui/app.js`
/// compares `e.kind` with them; `ui_contract` checks that every one it uses
/// exists here). Deserializable so that check can parse the window's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A fault inside the app (a failed task, an unreadable file).
    Internal,
    /// The request is no longer pending here (answered, withdrawn or expired
    /// elsewhere), or it never reached the inbox.
    Gone,
    Expired,
    UnknownAccount,
    /// The server did not answer.
    Unreachable,
    /// The server's key does not match the enrollment link.
    PinMismatch,
    /// Not an enrollment link, or a ticket the server does not accept.
    InvalidLink,
    /// The server answered something the app does not understand.
    Protocol,
    AlreadyAnswered,
    /// The server no longer knows this device.
    Revoked,
    /// The server refused for a reason the app has no words of its own for.
    Server,
    /// The account is in the app already.
    Duplicate,
    /// The account's key could not be stored.
    KeyStore,
    /// The image holds no enrollment QR code.
    NoQr,
    /// Approving (or adding an account) needs the app PIN, or a PIN must be
    /// chosen first.
    PinNeeded,
    /// A new PIN that breaks the rules.
    PinUnacceptable,
    WrongPin,
    /// Too many wrong PINs: PINs are not checked for a while.
    PinPaused,
    /// The request asks for the number the requesting application shows.
    MatchCodeNeeded,
    /// The server says the typed number is not the one shown.
    WrongMatchCode,
    /// The third wrong number denied the request.
    DeniedAfterWrongCodes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Internal,
            format!("Something went wrong inside the app: {e}"),
        )
    }

    pub fn gone() -> Self {
        Self::new(
            ErrorKind::Gone,
            "This request is no longer waiting: it was answered on another device, withdrawn, or it expired.",
        )
    }

    pub fn expired() -> Self {
        Self::new(
            ErrorKind::Expired,
            "This request has expired. If you still want to sign in, start again.",
        )
    }

    pub fn pin_needed() -> Self {
        Self::new(ErrorKind::PinNeeded, "Enter your app PIN to approve.")
    }

    pub fn wrong_match_code(client_name: &str) -> Self {
        Self::new(
            ErrorKind::WrongMatchCode,
            format!(
                "That is not the number {client_name} shows. Check it and type it again; \
                 after three wrong numbers the request is denied."
            ),
        )
    }

    pub fn denied_after_wrong_codes() -> Self {
        Self::new(
            ErrorKind::DeniedAfterWrongCodes,
            "That was the third wrong number, so the request was denied. If you were signing \
             in, start again and type the number shown on that screen.",
        )
    }

    /// Words for a PIN that could not be checked or set.
    pub fn from_pin(e: PinError) -> Self {
        match e {
            PinError::NotSet => Self::new(
                ErrorKind::PinNeeded,
                "Choose an app PIN first: approvals ask for it.",
            ),
            PinError::AlreadySet => Self::new(
                ErrorKind::PinUnacceptable,
                "An app PIN is set already: enter that one.",
            ),
            PinError::Unacceptable(why) => Self::new(ErrorKind::PinUnacceptable, why),
            PinError::Wrong {
                paused_until: Some(until),
                ..
            } => Self::new(
                ErrorKind::PinPaused,
                format!(
                    "Wrong PIN. Too many wrong PINs: try again in {}.",
                    wait_in_words(until - now_secs())
                ),
            ),
            PinError::Wrong {
                attempts_before_pause,
                ..
            } => Self::new(
                ErrorKind::WrongPin,
                match attempts_before_pause {
                    0 => "Wrong PIN. One more wrong PIN pauses PIN entry for a while.".to_string(),
                    n => format!(
                        "Wrong PIN. {n} more wrong PIN{} and PIN entry pauses for a while.",
                        if n == 1 { "" } else { "s" }
                    ),
                },
            ),
            PinError::Paused { until } => Self::new(
                ErrorKind::PinPaused,
                format!(
                    "Too many wrong PINs: try again in {}.",
                    wait_in_words(until - now_secs())
                ),
            ),
            PinError::Storage(why) => Self::internal(why),
        }
    }

    pub fn unknown_account() -> Self {
        Self::new(
            ErrorKind::UnknownAccount,
            "This account is not in the app any more.",
        )
    }

    /// Words for a failed call to `server`.
    pub fn from_device(e: DeviceClientError, server: &str) -> Self {
        let host = host_of(server);
        match e {
            DeviceClientError::Unreachable(_) => Self::new(
                ErrorKind::Unreachable,
                format!("Cannot reach {host}. Check your network connection and try again."),
            ),
            DeviceClientError::PinMismatch => Self::new(
                ErrorKind::PinMismatch,
                format!(
                    "{host} did not prove it is the server named in the enrollment link. \
                     The account was not added: ask your administrator for a new link."
                ),
            ),
            DeviceClientError::Link(_) => Self::new(
                ErrorKind::InvalidLink,
                "This is not an Assent enrollment link (it should start with assent://enroll).",
            ),
            DeviceClientError::Protocol(detail) => Self::new(
                ErrorKind::Protocol,
                format!("{host} gave an answer the app does not understand ({detail})."),
            ),
            DeviceClientError::Server {
                code, description, ..
            } => Self::from_refusal(code, &description, host),
        }
    }

    /// Words for the server's refusal `code`; codes without words of their
    /// own show the server's description.
    fn from_refusal(code: DeviceErrorCode, description: &str, host: &str) -> Self {
        match code {
            DeviceErrorCode::RequestNotPending => Self::new(
                ErrorKind::AlreadyAnswered,
                "This request was already answered, perhaps on another device.",
            ),
            DeviceErrorCode::RequestExpired => Self::expired(),
            DeviceErrorCode::UnknownRequest => Self::gone(),
            DeviceErrorCode::UnknownDevice | DeviceErrorCode::DeviceRevoked => {
                Self::new(ErrorKind::Revoked, device_removed_words(host))
            }
            DeviceErrorCode::InvalidTicket => Self::new(
                ErrorKind::InvalidLink,
                "The server does not recognise this enrollment link. Ask for a new one.",
            ),
            DeviceErrorCode::TicketUsed => Self::new(
                ErrorKind::InvalidLink,
                "This enrollment link was already used. Each link works once: ask for a new one.",
            ),
            DeviceErrorCode::TicketExpired => Self::new(
                ErrorKind::InvalidLink,
                "This enrollment link has expired. Ask for a new one.",
            ),
            DeviceErrorCode::MatchCodeRequired => Self::new(
                ErrorKind::MatchCodeNeeded,
                "Type the number the requesting application shows you, then approve.",
            ),
            DeviceErrorCode::UserBlocked => Self::new(
                ErrorKind::Server,
                format!(
                    "{host} has blocked this account, so approvals from it do not count. \
                     Ask your administrator."
                ),
            ),
            _ => Self::new(ErrorKind::Server, format!("{host} refused: {description}.")),
        }
    }
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `45 seconds`, `2 minutes`, `1 hour`.
fn wait_in_words(secs: i64) -> String {
    let secs = secs.max(1);
    let (n, unit) = match secs {
        0..=89 => (secs, "second"),
        90..=3569 => ((secs + 30) / 60, "minute"),
        _ => ((secs + 1800) / 3600, "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The host (and port) of a server URL, for messages.
pub fn host_of(server: &str) -> &str {
    let rest = server.split_once("://").map(|(_, r)| r).unwrap_or(server);
    rest.split('/').next().unwrap_or(rest)
}

/// What the person reads once the server has removed their device, the same
/// whether the event stream said so or a refused call found out first.
pub fn device_removed_words(host: &str) -> String {
    format!(
        "{host} removed this device, so requests for this account no longer come here. \
         Remove the account from the app; ask your administrator for a new enrollment link \
         if you still need it."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_become_plain_words() {
        let e = AppError::from_device(
            DeviceClientError::Server {
                status: 409,
                code: DeviceErrorCode::RequestNotPending,
                description: "x".into(),
            },
            "https://auth.example.com",
        );
        assert_eq!(e.kind, ErrorKind::AlreadyAnswered);
        let e = AppError::from_device(
            DeviceClientError::Unreachable("connection refused".into()),
            "https://auth.example.com:8443/",
        );
        assert_eq!(e.kind, ErrorKind::Unreachable);
        assert!(e.message.contains("auth.example.com:8443"), "{}", e.message);
    }

    #[test]
    fn codes_without_words_of_their_own_show_the_servers_description() {
        let e = AppError::from_device(
            DeviceClientError::Server {
                status: 400,
                code: DeviceErrorCode::Unrecognized,
                description: "try a newer app".into(),
            },
            "https://auth.example.com",
        );
        assert_eq!(e.kind, ErrorKind::Server);
        assert_eq!(e.message, "auth.example.com refused: try a newer app.");
    }

    #[test]
    fn pin_errors_say_how_many_tries_are_left_and_how_long_to_wait() {
        let e = AppError::from_pin(PinError::Wrong {
            attempts_before_pause: 3,
            paused_until: None,
        });
        assert_eq!(e.kind, ErrorKind::WrongPin);
        assert_eq!(
            e.message,
            "Wrong PIN. 3 more wrong PINs and PIN entry pauses for a while."
        );
        let e = AppError::from_pin(PinError::Paused {
            until: now_secs() + 600,
        });
        assert_eq!(e.kind, ErrorKind::PinPaused);
        assert!(
            e.message.ends_with("try again in 10 minutes."),
            "{}",
            e.message
        );
        assert_eq!(wait_in_words(1), "1 second");
        assert_eq!(wait_in_words(120), "2 minutes");
        assert_eq!(wait_in_words(3600), "1 hour");
    }

    #[test]
    fn kinds_travel_in_snake_case() {
        let e = AppError::new(ErrorKind::UnknownAccount, "gone");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({ "kind": "unknown_account", "message": "gone" })
        );
    }
}
