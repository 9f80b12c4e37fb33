//! Types that cross the wire between the Assent server and its clients.
//!
//! The server, the end-to-end tests, the device clients and the load generator
//! all speak through these types, so a change of shape shows up as a compile
//! error on both sides instead of as a runtime surprise.

pub mod oauth;
