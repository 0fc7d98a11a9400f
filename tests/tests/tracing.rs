//! What the server logs through `tracing`, captured by a test subscriber: each connection's
//! span carries its id and peer, and its close is an event in that span with the reason as
//! a field. One test per adapter; they share the process's subscriber and tell their
//! connections apart by the peer address.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use lynn_tests::app::{App, ECHO};
use lynn_tests::raw::RawPeer;
use lynn_tests::runtime::{Runtime, ServerUnderTest};
use lynn_tests::runtimes::{BlockingRuntime, SmolRuntime, TokioRuntime};
use lynn_tests::support::{server_config, wait_for};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Fields by name, as text.
type Fields = HashMap<String, String>;

/// An event as captured: its fields, and those of the `connection` span it came in.
#[derive(Clone, Debug)]
struct Captured {
    event: Fields,
    span: Option<Fields>,
}

#[derive(Default)]
struct Visitor(Fields);

impl Visit for Visitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// Records the fields of `connection` spans (in their extensions) and every event with
/// the fields of the connection span it is in.
struct Capture;

fn events() -> &'static Mutex<Vec<Captured>> {
    static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());
    &EVENTS
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "connection" {
            return;
        }
        let mut fields = Visitor::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields.0);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Visitor::default();
        event.record(&mut fields);
        let span = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<Fields>().cloned())
        });
        let captured = Captured {
            event: fields.0,
            span,
        };
        events().lock().unwrap().push(captured);
    }
}

/// Installs the capturing subscriber (at debug level) for the whole process, once.
fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber =
            tracing_subscriber::registry().with(Capture.with_filter(LevelFilter::DEBUG));
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
    });
}

/// The first captured event with `message` whose connection span has peer `peer`.
fn event_of(peer: SocketAddr, message: &str) -> Option<Captured> {
    let peer = peer.to_string();
    let events = events().lock().unwrap();
    events
        .iter()
        .find(|c| {
            c.event.get("message").map(String::as_str) == Some(message)
                && c.span.as_ref().and_then(|s| s.get("peer")) == Some(&peer)
        })
        .cloned()
}

/// A raw peer's request answered, then its hang-up: the close is logged in the connection's
/// span (id and peer), with the reason as a field.
fn connection_span_and_close_reason<R: Runtime>() {
    capture();
    let server = R::start_server(server_config().build().unwrap(), App::default()).unwrap();
    let mut peer = RawPeer::connect(server.addr()).expect("connects");
    let local = peer.stream().local_addr().unwrap();
    assert_eq!(peer.request(ECHO, b"hi").expect("echo").body, b"hi");
    drop(peer);
    let closed = wait_for("the close event", || event_of(local, "connection closed"));
    let span = closed.span.expect("in the connection's span");
    let id: u64 = span["id"].parse().expect("a numeric connection id");
    assert_eq!(
        closed.event["id"],
        id.to_string(),
        "the event names its connection too"
    );
    assert_eq!(closed.event["reason"], "peer_closed");
    assert!(closed.event.contains_key("detail"));
    // Nothing per message at info level or above: only the close, at debug.
    let events = events().lock().unwrap();
    let peer = local.to_string();
    let loud = events.iter().filter(|c| {
        c.span.as_ref().and_then(|s| s.get("peer")) == Some(&peer)
            && !c
                .event
                .get("message")
                .is_some_and(|m| m.starts_with("connection"))
    });
    assert_eq!(loud.count(), 0, "{events:?}");
    drop(events);
    server.stop();
}

#[test]
fn tokio_connection_span_and_close_reason() {
    connection_span_and_close_reason::<TokioRuntime>();
}

#[test]
fn smol_connection_span_and_close_reason() {
    connection_span_and_close_reason::<SmolRuntime>();
}

#[test]
fn blocking_connection_span_and_close_reason() {
    connection_span_and_close_reason::<BlockingRuntime>();
}
