//! Types and crypto that cross the wire between the Assent server and its
//! clients: the OAuth messages, and the device protocol (`docs/protocol.md`).
//!
//! The server, the device clients, the end-to-end tests and the load
//! generator all use these, so a change of shape is a compile error on both
//! sides instead of a runtime surprise.

pub mod error;
pub mod jose;
pub mod oauth;
pub mod protocol;
pub mod text;
