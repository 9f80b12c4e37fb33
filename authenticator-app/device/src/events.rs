//! The live event stream (`GET /device/v1/events`, server-sent events).

use std::pin::Pin;

use futures_util::{Stream, StreamExt};

use crate::client::DeviceClientError;

/// One event: `request` (new pending request), `resolved` (decided
/// elsewhere), `resync` (events were missed: fetch the pending list),
/// `revoked` (this device) or `enrolled` (another device of the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub id: Option<String>,
    pub kind: String,
    pub request_id: Option<String>,
    /// On `resolved` events: `approved` or `denied`.
    pub outcome: Option<String>,
    /// On `enrolled` events: the device added to the account (its id is
    /// `request_id`).
    pub device: Option<assent_shared::protocol::EnrolledDevice>,
}

type Bytes = Pin<Box<dyn Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send>>;

/// The largest event (all its lines) the stream buffers.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// An open event stream. Reconnect with [`EventStream::last_event_id`] after
/// it ends to receive what was missed.
pub struct EventStream {
    body: Bytes,
    parser: EventParser,
}

impl EventStream {
    /// Reads events from a response of `GET /device/v1/events`.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            parser: EventParser::new(),
        }
    }

    pub fn last_event_id(&self) -> Option<&str> {
        self.parser.last_event_id()
    }

    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<DeviceEvent>, DeviceClientError> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(Some(event));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.parser.push(&chunk),
                Some(Err(e)) => return Err(DeviceClientError::Unreachable(e.to_string())),
                None => return Ok(None),
            }
        }
    }
}

/// The byte-level half of [`EventStream`], without I/O: chunks of the
/// response body go in ([`EventParser::push`]), events come out
/// ([`EventParser::next_event`]). The stream calls `next_event` until it
/// answers `None` before it pushes the next chunk; the fuzz target `sse`
/// (fuzz/, docs/fuzzing.md) drives it the same way.
#[derive(Debug, Clone)]
pub struct EventParser {
    buffer: Vec<u8>,
    last_event_id: Option<String>,
    max_event_bytes: usize,
}

impl Default for EventParser {
    fn default() -> Self {
        Self::new()
    }
}

impl EventParser {
    /// A parser that refuses events larger than [`MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self::with_max_event_bytes(MAX_EVENT_BYTES)
    }

    /// A parser with another cap than [`MAX_EVENT_BYTES`] (the fuzz target
    /// uses small ones, to reach the cap with small inputs).
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            buffer: Vec::new(),
            last_event_id: None,
            max_event_bytes,
        }
    }

    /// The `id` of the last event that had one.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Appends a chunk of the response body; [`EventParser::next_event`]
    /// checks it.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// Where the first complete event in the buffer ends, if one does.
    fn take_event_end(&self) -> Option<usize> {
        self.buffer.windows(2).position(|w| w == b"\n\n")
    }

    fn too_large(&self) -> DeviceClientError {
        DeviceClientError::Protocol(format!(
            "an event is larger than {} bytes",
            self.max_event_bytes
        ))
    }

    /// Parses one complete event (terminated by a blank line) out of the
    /// buffer; `Ok(None)` until one has arrived.
    ///
    /// Events are a few hundred bytes: a server that sends more than
    /// `max_event_bytes` in one, or more without ending one, is broken or
    /// hostile. Found by the fuzz target `sse`: the cap used to be checked
    /// only on a buffer holding no complete event right after a chunk
    /// arrived, so an event over the cap got through when it arrived in
    /// the same chunk as the blank line that ends it, and was refused when
    /// split across chunks. It now applies to every event however the
    /// bytes are chunked: to each complete one, and to the unfinished rest
    /// (less a final `\n`, which may be half of the blank line to come).
    pub fn next_event(&mut self) -> Result<Option<DeviceEvent>, DeviceClientError> {
        loop {
            // Events end with a blank line; a block is complete UTF-8 text.
            let Some(end) = self.take_event_end() else {
                let pending = self.buffer.len() - usize::from(self.buffer.ends_with(b"\n"));
                if pending > self.max_event_bytes {
                    return Err(self.too_large());
                }
                return Ok(None);
            };
            if end > self.max_event_bytes {
                return Err(self.too_large());
            }
            let block = String::from_utf8_lossy(&self.buffer[..end]).replace('\r', "");
            self.buffer.drain(..end + 2);
            let (mut id, mut kind, mut data) = (None, None, String::new());
            for line in block.lines() {
                if line.starts_with(':') {
                    continue; // keep-alive comment
                }
                let (field, value) = line
                    .split_once(':')
                    .map(|(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)))
                    .unwrap_or((line, ""));
                match field {
                    "id" => id = Some(value.to_string()),
                    "event" => kind = Some(value.to_string()),
                    "data" => {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(value);
                    }
                    _ => {}
                }
            }
            let Some(kind) = kind else { continue };
            if id.is_some() {
                self.last_event_id = id.clone();
            }
            let data = serde_json::from_str::<serde_json::Value>(&data).unwrap_or_default();
            let text = |member: &str| data[member].as_str().map(str::to_string);
            return Ok(Some(DeviceEvent {
                id,
                kind,
                request_id: text("request_id"),
                outcome: text("outcome"),
                device: serde_json::from_value(data["device"].clone()).ok(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event `chunks` give, and whether the cap stopped the stream.
    fn parse<'a>(
        parser: &mut EventParser,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<DeviceEvent>, bool) {
        let mut events = Vec::new();
        let mut chunks = chunks.into_iter();
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Err(_) => return (events, true),
                Ok(None) => match chunks.next() {
                    Some(chunk) => parser.push(chunk),
                    None => return (events, false),
                },
            }
        }
    }

    fn event(request_id: &str) -> Vec<u8> {
        format!("id: 7\nevent: request\ndata: {{\"request_id\":\"{request_id}\"}}\n\n").into_bytes()
    }

    #[test]
    fn events_are_read_however_the_bytes_are_chunked() {
        let mut stream = b":\n\n".to_vec();
        stream.extend(event("r1"));
        stream
            .extend(b"event: resolved\r\ndata: {\"request_id\":\"r2\",\"outcome\":\"denied\"}\n\n");
        for size in [1, 2, 5, stream.len()] {
            let mut parser = EventParser::new();
            let (events, too_large) = parse(&mut parser, stream.chunks(size));
            assert!(!too_large);
            assert_eq!(events.len(), 2, "chunks of {size}");
            assert_eq!(events[0].request_id.as_deref(), Some("r1"));
            assert_eq!(events[1].kind, "resolved");
            assert_eq!(events[1].outcome.as_deref(), Some("denied"));
            assert_eq!(parser.last_event_id(), Some("7"));
        }
    }

    /// The input the fuzz target `sse` failed on (fuzz/corpus/sse/small-cap,
    /// a cap of 64 bytes and two events of 75 and 101), here at the real cap.
    #[test]
    fn an_event_over_the_cap_is_refused_however_it_arrives() {
        let over = event(&"x".repeat(MAX_EVENT_BYTES));
        let mut stream = event("before");
        stream.extend(&over);
        for size in [1000, 4096, stream.len()] {
            let (events, too_large) = parse(&mut EventParser::new(), stream.chunks(size));
            assert!(too_large, "chunks of {size}");
            assert_eq!(
                events.len(),
                1,
                "the event before it is read, chunks of {size}"
            );
        }
        // At the cap exactly, whole or with its blank line split.
        let at_cap = event(&"x".repeat(MAX_EVENT_BYTES - event("").len() + 2));
        assert_eq!(at_cap.len() - 2, MAX_EVENT_BYTES);
        for size in [1000, at_cap.len() - 1, at_cap.len()] {
            let (events, too_large) = parse(&mut EventParser::new(), at_cap.chunks(size));
            assert!(!too_large, "chunks of {size}");
            assert_eq!(events.len(), 1);
        }
        // An unfinished event over the cap is refused before it ends.
        let (_, too_large) = parse(&mut EventParser::new(), [&over[..over.len() - 2]]);
        assert!(too_large);
    }
}
