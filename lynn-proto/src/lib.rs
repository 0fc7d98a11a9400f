//! # lynn-proto
//!
//! The sans-IO core of lynn: the lynn protocol and nothing else; nothing about sockets,
//! tasks, clocks or sharing between threads. It frames and validates bytes ([`codec`]), runs
//! one peer's state machine ([`Connection`]: events, replies in order, heartbeats,
//! idle/read/write timeouts, backpressure both ways, graceful close; [`inline`] answering
//! in place), admits connections ([`admission`]), resolves method ids to handlers
//! ([`router`]), tracks broadcast groups ([`groups`]), matches a client's replies to its
//! requests ([`PendingRequests`], [`client_calls`]) and paces a client's reconnects
//! ([`reconnect`]). Time is always an argument ([`Instant`]).
//!
//! The wire format is lynn_tcp's v1, byte for byte; see [`codec`].
//!
//! Beside the protocol, as plain data: every option of a server and a client, with one set
//! of names and defaults ([`ServerConfig`], [`ClientConfig`], [`SocketOptions::settings`]);
//! the errors ([`CloseReason`], [`ClientError`], [`ServerError`], ...); a connection's
//! counters ([`ConnectionStats`]); [`SpareBuffers`] (one pair of buffers the connections of
//! a thread take turns using); and ids ([`ConnectionId`], [`RequestId`]).
//!
//! What the runtimes share beyond the protocol (the connection table and fanout, handler
//! dispatch and replies, metrics, admission shared between tasks) is in `lynn-service`; the
//! adapters (`lynn-tokio`, `lynn-smol`, `lynn-blocking`) build on both and only move bytes
//! and sleep. [`docs::embedding`] is the guide for driving the core from a loop of your own.
//!
//! ## The drive loop
//!
//! A runtime owns a socket and a [`Connection`] and loops: feed input, drain events, write
//! output, sleep until the next deadline. The rule that keeps it correct: **after any change,
//! drain every event and all output before waiting again.** Here a client and a server talk
//! through two in-memory "sockets" under a simulated clock:
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use lynn_proto::{Connection, ConnectionConfig, Event, Instant};
//!
//! let mut now = Instant::now(); // the only clock read: by the caller, not the crate
//! let mut server = Connection::new(ConnectionConfig::server(), now).unwrap();
//! let mut client = Connection::new(ConnectionConfig::client(), now).unwrap();
//!
//! /// Moves everything `from` has queued into `to`, as a socket would.
//! fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
//!     while from.wants_write() && to.wants_read() {
//!         let mut chunks = [&[][..]; 8];
//!         let n = from.transmit_chunks(&mut chunks);
//!         let bytes: Vec<u8> = chunks[..n].concat();
//!         to.handle_bytes(&bytes, now);
//!         from.handle_written(bytes.len(), now);
//!     }
//! }
//!
//! client.send(1, Bytes::from_static(b"hello"), now).unwrap();
//! pump(&mut client, &mut server, now);
//!
//! // The server drains its events and answers; the reply leaves in request order.
//! while let Some(event) = server.poll_event() {
//!     if let Event::Message(req) = event {
//!         server.complete(req.id, Some((req.method, req.body)), now).unwrap();
//!     }
//! }
//! pump(&mut server, &mut client, now);
//! match client.poll_event() {
//!     Some(Event::Message(reply)) => assert_eq!(&reply.body[..], b"hello"),
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // Time passes only when the caller says so. After 5 quiet seconds the client frees its
//! // buffers; after 30 s of send silence its heartbeat timer fires...
//! now = client.poll_timeout().unwrap();
//! client.handle_timeout(now);
//! assert_eq!(client.buffer_capacity(), 0);
//! now = client.poll_timeout().unwrap();
//! client.handle_timeout(now);
//! pump(&mut client, &mut server, now);
//! assert_eq!(server.poll_event(), Some(Event::Heartbeat));
//!
//! // ...and a server that hears nothing for its idle timeout closes the connection.
//! now += Duration::from_secs(180);
//! server.handle_timeout(now);
//! assert!(matches!(server.poll_event(), Some(Event::Closed(_))));
//! ```
//!
//! `examples/in_memory.rs` runs the same loop in full, with several requests in flight.
//!
//! ## Configuration files (feature `serde`)
//!
//! With the `serde` feature, [`ServerConfig`], [`ClientConfig`] and every type inside them
//! are `Serialize` and `Deserialize` (lynn-service's `config` feature loads them from TOML
//! and the environment). The conventions:
//!
//! - keys are the Rust field names; enum values are snake_case (`push_full = "drop_oldest"`);
//! - every key may be left out and takes its default (a client's `connection` table starts
//!   from [`ConnectionConfig::client`], a server's from [`ConnectionConfig::server`]); an
//!   unknown key is an error;
//! - durations are human-readable strings: `"30s"`, `"250ms"`, `"3m"`, `"1h 30m"`;
//! - an optional setting (an `Option`) is turned off (`None`) with the string `"off"`
//!   (`idle_timeout = "off"`, `linger = "off"`, `reconnect = "off"`), and serializing writes
//!   `None` as `"off"`, so a written configuration names every key;
//! - a rate (`admission.rate`) is a table with `per_second` and an optional `burst`
//!   (default: `per_second`).
//!
//! The values are not checked while reading: call `validate()` (the loader does).
//!
//! ## Errors
//!
//! A peer that breaks the protocol ends its own connection: [`Event::Closed`] carries a
//! typed [`CloseReason`] (for an invalid frame, a [`DecodeError`] naming the frame, its
//! stream offset and what was wrong). A caller that misuses the API gets an error returned
//! ([`SendError`], [`CompleteError`], [`ConfigError`]) and the connection is unchanged.
#![forbid(unsafe_code)]

pub mod admission;
pub mod client_calls;
pub mod codec;
/// Guides rendered by rustdoc; [`docs::embedding`] drives the core from your own loop.
pub mod docs;
/// Fuzz targets of the core (`fuzz/`), also replayed as ordinary tests.
#[cfg(feature = "arbitrary")]
pub mod fuzzing;
pub mod groups;
pub mod inline;
pub mod reconnect;
pub mod router;
pub mod stats;

mod config;
mod connection;
mod error;
mod frame_budget;
mod id;
mod lazy_deque;
mod pending;
mod runtime;
mod sendq;
#[cfg(feature = "serde")]
mod serde_impl;
mod settings;
mod socket_setting;
mod spare;

pub use codec::{CorrelationId, Frame, FrameKind, Marks};
pub use config::{ConnectionConfig, Linger, Liveness, SendFull};
pub use connection::{Connection, Event, Request, RequestId};
pub use error::{
    CloseReason, CompleteError, ConfigError, DecodeError, DecodeErrorKind, EncodeError, SendError,
};
pub use frame_budget::{FrameBudget, FrameLedger, OverBudget};
pub use id::ConnectionId;
pub use inline::{Inline, InlineMessage};
pub use pending::{Expired, PendingRequests, ReplyMatch};
pub use runtime::{ClientError, Endpoint, Message, PeerAddr, SendToError, ServerError};
pub use settings::{
    ClientConfig, ClientConfigBuilder, PushFull, ServerConfig, ServerConfigBuilder, SocketOptions,
};
pub use socket_setting::SocketSetting;
pub use spare::SpareBuffers;
pub use stats::ConnectionStats;

/// The clock type of the whole crate. Time only ever enters as an argument of this type;
/// nothing in lynn-proto reads a clock.
pub type Instant = std::time::Instant;
