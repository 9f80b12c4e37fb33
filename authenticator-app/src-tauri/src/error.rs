//! Errors as the person holding the device reads them: a stable `kind` the
//! interface can react to, and a sentence in plain words.

use assent_device::DeviceClientError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: &'static str,
    pub message: String,
}

impl AppError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(
            "internal",
            format!("Something went wrong inside the app: {e}"),
        )
    }

    pub fn gone() -> Self {
        Self::new(
            "gone",
            "This request is no longer waiting: it was answered on another device, withdrawn, or it expired.",
        )
    }

    pub fn expired() -> Self {
        Self::new(
            "expired",
            "This request has expired. If you still want to sign in, start again.",
        )
    }

    pub fn unknown_account() -> Self {
        Self::new(
            "unknown_account",
            "This account is not in the app any more.",
        )
    }

    /// Words for a failed call to `server`.
    pub fn from_device(e: DeviceClientError, server: &str) -> Self {
        let host = host_of(server);
        match e {
            DeviceClientError::Unreachable(_) => Self::new(
                "unreachable",
                format!("Cannot reach {host}. Check your network connection and try again."),
            ),
            DeviceClientError::PinMismatch => Self::new(
                "pin_mismatch",
                format!(
                    "{host} did not prove it is the server named in the enrollment link. \
                     The account was not added: ask your administrator for a new link."
                ),
            ),
            DeviceClientError::Link(_) => Self::new(
                "invalid_link",
                "This is not an Assent enrollment link (it should start with assent://enroll).",
            ),
            DeviceClientError::Protocol(detail) => Self::new(
                "protocol",
                format!("{host} gave an answer the app does not understand ({detail})."),
            ),
            DeviceClientError::Server {
                code, description, ..
            } => match code.as_str() {
                "request_not_pending" => Self::new(
                    "already_answered",
                    "This request was already answered, perhaps on another device.",
                ),
                "request_expired" => Self::expired(),
                "unknown_request" => Self::gone(),
                "unknown_device" | "device_revoked" => Self::new(
                    "revoked",
                    format!(
                        "{host} no longer knows this device: it was removed by an administrator. \
                         Remove the account here and enroll again."
                    ),
                ),
                "invalid_ticket" => Self::new(
                    "invalid_link",
                    "The server does not recognise this enrollment link. Ask for a new one.",
                ),
                "ticket_used" => Self::new(
                    "invalid_link",
                    "This enrollment link was already used. Each link works once: ask for a new one.",
                ),
                "ticket_expired" => Self::new(
                    "invalid_link",
                    "This enrollment link has expired. Ask for a new one.",
                ),
                _ => Self::new("server", format!("{host} refused: {description}.")),
            },
        }
    }
}

/// The host (and port) of a server URL, for messages.
pub fn host_of(server: &str) -> &str {
    let rest = server.split_once("://").map(|(_, r)| r).unwrap_or(server);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_become_plain_words() {
        let e = AppError::from_device(
            DeviceClientError::Server {
                status: 409,
                code: "request_not_pending".into(),
                description: "x".into(),
            },
            "https://auth.example.com",
        );
        assert_eq!(e.kind, "already_answered");
        let e = AppError::from_device(
            DeviceClientError::Unreachable("connection refused".into()),
            "https://auth.example.com:8443/",
        );
        assert_eq!(e.kind, "unreachable");
        assert!(e.message.contains("auth.example.com:8443"), "{}", e.message);
    }
}
