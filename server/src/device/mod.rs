//! The device protocol, server side (`docs/protocol.md`): enrollment,
//! device-signed requests, pending challenges, decisions and the event
//! stream.
//!
//! [`messages`] verifies what devices send; [`enroll`] issues tickets and
//! enrolls; [`decide`] lists pending challenges and applies decisions (one
//! conditional `UPDATE`, [`crate::storage::Store::decide_on_challenge`]);
//! [`manage`] covers push channels, key rotation and unenrollment;
//! [`events`] opens and replays the live stream.

pub mod decide;
pub mod enroll;
pub mod events;
pub mod manage;
pub mod messages;

use assent_shared::protocol::{self, Policy, MAX_CLOCK_SKEW_SECS, MAX_DECISION_LIFETIME_SECS};

pub use decide::{decide, pending};
pub use enroll::{
    create_enrollment_ticket, enroll, passkey_registration, EnrollmentTicket, TicketError,
    DEFAULT_TICKET_TTL_SECS, MAX_TICKET_TTL_SECS,
};
pub use events::{open_event_stream, EventStream};
pub use manage::{rotate_key, unenroll, unmute, update_push_channel};
pub use messages::proof_from_header;

/// The policy every device is given.
pub fn policy() -> Policy {
    Policy {
        protocol_version: protocol::VERSION,
        max_clock_skew_secs: MAX_CLOCK_SKEW_SECS,
        max_decision_lifetime_secs: MAX_DECISION_LIFETIME_SECS,
        poll_interval_secs: 30,
    }
}
