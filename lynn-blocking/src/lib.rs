//! # lynn-blocking
//!
//! A lynn server and client over `std::net` and threads, for programs with no async
//! runtime. Same protocol, options and names as `lynn-tokio` and `lynn-smol` (see
//! `docs/adapters.md`); every protocol decision comes from [`lynn_proto`], and what every
//! adapter shares beyond it (handler dispatch, the connection table, metrics) from
//! [`lynn_service`].
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
//! returning a [`Reply`], `()`, `Option<Reply>` or a `Result` of those. Shared state comes
//! from [`ServerBuilder::state`] (call it first). Instead of (or besides) handlers,
//! [`ServerBuilder::event_stream`] gives a bounded [`ServerEvents`] iterator of
//! [`ServerEvent`]s: messages for unrouted methods arrive with a [`Responder`].
//!
//! **Synchronous routes.** [`ServerBuilder::route_sync`] and
//! [`ServerBuilder::fallback_sync`] take a `Fn(&mut SyncContext<S>)` returning `()` or
//! `Result<(), E: Display>` ([`SyncOutcome`]), for example
//! `.route_sync(1, |ctx| ctx.reply(ctx.body()))`. They run on the connection's own thread,
//! not on the worker pool: each message is answered in place while the connection decodes
//! it (body borrowed from the receive buffer, reply copied into the send queue), with no
//! pool job and no channel round trip. They are not counted against the pool
//! (`max_concurrent_handlers`) nor in `lynn_requests_in_flight`. Use them for handlers
//! that never block: a slow one stalls its own connection (not the others). Replies still
//! leave in request order: a sync-route message that comes while pooled requests of its
//! connection are in flight is handled on the connection thread as it is dispatched, and
//! its reply waits for theirs. Panics and errors are caught and counted like a pooled
//! handler's.
//!
//! ## Thread model and bounds
//!
//! | thread | how many | what it does |
//! |---|---|---|
//! | acceptor | 1 (the caller of [`Server::serve`]) | accept, admission, spawn connections |
//! | workers | `max_concurrent_handlers`, default 2 × available parallelism | run handlers |
//! | connection | 1 per connection | socket, `lynn_proto::Connection`, writes, sync routes |
//! | reader | 1 per connection | blocking reads, one buffer at a time |
//! | metrics | 1 if `metrics_addr` is set | answers `GET /metrics` |
//! | signal | 1 with [`Server::serve_with_shutdown`] | runs the signal closure |
//!
//! So a server uses `1 + pool + 2 × connections (+2)` threads, and connections are bounded
//! by admission (`max_connections`, `max_connections_per_ip`, rates). A client uses one
//! thread, and shares async-io's reactor thread with every other client of the process.
//!
//! **Why a reader thread.** `std` cannot wait on a socket and a channel at once. The
//! connection thread waits on one channel that carries everything: bytes from the reader,
//! [`Outbound`](lynn_service::Outbound) commands from other threads (sends, broadcasts,
//! close), and handler completions. Every sender is bounded on its own side (the reader
//! sends one read at a time, `outbound_queue` caps commands, `max_in_flight` caps
//! completions), so the channel allocates only for what is queued. Its `recv_timeout` is the core's
//! `poll_timeout()`, so timers fire on time without polling, and any other thread wakes it
//! at once with a send. The cost is one thread per connection (a small stack, asleep in
//! `read`) and one copy of each received chunk from the reader's buffer into the
//! connection's. Reads are gated: the connection thread hands the reader its single
//! buffer only while `wants_read()` is true, so a connection that must not read leaves
//! the bytes in the kernel and TCP pushes back on the peer.
//!
//! **Writes** happen on the connection thread, as one vectored write of the core's queued
//! chunks, with `SO_SNDTIMEO` of 100 ms: only a peer that does not read makes the thread
//! come back to its inputs every 100 ms until the core's write timeout closes it.
//!
//! **Bounded queues.** The connection channel holds at most `outbound_queue` messages
//! (a counter refuses more: [`SendToError::QueueFull`](lynn_proto::SendToError)) + one
//! close + `max_in_flight` completions + one read, so completions never block a worker.
//! The worker pool's queue holds 16 jobs per worker; a full pool makes connection threads
//! wait (backpressure). The event stream and the client's push queue are bounded too; a
//! full event stream makes the connection wait and stop reading, a full push queue does
//! what `push_full` says.
//!
//! ## Behaviour
//!
//! - Per connection, up to `max_in_flight` pooled handlers run at once (synchronous routes
//!   are answered on the connection thread and not counted); replies leave in request
//!   order (the core's `complete`). A handler error or panic (caught) is counted in the
//!   metrics and completes its request with no reply; nothing else is affected.
//! - [`ServerHandle::broadcast`], [`broadcast_group`](ServerHandle::broadcast_group) and
//!   [`fanout`](ServerHandle::fanout) encode once and take the table lock once; a full
//!   recipient is skipped. The request/reply path takes no shared lock.
//! - Graceful shutdown ([`ServerHandle::shutdown`], or the closure given to
//!   [`Server::serve_with_shutdown`], the blocking stand-in for a shutdown future): stop
//!   accepting, close every connection gracefully (accepted requests are answered, output
//!   is flushed), wait up to `shutdown_timeout`, then force the rest closed.
//! - The admission permit of a connection is released however it ends (a drop guard).
//! - `metrics_addr` serves Prometheus text ([`Metrics::http_response`](lynn_service::Metrics)).
//! - Unix sockets: [`ServerBuilder::bind_unix`]; clients connect to `"unix:/path"`.
//!
//! ## Client
//!
//! [`Client::connect`]`(addr)?.request(1, "hi")?` is all a script needs. The client is a
//! cloneable handle over the client every adapter shares ([`lynn_service::Client`] on
//! [`BlockingRuntime`]): its background task runs on a thread of its own over async-io's
//! reactor, and each call blocks the calling thread until the task answers (which is what
//! lets calls return typed errors). Dropping the last clone closes the connection. Pushes
//! are read with [`Client::recv`] / [`Client::recv_timeout`]; beyond `incoming_queue` of
//! them, `push_full` drops the oldest (default), the newest, or stops reading from the
//! server. Heartbeats, request timeouts, reconnect with back-off (each client gets its own
//! jitter seed) and the offline queue are driven by the core's state machines; calls are
//! served while a reconnect attempt dials.
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
mod conn;
mod context;
mod events;
mod handle;
mod io;
mod metrics_http;
mod pool;
pub mod runtime;
mod server;
mod spawn;
mod stream;

pub use client::Client;
pub use context::{Context, SyncContext};
pub use events::{Responder, ServerEvent, ServerEvents};
pub use handle::ServerHandle;
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
pub use lynn_service::{Fanout, HandlerError, IntoReply, Metrics, Reply, SyncOutcome, Target};
