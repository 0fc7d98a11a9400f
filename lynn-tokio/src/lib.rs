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
//! - **Server.** [`Server::builder`] takes a [`ServerConfig`],
//!   routes (`async fn(Context<S>) -> impl IntoReply`, or with
//!   [`ServerBuilder::route_sync`] a synchronous `fn(&mut SyncContext<S>)` that answers in
//!   place, the fastest path), optional state, a fallback, or an
//!   [event stream](ServerBuilder::event_stream). [`ServerBuilder::bind`] (TCP) or
//!   [`ServerBuilder::bind_unix`] gives a [`Server`]; [`Server::serve`] or
//!   [`Server::serve_with_shutdown`] runs it. A [`ServerHandle`] (also in every
//!   [`Context`]) sends to any connection, broadcasts, manages groups and shuts down.
//! - **One task per connection** owns the socket and its `lynn_proto::Connection`. It reads
//!   only after readiness, straight into the connection's receive buffer (idle connections
//!   hold no buffer), runs that connection's handlers inside itself (up to
//!   `max_in_flight`; replies leave in request order), writes all ready output with one
//!   vectored write, and keeps one timer at the connection's next deadline.
//! - **Where connections run.** By default each connection's task is spawned on the
//!   runtime that calls `serve`. With [`ServerBuilder::workers`]`(n)` they run on `n`
//!   threads of the server's own, each with a single-threaded runtime, handed out in turn:
//!   a connection never changes thread, and a busy thread serves its ready connections in
//!   turn (tokio's multi-threaded scheduler, when saturated, leaves some connections
//!   waiting 100+ ms; see `BENCHMARKS.md`). The echo example uses one worker per CPU.
//! - **Sends between connections** go through a bounded outbound channel per connection.
//!   The registry (id → channel sender) is locked once per direct send or fanout, never
//!   per recipient and never on the request/reply path. A broadcast is encoded once and
//!   its bytes shared; a recipient whose queue is full is skipped, not waited for.
//! - **Admission** (connection limits, per-IP limits, connection rate) is checked once per
//!   accept; the slot is released on every exit path of the connection.
//! - **Shutdown** stops accepting, closes every connection gracefully (requests in flight
//!   are answered and flushed), waits up to `shutdown_timeout`, then drops the rest.
//! - **Client.** [`Client::connect`] / [`Client::connect_with`] make one bounded attempt;
//!   a background task then owns the connection, sends heartbeats, matches replies to
//!   [`Client::request`]s, and reconnects per the policy. When the last handle is dropped
//!   it closes the connection (flushing what was queued) and ends. It is the client every
//!   async adapter shares, [`lynn_service::Client`], on [`TokioRuntime`]. Addresses are `host:port`, or `unix:/path` for a Unix socket.
//! - **Metrics** ([`ServerHandle::metrics`]) use lynn_tcp's names; with
//!   `config.metrics_addr` set they are served at `GET /metrics` (see
//!   [`Server::metrics_addr`]).
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

mod metrics_http;
pub mod runtime;
mod server;
mod stream;
mod timer;

pub use runtime::TokioRuntime;

/// A connection to a lynn server over tokio: the shared client ([`lynn_service::Client`])
/// on [`TokioRuntime`]. Its background task runs on the tokio runtime `connect` is called on.
pub type Client = lynn_service::Client<TokioRuntime>;
pub use server::{
    Context, Responder, Server, ServerBuilder, ServerEvent, ServerEvents, ServerHandle, SyncContext,
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
pub use lynn_service::{Fanout, HandlerError, IntoReply, Metrics, Reply, SyncOutcome, Target};
