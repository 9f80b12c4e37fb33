//! The live event stream (`GET /device/v1/events`, server-sent events).

use std::pin::Pin;

use futures_util::{Stream, StreamExt};

use crate::client::DeviceClientError;

/// One event: `request` (new pending request), `resolved` (decided
/// elsewhere) or `resync` (events were missed: fetch the pending list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub id: Option<String>,
    pub kind: String,
    pub request_id: Option<String>,
    /// On `resolved` events: `approved` or `denied`.
    pub outcome: Option<String>,
}

type Bytes = Pin<Box<dyn Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send>>;

/// The largest event (all its lines) the stream buffers.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// An open event stream. Reconnect with [`EventStream::last_event_id`] after
/// it ends to receive what was missed.
pub struct EventStream {
    body: Bytes,
    buffer: Vec<u8>,
    last_event_id: Option<String>,
}

impl EventStream {
    /// Reads events from a response of `GET /device/v1/events`.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
            last_event_id: None,
        }
    }

    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<DeviceEvent>, DeviceClientError> {
        loop {
            if let Some(event) = self.take_event() {
                return Ok(Some(event));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.buffer.extend_from_slice(&chunk);
                    // Events are a few hundred bytes: a server that sends
                    // more without ending one is broken or hostile.
                    if self.buffer.len() > MAX_EVENT_BYTES && self.take_event_end().is_none() {
                        return Err(DeviceClientError::Protocol(format!(
                            "an event is larger than {MAX_EVENT_BYTES} bytes"
                        )));
                    }
                }
                Some(Err(e)) => return Err(DeviceClientError::Unreachable(e.to_string())),
                None => return Ok(None),
            }
        }
    }

    /// Where the first complete event in the buffer ends, if one does.
    fn take_event_end(&self) -> Option<usize> {
        self.buffer.windows(2).position(|w| w == b"\n\n")
    }

    /// Parses one complete event (terminated by a blank line) out of the buffer.
    fn take_event(&mut self) -> Option<DeviceEvent> {
        loop {
            // Events end with a blank line; a block is complete UTF-8 text.
            let end = self.buffer.windows(2).position(|w| w == b"\n\n")?;
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
            return Some(DeviceEvent {
                id,
                kind,
                request_id: text("request_id"),
                outcome: text("outcome"),
            });
        }
    }
}
