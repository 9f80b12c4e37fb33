//! The Assent authorization server as a library: the `assent-server` binary
//! is a thin command-line shell over it ([`cli`]), and tests drive it
//! directly.
//!
//! # Where things are
//!
//! A request enters in [`http`], which only translates: it extracts and
//! authenticates the caller's input, calls one domain function, and shapes
//! the answer (every error becomes a response in [`http::errors`], the one
//! table from wire code to HTTP status).
//!
//! It is decided in the domain modules, plain Rust over the shared state
//! [`state::Assent`]:
//! - [`ciba`]: starting a back-channel request, polling and refreshing tokens;
//! - [`device`]: the device protocol (enrollment, pending list, signed
//!   decisions, key rotation, the event stream);
//! - [`client_auth`]: who the calling client is; [`tokens`]: minting and
//!   verifying JWTs; [`challenge`]: the server-signed challenge devices show;
//! - [`decision`]: deciding a request from code; [`userinfo`], [`admin`];
//!   [`clients`] and [`users`]: the registration rules the CLI (and any
//!   admin API) applies.
//!
//! It is persisted by [`storage`], one file per aggregate, the only module
//! that knows which database is underneath; and announced to devices by
//! [`delivery`] (the Web Push outbox dispatcher and the live event hub,
//! over [`push`]); operator alerts (mutes) by [`alerts`]; one-time codes
//! and sign-in links for passwordless login by [`messaging`] (e-mail and
//! SMS behind a durable outbox).
//!
//! Underneath them all: [`error`] (the error vocabulary, codes from
//! `assent_shared::error`), [`clock`], [`endpoints`], [`cache`], [`keys`],
//! [`secrets`], [`params`] and [`config`]. [`server`] runs it all; [`cli`]
//! is the operator's command line. No module imports one that imports it
//! back (a unit test checks the layering).

pub mod admin;
pub mod alerts;
pub mod apis;
pub mod approval;
pub mod audit;
pub mod cache;
pub mod challenge;
pub mod ciba;
pub mod cli;
pub mod client_auth;
pub mod clients;
pub mod clock;
pub mod config;
pub mod console;
pub mod decision;
pub mod delivery;
pub mod device;
pub mod endpoints;
pub mod error;
pub mod http;
pub mod issuance;
pub mod kek;
pub mod keys;
pub mod messaging;
pub mod metrics;
pub mod mfa;
pub mod operations;
pub mod outbound;
pub mod params;
pub mod passkeys;
pub mod passwordless;
pub mod push;
pub mod qr;
pub mod revocation;
pub mod secrets;
pub mod server;
pub mod state;
pub mod storage;
pub mod tokens;
pub mod userinfo;
pub mod users;

#[cfg(test)]
mod layering;
