//! # lynn-smol
//!
//! lynn's server and client over [smol]'s building blocks (async-io, async-task,
//! async-executor, async-channel). Every protocol decision comes from [`lynn_proto`], and
//! what every adapter shares beyond it (handler dispatch, the connection table, metrics)
//! from [`lynn_service`]; this crate moves bytes, runs tasks and sleeps. It does not depend
//! on tokio, and it runs unchanged under `smol::block_on`, `async_std::task::block_on` or a
//! bare [`async_io::block_on`].
//!
//! [smol]: https://docs.rs/smol
//!
//! ## Quick start
//!
//! ```
//! use lynn_smol::{Client, Context, Reply, Server, ServerConfig};
//!
//! async fn echo(ctx: Context) -> Reply {
//!     ctx.reply(ctx.body().clone())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! async_io::block_on(async {
//!     let config = ServerConfig::builder().addr("127.0.0.1:0").build()?;
//!     let server = Server::builder(config).route(1, echo).bind().await?;
//!     let addr = server.local_addr().to_string();
//!     let handle = server.handle();
//!     let run = server.serve();
//!     let talk = async {
//!         let client = Client::connect(addr).await?;
//!         let reply = client.request(1, "hello").await?;
//!         assert_eq!(&reply[..], b"hello");
//!         client.close().await;
//!         handle.shutdown();
//!         Ok::<_, Box<dyn std::error::Error>>(())
//!     };
//!     let (served, talked) = futures_lite::future::zip(run, talk).await;
//!     served?;
//!     talked
//! })
//! # }
//! ```
//!
//! ## How it runs
//!
//! - **Server.** [`Server::serve`] runs the accept loop and one task per connection (tasks
//!   built with async-task, queued by the server itself), and they make progress wherever
//!   the `serve` future is polled. On Linux the server registers its connections with an
//!   epoll instance of its own, edge-triggered, and polls it between batches of tasks (no
//!   `epoll_ctl` per read, as async-io's one-shot registration needs); when idle it sleeps
//!   in async-io's reactor. So no global runtime is needed, and the server behaves the
//!   same under any executor. Each connection task owns its socket and its
//!   [`lynn_proto::Connection`]; its handlers run inside it (up to `max_in_flight` at
//!   once, panics caught), so the request/reply path takes no lock.
//!   Routes are `async fn(Context<S>) -> impl IntoReply`, or, with
//!   [`ServerBuilder::route_sync`] and [`ServerBuilder::fallback_sync`], a synchronous
//!   `fn(&mut SyncContext<S>)` that answers in place while the connection decodes the
//!   message (body borrowed from the receive buffer, reply copied into the send queue, no
//!   allocation): the fastest path, for handlers that never wait.
//! - **Client.** A [`Client`]'s background task (socket, heartbeats, reply matching,
//!   reconnects) must run whether or not the caller polls anything, so it runs on a small
//!   executor of this crate with its own threads (started on first use, at most 4). When
//!   the last `Client` clone is dropped it closes the connection and ends. It is the client
//!   every async adapter shares, [`lynn_service::Client`], on [`SmolRuntime`].
//! - **Sends from elsewhere.** [`ServerHandle`] reaches any connection through its bounded
//!   outbound channel; broadcasts are encoded once and share their bytes.
//!
//! Options, defaults and errors are the core's: [`ServerConfig`], [`ClientConfig`],
//! [`ServerError`], [`ClientError`]. See `docs/adapters.md` in the repository for the
//! behaviour shared with lynn-tokio and lynn-blocking.
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

mod conn_task;
mod context;
mod doorbell;
#[cfg(target_os = "linux")]
mod edge;
mod events;
mod handle;
mod handler;
mod metrics_http;
mod pump;
pub mod runtime;
mod server;
mod spawn;
mod stream;
mod tasks;
#[cfg(test)]
mod test_waker;

pub use runtime::SmolRuntime;

/// A connection to a lynn server over async-io: the shared client
/// ([`lynn_service::Client`]) on [`SmolRuntime`].
pub type Client = lynn_service::Client<SmolRuntime>;
pub use context::{Context, SyncContext};
pub use events::{Responder, ServerEvent, ServerEvents};
pub use handle::ServerHandle;
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
