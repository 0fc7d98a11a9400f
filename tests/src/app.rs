//! [`App`]: the handlers every scenario needs, described once, independent of any runtime.
//!
//! A runtime impl routes each method of [`App::routes`] to a handler that calls
//! [`App::handle`] with its own [`Effects`] (the server handle operations a handler uses) and
//! then replies with the [`Outcome`], after sleeping in its own way when asked to.

use std::time::Duration;

use bytes::Bytes;

/// Replies with the request body.
pub const ECHO: u16 = 1;
/// Replies with the payload after a delay: body = delay in ms (u32 LE) + payload.
pub const DELAY: u16 = 2;
/// Joins the group named by the body (UTF-8); replies `joined`.
pub const JOIN: u16 = 3;
/// Pushes the payload to a group: body = name length (1 byte) + name + payload. Replies the
/// recipient count (u64 LE).
pub const TO_GROUP: u16 = 4;
/// Pushes the body to every connection; replies the recipient count (u64 LE).
pub const TO_ALL: u16 = 5;
/// Panics.
pub const PANIC: u16 = 6;
/// Handles the message and sends no reply (lynn_tcp's `new_without_send`).
pub const SILENT: u16 = 7;
/// Like [`ECHO`], through a synchronous route (`route_sync`: answered in place).
pub const SYNC_ECHO: u16 = 11;
/// Like [`TO_ALL`], through a synchronous route.
pub const SYNC_TO_ALL: u16 = 12;
/// Like [`PANIC`], through a synchronous route.
pub const SYNC_PANIC: u16 = 13;
/// The method of every push sent by [`TO_GROUP`], [`TO_ALL`] and [`SYNC_TO_ALL`].
pub const PUSH: u16 = 10;
/// A method no route handles.
pub const UNROUTED: u16 = 99;

/// What a handler asks of its server.
pub trait Effects {
    /// Adds the calling connection to `group`.
    fn join(&self, group: &str) -> bool;
    /// Pushes `body` to every member of `group`; returns the recipient count.
    fn broadcast_group(&self, group: &str, method: u16, body: Bytes) -> usize;
    /// Pushes `body` to every connection; returns the recipient count.
    fn broadcast(&self, method: u16, body: Bytes) -> usize;
}

/// What a handler replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Reply with this body now.
    Reply(Bytes),
    /// Sleep (without blocking other connections' work), then reply with this body.
    ReplyAfter(Duration, Bytes),
    /// Send no reply.
    NoReply,
}

/// The fixed application of the conformance suite.
#[derive(Clone, Copy, Debug, Default)]
pub struct App {
    /// Also take an event stream (`ServerBuilder::event_stream`) and answer every message
    /// without a route from it with [`App::event_reply`]. Off: such messages are unknown
    /// methods.
    pub events: bool,
}

impl App {
    /// The routes, and an event stream answering every other method.
    pub fn with_event_stream() -> App {
        App { events: true }
    }

    /// The reply body, from the event stream, to a message without a route.
    pub fn event_reply(&self, body: &[u8]) -> Bytes {
        let mut out = b"event:".to_vec();
        out.extend_from_slice(body);
        out.into()
    }

    /// The methods with a route; every other method is unknown to the server.
    pub fn routes(&self) -> &'static [u16] {
        &[ECHO, DELAY, JOIN, TO_GROUP, TO_ALL, PANIC, SILENT]
    }

    /// The methods with a synchronous route (`route_sync`), served by [`App::handle_sync`].
    pub fn sync_routes(&self) -> &'static [u16] {
        &[SYNC_ECHO, SYNC_TO_ALL, SYNC_PANIC]
    }

    /// Runs the synchronous handler of `method` on a borrowed body; returns the reply
    /// body. Panics for [`SYNC_PANIC`].
    pub fn handle_sync(&self, method: u16, body: &[u8], effects: &dyn Effects) -> Vec<u8> {
        match method {
            SYNC_ECHO => body.to_vec(),
            SYNC_TO_ALL => {
                let n = effects.broadcast(PUSH, Bytes::copy_from_slice(body));
                count_body(n).to_vec()
            }
            SYNC_PANIC => panic!("the SYNC_PANIC handler panics (expected in tests)"),
            other => panic!("method {other} has no synchronous route"),
        }
    }

    /// Runs the handler of `method`. Panics for [`PANIC`] (and for malformed bodies).
    pub fn handle(&self, method: u16, body: &Bytes, effects: &dyn Effects) -> Outcome {
        match method {
            ECHO => Outcome::Reply(body.clone()),
            DELAY => {
                let ms = u32::from_le_bytes(body[..4].try_into().expect("4-byte delay"));
                Outcome::ReplyAfter(Duration::from_millis(ms.into()), body.slice(4..))
            }
            JOIN => {
                let group = std::str::from_utf8(body).expect("UTF-8 group name");
                let joined = effects.join(group);
                Outcome::Reply(Bytes::from_static(if joined { b"joined" } else { b"no" }))
            }
            TO_GROUP => {
                let len = usize::from(body[0]);
                let group = std::str::from_utf8(&body[1..1 + len]).expect("UTF-8 group name");
                let n = effects.broadcast_group(group, PUSH, body.slice(1 + len..));
                Outcome::Reply(count_body(n))
            }
            TO_ALL => Outcome::Reply(count_body(effects.broadcast(PUSH, body.clone()))),
            PANIC => panic!("the PANIC handler panics (expected in tests)"),
            SILENT => Outcome::NoReply,
            other => panic!("method {other} has no route"),
        }
    }
}

/// The body of a [`DELAY`] request.
pub fn delay_body(delay: Duration, payload: &[u8]) -> Bytes {
    let ms = u32::try_from(delay.as_millis()).expect("delay fits u32 ms");
    let mut out = ms.to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out.into()
}

/// The body of a [`TO_GROUP`] request.
pub fn group_body(group: &str, payload: &[u8]) -> Bytes {
    let mut out = vec![u8::try_from(group.len()).expect("short group name")];
    out.extend_from_slice(group.as_bytes());
    out.extend_from_slice(payload);
    out.into()
}

/// Decodes the recipient count replied by [`TO_GROUP`] and [`TO_ALL`].
pub fn count(reply: &[u8]) -> u64 {
    u64::from_le_bytes(reply.try_into().expect("8-byte count"))
}

fn count_body(n: usize) -> Bytes {
    Bytes::copy_from_slice(&(n as u64).to_le_bytes())
}
