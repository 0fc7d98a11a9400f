//! lynn-tokio under the suite: servers and client tasks on one shared multi-threaded
//! runtime; the suite's threads block on client calls.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use lynn_proto::{ClientConfig, ClientError, Message, ServerConfig, ServerError};
use lynn_tokio::Metrics;
use lynn_tokio::{Client, ClientTls, ServerTls};
use lynn_tokio::{Context, Server, ServerBuilder, ServerEvent, ServerEvents, ServerHandle};
use tokio::runtime::Runtime as TokioExecutor;
use tokio::task::JoinHandle;

use crate::app::{App, Outcome};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::runtimes::TlsRuntime;
use crate::support::DEADLINE;

/// The tokio adapter.
#[derive(Debug)]
pub struct TokioRuntime;

/// The tokio adapter with its connections on two worker threads
/// (`ServerBuilder::workers(2)`); clients as in [`TokioRuntime`].
#[derive(Debug)]
pub struct TokioWorkersRuntime;

fn executor() -> &'static TokioExecutor {
    static EXECUTOR: OnceLock<TokioExecutor> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("suite-tokio")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

super::handler_glue!(lynn_tokio, ServerBuilder);

async fn run(app: App, ctx: Context) -> lynn_tokio::Reply {
    let effects = HandlerEffects(ctx.server(), ctx.id());
    let outcome = app.handle(ctx.method(), ctx.body(), &effects);
    match outcome {
        Outcome::Reply(body) => ctx.reply(body),
        Outcome::ReplyAfter(delay, body) => {
            tokio::time::sleep(delay).await;
            ctx.reply(body)
        }
        Outcome::NoReply => lynn_tokio::Reply::none(),
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

impl Runtime for TokioRuntime {
    type Server = TokioServer;
    type Client = TokioClient;

    fn name() -> &'static str {
        "tokio"
    }

    fn start_server(config: ServerConfig, app: App) -> Result<TokioServer, ServerError> {
        start_server(Server::builder(config), app)
    }

    fn connect(config: ClientConfig) -> Result<TokioClient, ClientError> {
        connect(config)
    }
}

impl TlsRuntime for TokioRuntime {
    const TLS_NAME: &'static str = "tokio+tls";

    fn start_tls_server(
        config: ServerConfig,
        app: App,
        tls: ServerTls,
    ) -> Result<TokioServer, ServerError> {
        start_server(Server::builder(config).tls(tls), app)
    }

    fn connect_tls(config: ClientConfig, tls: ClientTls) -> Result<TokioClient, ClientError> {
        connect_tls(config, tls)
    }
}

impl Runtime for TokioWorkersRuntime {
    type Server = TokioServer;
    type Client = TokioClient;

    fn name() -> &'static str {
        "tokio-workers"
    }

    fn start_server(config: ServerConfig, app: App) -> Result<TokioServer, ServerError> {
        start_server(workers_builder(config)?, app)
    }

    fn connect(config: ClientConfig) -> Result<TokioClient, ClientError> {
        connect(config)
    }
}

impl TlsRuntime for TokioWorkersRuntime {
    const TLS_NAME: &'static str = "tokio-workers+tls";

    fn start_tls_server(
        config: ServerConfig,
        app: App,
        tls: ServerTls,
    ) -> Result<TokioServer, ServerError> {
        start_server(workers_builder(config)?.tls(tls), app)
    }

    fn connect_tls(config: ClientConfig, tls: ClientTls) -> Result<TokioClient, ClientError> {
        connect_tls(config, tls)
    }
}

/// A builder whose connections run on two worker threads.
fn workers_builder(config: ServerConfig) -> Result<ServerBuilder, ServerError> {
    let rt = lynn_tokio::TokioRuntime::with_workers(2).map_err(ServerError::Io)?;
    Ok(Server::builder(config).runtime(rt))
}

fn start_server(builder: ServerBuilder, app: App) -> Result<TokioServer, ServerError> {
    let mut builder = with_routes(builder, app);
    if app.events {
        let (with_events, events) = builder.event_stream(64);
        builder = with_events;
        executor().spawn(answer_events(app, events));
    }
    let server = executor().block_on(builder.bind())?;
    let addr = server.tcp_addr().expect("a TCP listener");
    let metrics_addr = server.metrics_addr();
    let handle = server.handle();
    let serving = Some(executor().spawn(server.serve()));
    Ok(TokioServer {
        addr,
        metrics_addr,
        handle,
        serving,
    })
}

fn connect(config: ClientConfig) -> Result<TokioClient, ClientError> {
    executor()
        .block_on(Client::connect_with(config))
        .map(|client| TokioClient { client })
}

fn connect_tls(config: ClientConfig, tls: ClientTls) -> Result<TokioClient, ClientError> {
    executor()
        .block_on(Client::connect_tls(config, tls))
        .map(|client| TokioClient { client })
}

/// A lynn-tokio server serving on the shared runtime.
#[derive(Debug)]
pub struct TokioServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    handle: ServerHandle,
    serving: Option<JoinHandle<Result<(), ServerError>>>,
}

impl ServerUnderTest for TokioServer {
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
        let serving = self.serving.take().expect("serving until stopped");
        executor()
            .block_on(async { tokio::time::timeout(DEADLINE, serving).await })
            .expect("the server stops within the deadline")
            .expect("the serve task does not panic")
            .expect("serve returns Ok");
    }
}

impl Drop for TokioServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A lynn-tokio client whose calls block on the shared runtime.
#[derive(Debug)]
pub struct TokioClient {
    client: Client,
}

impl ClientUnderTest for TokioClient {
    fn send(&self, method: u16, body: Bytes) -> Result<(), ClientError> {
        executor().block_on(self.client.send(method, body))
    }

    fn try_send(&self, method: u16, body: Bytes) -> Result<(), ClientError> {
        executor().block_on(self.client.try_send(method, body))
    }

    fn request(&self, method: u16, body: Bytes) -> Result<Bytes, ClientError> {
        executor().block_on(self.client.request(method, body))
    }

    fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        executor()
            .block_on(async { tokio::time::timeout(timeout, self.client.recv()).await })
            .ok()
            .flatten()
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn metrics(&self) -> &Metrics {
        self.client.metrics()
    }

    fn close(&self) {
        executor().block_on(self.client.close());
    }
}
