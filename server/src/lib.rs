//! The Assent authorization server as a library: the `assent-server` binary
//! is a thin command-line shell over it, and tests drive it directly.

pub mod ciba;
pub mod cli;
pub mod client_auth;
pub mod clients;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod device;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod oauth_error;
pub mod params;
pub mod push;
pub mod qr;
pub mod secrets;
pub mod server;
pub mod state;
pub mod storage;
pub mod tokens;
pub mod users;
