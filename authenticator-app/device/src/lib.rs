//! The device side of Assent without any user interface: key handling,
//! enrollment, fetching and verifying challenges, and signed decisions.
//! The headless `assent-device` and the desktop app are both built on it.

pub mod challenge;
pub mod client;
pub mod events;
pub mod state;
pub mod totp;

pub use challenge::{verify_challenge, ChallengeRejected, VerifiedChallenge};
pub use client::{Answer, DeviceClient, DeviceClientError};
pub use state::{Account, StateDir};
