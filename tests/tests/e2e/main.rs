//! Assent's end-to-end tests: real servers (in this process and as child
//! processes) on fresh SQLite and PostgreSQL databases, real HTTP, real
//! OAuth clients, the headless device and the desktop app.
//!
//! One test binary with a module per area: the harness, the server and the
//! HTTP and WebDriver clients are linked once instead of once per area.
//! Select an area by its module path, e.g. `./scripts/test ciba_flow` or
//! `cargo test -p assent-tests --test e2e device_errors::`.

mod admin_api;
mod apis;
mod auth0_sdks;
#[cfg(target_os = "linux")]
mod authenticator_app;
mod bench_smoke;
mod ciba_flow;
mod cli;
mod concurrency;
mod console_sessions;
mod consoles;
mod delivery_processes;
mod device_errors;
mod device_flow;
mod device_race;
mod errors;
mod faults;
mod housekeeping;
mod http_hygiene;
mod keys;
mod mfa;
mod mfa_sdk;
mod oauth4webapi;
mod openapi;
mod outbound;
mod passwordless;
mod passwordless_delivery;
mod processes;
mod push_delivery;
mod rogue_server;
mod schemathesis;
mod trust;
mod web_authenticator;
