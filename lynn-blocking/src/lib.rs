//! # lynn-blocking
//!
//! A lynn server and client for programs with no async runtime: every call blocks, and
//! handlers are plain closures. Same protocol, options and names as `lynn-tokio` and
//! `lynn-smol` (see `docs/adapters.md`); every protocol decision comes from
//! [`lynn_proto`], and what every adapter shares beyond it (the server, the client, handler
//! dispatch, the connection table, metrics) from [`lynn_service`].
//!
//! ## Quick start
//!
//! ```
//! use lynn_blocking::{Client, Context, Server, ServerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServerConfig::builder().addr("127.0.0.1:0").build()?;
//! let server = Server::builder(config)
//!     .route(1, |ctx: Context| ctx.reply(ctx.body().clone())) // echo
//!     .bind()?;
//! let addr = server.local_addr().to_string();
//! let handle = server.handle();
//! let running = std::thread::spawn(move || server.serve());
//!
//! let reply = Client::connect(addr)?.request(1, "hi")?;
//! assert_eq!(&reply[..], b"hi");
//!
//! handle.shutdown(); // graceful: answers what was accepted, then `serve` returns
//! running.join().unwrap()?;
//! # Ok(())
//! # }
//! ```
//!
//! Handlers are plain closures `Fn(Context<S>) -> impl IntoReply + Send + Sync + 'static`
//! returning a [`Reply`], `()`, `Option<Reply>` or a `Result` of those; they may block.
//! Shared state comes from [`ServerBuilder::state`] (call it first). Instead of (or
//! besides) handlers, [`ServerBuilder::event_stream`] gives a bounded [`ServerEvents`]
//! iterator of [`ServerEvent`]s: messages for unrouted methods arrive with a
//! [`Responder`].
//!
//! **Synchronous routes.** [`ServerBuilder::route_sync`] and
//! [`ServerBuilder::fallback_sync`] take a `Fn(&mut SyncContext<S>)` returning `()` or
//! `Result<(), E: Display>` ([`SyncOutcome`]), for example
//! `.route_sync(1, |ctx| ctx.reply(ctx.body()))`. They run inside the connection's task,
//! not on a handler thread: each message is answered in place while the connection decodes
//! it (body borrowed from the receive buffer, reply copied into the send queue), with no
//! thread hop. They are not counted against `max_concurrent_handlers` nor in
//! `lynn_system_queue_size`. Use them only for handlers that never block: a slow one
//! holds up an executor thread, and with it the other connections that thread serves.
//! Replies still leave in request order; panics and errors are caught and counted like any
//! handler's.
//!
//! ## How it runs
//!
//! The server is the one every adapter shares ([`lynn_service::server`]: one task per
//! connection that owns its socket and its `lynn_proto::Connection`, bounded inboxes
//! between connections, admission, graceful shutdown), on [`BlockingRuntime`]: async-io's
//! reactor, and executor threads of this crate's own that run the tasks.
//!
//! | thread | how many | what it does |
//! |---|---|---|
//! | acceptor | 1: the caller of [`Server::serve`] | accept loop, admission, shutdown |
//! | executor | one per available CPU, per process: started with the first server or client, kept for the life of the process | every connection's task (reads, writes, timers, synchronous routes), the metrics endpoint, every client's task |
//! | handler | at most `max_concurrent_handlers` (default 2 × available parallelism) busy per server; started on demand by the `blocking` crate's pool (at most 500 in all, `BLOCKING_MAX_THREADS`) and kept for reuse | `route` and `fallback` closures |
//! | async-io | 1 per process | waits on the reactor while no executor thread does |
//! | signal | 1 with [`Server::serve_with_shutdown`] | runs the signal closure |
//!
//! So a connection costs one descriptor (its socket) and one task (its memory: no buffer is
//! held while it is idle), and no thread: the thread count does not grow with
//! connections. Connections are bounded by admission (`max_connections`,
//! `max_connections_per_ip`, rates).
//!
//! **Handlers.** Each `route` or `fallback` closure is wrapped as an async handler of the
//! shared server: its connection's task hands it to a handler thread and carries on with
//! its other messages until it returns, so a blocking handler never holds up an executor
//! thread. Per connection, at most `max_in_flight` requests run at once and replies leave
//! in request order; across the server, at most `max_concurrent_handlers` closures run at
//! once (default 2 × available parallelism) and the others wait their turn (their
//! connections stop reading once `max_in_flight` is reached: backpressure). A handler
//! error or panic is caught, counted in the metrics, and completes its request with no
//! reply; nothing else is affected. Do not block an executor thread (in a synchronous
//! route) on a [`Client`] call: the clients' tasks run on those threads too.
//!
//! **Bounded queues.** Each connection's inbox holds at most `outbound_queue` messages
//! ([`SendToError::QueueFull`](lynn_proto::SendToError) beyond); the event stream and the
//! client's push queue are bounded too: a full event stream makes the connection wait and
//! stop reading, a full push queue does what `push_full` says.
//!
//! ## Behaviour
//!
//! - [`ServerHandle::broadcast`], [`broadcast_group`](ServerHandle::broadcast_group) and
//!   [`fanout`](ServerHandle::fanout) encode once and take the table lock once; a full
//!   recipient is skipped. The request/reply path takes no shared lock.
//! - Graceful shutdown ([`ServerHandle::shutdown`], or the closure given to
//!   [`Server::serve_with_shutdown`], the blocking stand-in for a shutdown future): stop
//!   accepting, close every connection gracefully (accepted requests are answered, output
//!   is flushed), wait up to `shutdown_timeout`, then stop the rest. A handler closure
//!   still running then finishes on its thread; its reply is dropped.
//! - The admission permit of a connection is released however it ends.
//! - `metrics_addr` serves the metrics at `GET /metrics`
//!   ([`MetricsEndpoint`](lynn_service::MetricsEndpoint), on a thread of its own).
//! - Unix sockets: [`ServerBuilder::bind_unix`] (the socket file is removed when `serve`
//!   returns); clients connect to `"unix:/path"`.
//!
//! ## Client
//!
//! [`Client::connect`]`(addr)?.request(1, "hi")?` is all a script needs. The client is a
//! cloneable handle over the client every adapter shares ([`lynn_service::Client`] on
//! [`BlockingRuntime`]): its background task runs on the executor threads, and each call
//! blocks the calling thread until the task answers (which is what lets calls return
//! typed errors). Dropping the last clone closes the connection. Pushes are read with
//! [`Client::recv`] / [`Client::recv_timeout`]; beyond `incoming_queue` of them,
//! `push_full` drops the oldest (default), the newest, or stops reading from the server.
//! Heartbeats, request timeouts, reconnect with back-off (each client gets its own jitter
//! seed) and the offline queue are driven by the core's state machines; calls are served
//! while a reconnect attempt dials.
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
//! - Blocking idiom: calls block instead of returning futures, and
//!   `Server::serve_with_shutdown` takes a closure (run on its own thread; the shutdown
//!   starts when it returns) where the async adapters take a future.
#![forbid(unsafe_code)]

mod client;
mod events;
pub mod runtime;
mod server;

pub use client::Client;
pub use events::{Responder, ServerEvent, ServerEvents};
pub use lynn_service::server::{Context, ServerHandle, SyncContext};
pub use runtime::BlockingRuntime;
pub use server::{Server, ServerBuilder};

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
/// TLS 1.3 and mutual TLS (feature `tls`): [`ServerTls`] for [`ServerBuilder::tls`],
/// [`ClientTls`] for [`Client::connect_tls`] (see [`lynn_service::tls`]).
#[cfg(feature = "tls")]
pub use lynn_service::tls::{self, ClientTls, HandshakeError, ServerTls, TlsError};
pub use lynn_service::{Fanout, HandlerError, IntoReply, Metrics, Reply, SyncOutcome, Target};
