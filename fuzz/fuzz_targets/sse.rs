//! The device library's server-sent-events parser
//! (`assent_device::events::EventParser`), driven exactly as
//! `EventStream::next` drives it: every complete event taken out before the
//! next chunk of the response body goes in.
//!
//! Input: byte 0 picks the event size cap (0xFF: the library's
//! `MAX_EVENT_BYTES`; otherwise 1 + its value, so that small inputs reach
//! the cap), byte 1 seeds the chunking, the rest is the stream. Seeds:
//! streams as the server writes them (ids, `request`/`resolved`/`resync`/
//! `revoked` events, keep-alive comments).
//!
//! Checked: the same bytes give the same events, error and last event id
//! whether they arrive whole, byte by byte or in random chunks; and those
//! are what a model gives, that splits the stream into blocks at each blank
//! line and refuses the first block (or unterminated rest) over the cap.
#![no_main]

use assent_device::events::{DeviceEvent, EventParser, MAX_EVENT_BYTES};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<DeviceEvent>,
    /// The stream was refused as carrying an event over the cap.
    too_large: bool,
    last_event_id: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    let [cap, seed, stream @ ..] = data else {
        return;
    };
    let cap = match *cap {
        0xff => MAX_EVENT_BYTES,
        small => 1 + usize::from(small),
    };

    let expected = model(stream, cap);
    for event in &expected.events {
        for text in [Some(&event.kind), event.id.as_ref()].into_iter().flatten() {
            assert!(!text.contains(['\n', '\r']), "{text:?}");
        }
    }

    let whole = drive(cap, std::iter::once(stream));
    assert_eq!(whole, expected, "in one chunk");
    if stream.len() <= 1024 {
        assert_eq!(drive(cap, stream.chunks(1)), expected, "byte by byte");
    }
    assert_eq!(
        drive(cap, random_chunks(stream, *seed)),
        expected,
        "in random chunks"
    );
});

/// What `EventStream::next` does, over `chunks` instead of a response.
fn drive<'a>(cap: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = EventParser::with_max_event_bytes(cap);
    let mut events = Vec::new();
    let mut chunks = chunks.into_iter();
    let too_large = loop {
        match parser.next_event() {
            Ok(Some(event)) => events.push(event),
            Err(e) => {
                assert!(e.to_string().contains("larger than"), "{e}");
                break true;
            }
            Ok(None) => match chunks.next() {
                Some(chunk) => parser.push(chunk),
                None => break false,
            },
        }
    };
    Outcome {
        events,
        too_large,
        last_event_id: parser.last_event_id().map(str::to_string),
    }
}

/// Splits the stream into blocks at each blank line (`\n\n`) and parses
/// each on its own; the first block over the cap, or an unterminated rest
/// that is already over it (a final `\n` may still end it), refuses the
/// stream.
fn model(stream: &[u8], cap: usize) -> Outcome {
    let mut parser = EventParser::with_max_event_bytes(usize::MAX);
    let mut events = Vec::new();
    let mut rest = stream;
    let too_large = loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\n\n") else {
            let pending = rest.len() - usize::from(rest.ends_with(b"\n"));
            break pending > cap;
        };
        if end > cap {
            break true;
        }
        parser.push(&rest[..end + 2]);
        // One block, at most one event: blocks without `event:` give none.
        if let Some(event) = parser.next_event().unwrap() {
            events.push(event);
        }
        assert_eq!(parser.next_event().unwrap(), None);
        rest = &rest[end + 2..];
    };
    Outcome {
        events,
        too_large,
        last_event_id: parser.last_event_id().map(str::to_string),
    }
}

/// `stream` in chunks of 1 to 32 bytes, sizes drawn from `seed`.
fn random_chunks(stream: &[u8], seed: u8) -> impl Iterator<Item = &[u8]> {
    let mut state = u32::from(seed) | 0x100;
    let mut rest = stream;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (1 + state as usize % 32).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}
