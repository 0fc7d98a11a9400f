//! # lynn-tokio
//!
//! lynn's server and client over tokio: TCP and Unix sockets, wire-compatible with
//! lynn_tcp. Every protocol decision (framing, ordering, heartbeats, timeouts, limits,
//! backpressure, reconnect back-off) comes from [`lynn_proto`], and what every adapter
//! shares beyond it (handler dispatch, the connection table, metrics) from
//! [`lynn_service`]; this crate moves bytes.
//!
//! ## Quick start
//!
//! ```
//! use lynn_tokio::{Client, Context, Reply, Server, ServerConfig};
//!
//! async fn echo(ctx: Context) -> Reply {
//!     let body = ctx.body().clone();
//!     ctx.reply(body)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServerConfig::builder().addr("127.0.0.1:0").build()?;
//! let server = Server::builder(config).route(1, echo).bind().await?;
//! let addr = server.tcp_addr().expect("a TCP listener");
//! let handle = server.handle();
//! let serving = tokio::spawn(server.serve());
//!
//! let client = Client::connect(addr.to_string()).await?;
//! let reply = client.request(1, "hello").await?;
//! assert_eq!(&reply[..], b"hello");
//!
//! client.close().await;
//! handle.shutdown(); // graceful: answers what was accepted, flushes, closes
//! serving.await??;
//! # Ok(())
//! # }
//! ```
//!
//! ## How it runs
//!
//! This crate is tokio's implementation of the runtime trait lynn's shared layer is written
//! over ([`TokioRuntime`]), and names the shared types with it: the server
//! ([`lynn_service::server`]: one task per connection, handlers run inside it, bounded
//! inboxes between connections, admission, graceful shutdown) and the client
//! ([`lynn_service::Client`]: one background task that owns the connection, heartbeats,
//! matches replies, reconnects per the policy).
//!
//! - **Where connections run.** By default each connection's task is spawned on the
//!   runtime that calls `serve`. With [`ServerBuilder::runtime`]`(`[`TokioRuntime::with_workers`]`(n)?)`
//!   they run on `n` threads of the server's own, each with a single-threaded runtime,
//!   handed out in turn: a connection never changes thread, and a busy thread serves its
//!   ready connections in turn (tokio's multi-threaded scheduler, when saturated, leaves
//!   some connections waiting 100+ ms; see `BENCHMARKS.md`). The echo example uses one
//!   worker per CPU.
//! - **Metrics** ([`ServerHandle::metrics`]) carry lynn_tcp's 17 names, types and buckets,
//!   and lynn's own; with `config.metrics_addr` set they are served at `GET /metrics` (see
//!   [`Server::metrics_addr`]).
//!
//! ## The API shared by every adapter
//!
//! lynn-tokio, lynn-smol and lynn-blocking offer the same names with the same meaning;
//! the repository README's "Adapter parity" table lists every feature and option, and
//! says why where one adapter differs.
//!
//! - `Client::send` and `Client::request` wait while the send queue is full;
//!   `Client::try_send` fails at once with `ClientError::QueueFull` (it only waits for
//!   the background task's answer). While disconnected, `send` and `request` wait in the
//!   offline queue (`config.offline_queue` calls; 0 refuses with
//!   `ClientError::Disconnected`) and leave first after reconnecting; a queued request's
//!   timeout starts when it is sent. `Client::metrics` counts the client's connections
//!   with the server's metric names.
//! - `Server::local_addr() -> PeerAddr`, `Server::tcp_addr() -> Option<SocketAddr>` and
//!   `Server::metrics_addr() -> Option<SocketAddr>`. Addresses (`config.addr` of a server
//!   or a client) are `host:port`, or `unix:/path` for a Unix socket.
//! - `ServerBuilder::state` exists only on a builder without state and must come before
//!   `route`, `fallback` and `event_stream` (they are typed by the state); otherwise
//!   `bind` fails with `ServerError::Config` (field `"state"`).
//! - `ServerBuilder::event_stream(capacity)` receives every message for a method without a
//!   route, and replaces any fallback, given before or after it.
//! - Every decision is shared with the other adapters: the protocol's in lynn-proto (client
//!   calls, [`lynn_proto::client_calls`]; socket options, [`lynn_proto::SocketSetting`]),
//!   the rest in lynn-service, the runtime-neutral layer the adapters share (dispatching a
//!   request, [`lynn_service::dispatch`]; the connection table and fanout,
//!   [`lynn_service::switchboard`]; builder rules, [`lynn_service::route_table`]).
#![forbid(unsafe_code)]

pub mod runtime;
mod stream;
mod timer;
mod workers;

pub use runtime::TokioRuntime;

/// A connection to a lynn server over tokio: the shared client ([`lynn_service::Client`])
/// on [`TokioRuntime`]. Its background task runs on the tokio runtime `connect` is called on.
pub type Client = lynn_service::Client<TokioRuntime>;
/// A bound server over tokio, ready to `serve` ([`lynn_service::server::Server`]).
pub type Server<S = ()> = lynn_service::server::Server<S, TokioRuntime>;
/// Collects routes and options for a [`Server`] ([`lynn_service::server::ServerBuilder`]).
pub type ServerBuilder<S = ()> = lynn_service::server::ServerBuilder<S, TokioRuntime>;
pub use lynn_service::server::{
    Context, Responder, ServerEvent, ServerEvents, ServerHandle, SyncContext,
};

/// The protocol crate, re-exported (for the rest of its configs, the codec, ...).
pub use lynn_proto;
// The types of this API that are not this crate's own, so that users name only this crate:
// configs, errors and ids from lynn-proto...
pub use lynn_proto::{
    ClientConfig, ClientError, CloseReason, ConnectionId, Message, PeerAddr, SendToError,
    ServerConfig, ServerError,
};
// ...and the replies, handler results and metrics from lynn-service, the layer every
// adapter shares (users never name it).
/// Configuration files (feature `config`): a [`ServerConfig`] or [`ClientConfig`] from a
/// TOML file and `LYNN_…` environment variables (`config::load("server.toml")`).
#[cfg(feature = "config")]
pub use lynn_service::config;
/// TLS 1.3 and mutual TLS (feature `tls`): [`ServerTls`] for
/// [`ServerBuilder::tls`](lynn_service::server::ServerBuilder::tls), [`ClientTls`] for
/// [`Client::connect_tls`](lynn_service::Client::connect_tls) (see [`lynn_service::tls`]).
#[cfg(feature = "tls")]
pub use lynn_service::tls::{self, ClientTls, HandshakeError, ServerTls, TlsError};
pub use lynn_service::{Fanout, HandlerError, IntoReply, Metrics, Reply, SyncOutcome, Target};
