//! The event stream alternative to handlers.

use crate::app::{App, ECHO, UNROUTED};
use crate::raw::RawPeer;
use crate::runtime::{Runtime, ServerUnderTest};
use crate::support::{counter, server_config};

/// With an event stream, a message without a route is delivered to it and answered from
/// it; routed methods still go to their handlers; nothing counts as an unknown method.
pub fn event_stream_gets_unrouted<R: Runtime>() {
    let app = App::with_event_stream();
    let server = R::start_server(server_config().build().unwrap(), app).expect("server");
    let mut peer = RawPeer::connect_for::<R>(server.addr()).unwrap();
    let reply = peer.request(UNROUTED, b"via events").expect("answered");
    assert_eq!(reply.method, UNROUTED);
    assert_eq!(reply.body, app.event_reply(b"via events"), "{}", R::name());
    assert_eq!(peer.request(ECHO, b"routed").unwrap().body, b"routed");
    let reply = peer.request(UNROUTED + 1, b"again").expect("answered");
    assert_eq!(reply.body, app.event_reply(b"again"));
    assert_eq!(counter(&server.metrics(), "lynn_unknown_methods_total"), 0);
    drop(peer);
    server.stop();
}
