//! # lynn-smol
//!
//! lynn's server and client over [smol]'s building blocks (async-io, async-executor,
//! async-channel). Every protocol decision comes from [`lynn_proto`]; this crate moves
//! bytes, runs tasks and sleeps. It does not depend on tokio, and it runs unchanged under
//! `smol::block_on`, `async_std::task::block_on` or a bare [`async_io::block_on`].
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
//! - **Server.** [`Server::serve`] runs an executor owned by the server
//!   (`async_executor::Executor`): the accept loop and one task per connection live on it,
//!   and they make progress wherever the `serve` future is polled. So no global runtime is
//!   needed, and the server behaves the same under any executor. Each connection task owns
//!   its socket and its [`lynn_proto::Connection`]; its handlers run inside it (up to
//!   `max_in_flight` at once, panics caught), so the request/reply path takes no lock.
//! - **Client.** A [`Client`]'s background task (socket, heartbeats, reply matching,
//!   reconnects) must run whether or not the caller polls anything, so it runs on a small
//!   executor of this crate with its own threads (started on first use, at most 4). Dropping
//!   the last `Client` clone cancels its task.
//! - **Sends from elsewhere.** [`ServerHandle`] reaches any connection through its bounded
//!   outbound channel; broadcasts are encoded once and share their bytes.
//!
//! Options, defaults and errors are the core's: [`ServerConfig`], [`ClientConfig`],
//! [`ServerError`], [`ClientError`]. See `docs/adapters.md` in the repository for the
//! behaviour shared with lynn-tokio and lynn-blocking.
#![forbid(unsafe_code)]

mod client;
mod client_task;
mod command;
mod conn_task;
mod context;
mod dial;
mod events;
mod handle;
mod handler;
mod metrics_http;
mod pump;
mod seat;
mod server;
mod session;
mod spawn;
mod stream;

pub use client::Client;
pub use context::Context;
pub use events::{Responder, ServerEvent, ServerEvents};
pub use handle::ServerHandle;
pub use server::{Server, ServerBuilder};

pub use lynn_proto;
pub use lynn_proto::{
    ClientConfig, ClientError, CloseReason, ConnectionId, HandlerError, IntoReply, Message,
    Metrics, PeerAddr, Reply, SendToError, ServerConfig, ServerError, Target,
};
