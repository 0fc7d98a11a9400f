//! lynn-smol under the suite: each server's `serve` future (its accept loop) polled by a
//! thread of its own, its connections and every client's task on smol's global executor
//! (the adapter's default); client calls blocked on with `async_io::block_on`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Timer, block_on};
use bytes::Bytes;
use futures_lite::future;
use lynn_proto::{ClientConfig, ClientError, Message, ServerConfig, ServerError};
use lynn_smol::Metrics;
use lynn_smol::{Client, ClientTls, ServerTls};
use lynn_smol::{Context, Server, ServerBuilder, ServerEvent, ServerEvents, ServerHandle};

use super::background::Background;
use crate::app::{App, Outcome};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::runtimes::TlsRuntime;

/// The smol adapter.
#[derive(Debug)]
pub struct SmolRuntime;

super::handler_glue!(lynn_smol, ServerBuilder);

async fn run(app: App, ctx: Context) -> lynn_smol::Reply {
    let outcome = app.handle(
        ctx.method(),
        ctx.body(),
        &HandlerEffects(ctx.server(), ctx.id()),
    );
    match outcome {
        Outcome::Reply(body) => ctx.reply(body),
        Outcome::ReplyAfter(delay, body) => {
            Timer::after(delay).await;
            ctx.reply(body)
        }
        Outcome::NoReply => lynn_smol::Reply::none(),
    }
}

/// Answers every message of the event stream until the server is gone.
async fn answer_events(app: App, events: ServerEvents) {
    while let Some(event) = events.recv().await {
        if let ServerEvent::Message { ctx, responder } = event {
            responder.reply(ctx.reply(app.event_reply(ctx.body())));
        }
    }
}

impl Runtime for SmolRuntime {
    type Server = SmolServer;
    type Client = SmolClient;

    fn name() -> &'static str {
        "smol"
    }

    fn start_server(config: ServerConfig, app: App) -> Result<SmolServer, ServerError> {
        start_server(Server::builder(config), app)
    }

    fn connect(config: ClientConfig) -> Result<SmolClient, ClientError> {
        block_on(Client::connect_with(config)).map(|client| SmolClient { client })
    }
}

impl TlsRuntime for SmolRuntime {
    const TLS_NAME: &'static str = "smol+tls";

    fn start_tls_server(
        config: ServerConfig,
        app: App,
        tls: ServerTls,
    ) -> Result<SmolServer, ServerError> {
        start_server(Server::builder(config).tls(tls), app)
    }

    fn connect_tls(config: ClientConfig, tls: ClientTls) -> Result<SmolClient, ClientError> {
        block_on(Client::connect_tls(config, tls)).map(|client| SmolClient { client })
    }
}

fn start_server(builder: ServerBuilder, app: App) -> Result<SmolServer, ServerError> {
    let mut builder = with_routes(builder, app);
    if app.events {
        let (with_events, events) = builder.event_stream(64);
        builder = with_events;
        std::thread::Builder::new()
            .name("suite-smol-events".into())
            .spawn(move || block_on(answer_events(app, events)))
            .expect("spawn the event thread");
    }
    let server = block_on(builder.bind())?;
    let addr = server.tcp_addr().expect("a TCP listener");
    let metrics_addr = server.metrics_addr();
    let handle = server.handle();
    let serving = Background::spawn("suite-smol-server", move || block_on(server.serve()));
    Ok(SmolServer {
        addr,
        metrics_addr,
        handle,
        serving: Some(serving),
    })
}

/// A lynn-smol server served by a thread of its own.
pub struct SmolServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    handle: ServerHandle,
    serving: Option<Background>,
}

impl ServerUnderTest for SmolServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    fn metrics(&self) -> Arc<Metrics> {
        self.handle.metrics().clone()
    }

    fn connection_count(&self) -> usize {
        self.handle.connection_count()
    }

    fn broadcast(&self, method: u16, body: Bytes) -> usize {
        self.handle.broadcast(method, body)
    }

    fn stop(mut self) {
        self.handle.shutdown();
        self.serving.take().expect("serving until stopped").join();
    }
}

impl Drop for SmolServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A lynn-smol client whose calls are blocked on.
pub struct SmolClient {
    client: Client,
}

impl ClientUnderTest for SmolClient {
    fn send(&self, method: u16, body: Bytes) -> Result<(), ClientError> {
        block_on(self.client.send(method, body))
    }

    fn try_send(&self, method: u16, body: Bytes) -> Result<(), ClientError> {
        block_on(self.client.try_send(method, body))
    }

    fn request(&self, method: u16, body: Bytes) -> Result<Bytes, ClientError> {
        block_on(self.client.request(method, body))
    }

    fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        block_on(future::or(self.client.recv(), async {
            Timer::after(timeout).await;
            None
        }))
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn metrics(&self) -> &Metrics {
        self.client.metrics()
    }

    fn close(&self) {
        block_on(self.client.close());
    }
}
