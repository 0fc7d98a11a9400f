//! lynn-blocking under the suite: each server's `serve` on a thread of its own; client
//! calls are already blocking.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lynn_blocking::Metrics;
use lynn_blocking::{Client, ClientTls, ServerTls};
use lynn_blocking::{Context, Server, ServerBuilder, ServerEvent, ServerEvents, ServerHandle};
use lynn_proto::{ClientConfig, ClientError, Message, ServerConfig, ServerError};

use super::background::Background;
use crate::app::{App, Outcome};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::runtimes::TlsRuntime;

/// The blocking adapter: blocking calls and plain-closure handlers over the shared server.
#[derive(Debug)]
pub struct BlockingRuntime;

super::handler_glue!(lynn_blocking, ServerBuilder);

fn run(app: App, ctx: Context) -> lynn_blocking::Reply {
    match app.handle(
        ctx.method(),
        ctx.body(),
        &HandlerEffects(ctx.server(), ctx.id()),
    ) {
        Outcome::Reply(body) => ctx.reply(body),
        Outcome::ReplyAfter(delay, body) => {
            // The handler's own work, on a handler thread (never an executor thread).
            std::thread::sleep(delay);
            ctx.reply(body)
        }
        Outcome::NoReply => lynn_blocking::Reply::none(),
    }
}

/// Answers every message of the event stream until the server is gone.
fn answer_events(app: App, events: &ServerEvents) {
    while let Some(event) = events.recv() {
        if let ServerEvent::Message { ctx, responder } = event {
            responder.reply(ctx.reply(app.event_reply(ctx.body())));
        }
    }
}

impl Runtime for BlockingRuntime {
    type Server = BlockingServer;
    type Client = BlockingClient;

    fn name() -> &'static str {
        "blocking"
    }

    fn start_server(config: ServerConfig, app: App) -> Result<BlockingServer, ServerError> {
        start_server(Server::builder(config), app)
    }

    fn connect(config: ClientConfig) -> Result<BlockingClient, ClientError> {
        Client::connect_with(config).map(|client| BlockingClient { client })
    }
}

impl TlsRuntime for BlockingRuntime {
    const TLS_NAME: &'static str = "blocking+tls";

    fn start_tls_server(
        config: ServerConfig,
        app: App,
        tls: ServerTls,
    ) -> Result<BlockingServer, ServerError> {
        start_server(Server::builder(config).tls(tls), app)
    }

    fn connect_tls(config: ClientConfig, tls: ClientTls) -> Result<BlockingClient, ClientError> {
        Client::connect_tls(config, tls).map(|client| BlockingClient { client })
    }
}

fn start_server(builder: ServerBuilder, app: App) -> Result<BlockingServer, ServerError> {
    let mut builder = with_routes(builder, app);
    if app.events {
        let (with_events, events) = builder.event_stream(64);
        builder = with_events;
        std::thread::Builder::new()
            .name("suite-blocking-events".into())
            .spawn(move || answer_events(app, &events))
            .expect("spawn the event thread");
    }
    let server = builder.bind()?;
    let addr = server.tcp_addr().expect("a TCP listener");
    let metrics_addr = server.metrics_addr();
    let handle = server.handle();
    let serving = Background::spawn("suite-blocking-server", move || server.serve());
    Ok(BlockingServer {
        addr,
        metrics_addr,
        handle,
        serving: Some(serving),
    })
}

/// A lynn-blocking server served by a thread of its own.
pub struct BlockingServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    handle: ServerHandle,
    serving: Option<Background>,
}

impl ServerUnderTest for BlockingServer {
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

impl Drop for BlockingServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A lynn-blocking client.
#[derive(Debug)]
pub struct BlockingClient {
    client: Client,
}

impl ClientUnderTest for BlockingClient {
    fn send(&self, method: u16, body: Bytes) -> Result<(), ClientError> {
        self.client.send(method, body)
    }

    fn try_send(&self, method: u16, body: Bytes) -> Result<(), ClientError> {
        self.client.try_send(method, body)
    }

    fn request(&self, method: u16, body: Bytes) -> Result<Bytes, ClientError> {
        self.client.request(method, body)
    }

    fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        self.client.recv_timeout(timeout).ok()
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn metrics(&self) -> &Metrics {
        self.client.metrics()
    }

    fn close(&self) {
        self.client.close();
    }
}
