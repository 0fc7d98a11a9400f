//! [`SimServer`]: lynn's real shared server (`lynn_service::server::Server<(), SimRuntime>`)
//! serving [`App`]'s routes in the simulation, its `serve` a task of the world.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use lynn_proto::{ServerConfig, ServerError};
use lynn_service::Metrics;
use lynn_service::server::{
    Context, Server, ServerBuilder, ServerEvent, ServerEvents, ServerHandle,
};
use lynn_service::{Reply, Runtime};

use super::{SimRuntime, sleep};
use crate::app::{App, Outcome};

crate::runtimes::handler_glue!(lynn_service::server, ServerBuilder<(), SimRuntime>);

/// An async route: [`App::handle`], sleeping in virtual time when asked to.
async fn run(app: App, ctx: Context) -> Reply {
    let outcome = app.handle(
        ctx.method(),
        ctx.body(),
        &HandlerEffects(ctx.server(), ctx.id()),
    );
    match outcome {
        Outcome::Reply(body) => ctx.reply(body),
        Outcome::ReplyAfter(delay, body) => {
            sleep(delay).await;
            ctx.reply(body)
        }
        Outcome::NoReply => Reply::none(),
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

/// How `serve` ended, once it has.
#[derive(Default)]
struct Served {
    result: Option<Result<(), ServerError>>,
    waiter: Option<Waker>,
}

/// A server serving in the simulation. Dropping it starts a shutdown without waiting.
#[derive(Debug)]
pub struct SimServer {
    handle: ServerHandle,
    addr: String,
    served: Arc<Mutex<Served>>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("ended", &self.result.is_some())
            .finish()
    }
}

impl SimServer {
    /// Binds a server with `config` serving `app` (its routes, synchronous routes and, if
    /// asked, an event stream) and spawns its `serve`.
    pub async fn start(config: ServerConfig, app: App) -> Result<SimServer, ServerError> {
        let mut builder = with_routes(Server::<(), SimRuntime>::builder(config), app);
        if app.events {
            let (with_events, events) = builder.event_stream(64);
            builder = with_events;
            SimRuntime.spawn(answer_events(app, events));
        }
        let server = builder.bind().await?;
        let addr = server.local_addr().to_string();
        let handle = server.handle();
        let served = Arc::new(Mutex::new(Served::default()));
        let done = Arc::clone(&served);
        SimRuntime.spawn(async move {
            let result = server.serve().await;
            let mut done = done.lock().unwrap();
            done.result = Some(result);
            if let Some(w) = done.waiter.take() {
                w.wake();
            }
        });
        Ok(SimServer {
            handle,
            addr,
            served,
        })
    }

    /// The address it listens on (`10.0.0.1:20001`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Its handle.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Its metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.handle.metrics().clone()
    }

    /// Waits until `serve` has returned, and returns what it returned.
    pub async fn served(&self) -> Result<(), ServerError> {
        poll_fn(|cx| {
            let mut served = self.served.lock().unwrap();
            match served.result.take() {
                Some(result) => Poll::Ready(result),
                None => {
                    served.waiter = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Shuts down gracefully and waits until serving has ended; panics if `serve` fails.
    pub async fn stop(self) {
        self.handle.shutdown();
        self.served().await.expect("serve returns Ok");
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}
