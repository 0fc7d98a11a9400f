//! A client `Connection` and a server `Connection` talking through in-memory pipes under a
//! simulated clock: the whole drive loop of lynn-proto with no sockets and no runtime.
//!
//! The server routes with a `Router`, answers requests out of order (as concurrent handlers
//! would) and still replies in request order; the client heartbeats through a quiet spell;
//! then the client stops heartbeating and the server evicts it at its idle deadline.
//!
//! Run with `cargo run -p lynn-proto --example in_memory`.

use std::time::Duration;

use bytes::Bytes;
use lynn_proto::router::{Resolved, Router};
use lynn_proto::{Connection, ConnectionConfig, Event, Instant, Request};

/// A handler: plain function from request body to reply body.
type Handler = fn(&[u8]) -> Vec<u8>;

fn upper(body: &[u8]) -> Vec<u8> {
    body.to_ascii_uppercase()
}

fn reverse(body: &[u8]) -> Vec<u8> {
    body.iter().rev().copied().collect()
}

/// One direction of a socket: moves every byte `from` has queued into `to`, as far as `to`
/// is willing to read, with a small "MTU" so frames are split across reads.
fn pump(from: &mut Connection, to: &mut Connection, now: Instant) -> usize {
    let mut moved = 0;
    while from.wants_write() && to.wants_read() {
        let mut chunks = [&[][..]; 16];
        let n = from.transmit_chunks(&mut chunks);
        let wire: Vec<u8> = chunks[..n].concat();
        let take = wire.len().min(7);
        to.handle_bytes(&wire[..take], now);
        from.handle_written(take, now);
        moved += take;
    }
    moved
}

fn main() {
    let start = Instant::now();
    let mut now = start;
    let router: Router<Handler> = Router::builder()
        .route(1, upper as Handler)
        .route(2, reverse as Handler)
        .build()
        .expect("no duplicate routes");

    let mut server_cfg = ConnectionConfig::server();
    server_cfg.idle_timeout = Some(Duration::from_secs(10));
    let mut client_cfg = ConnectionConfig::client();
    client_cfg.heartbeat_interval = Some(Duration::from_secs(3));
    let mut server = Connection::new(server_cfg, now).expect("valid config");
    let mut client = Connection::new(client_cfg, now).expect("valid config");

    // 1. The client sends three requests at once.
    for (method, body) in [(1, "hello"), (2, "lynn"), (1, "sans-io")] {
        client
            .send(method, Bytes::from(body), now)
            .expect("queue has room");
    }
    pump(&mut client, &mut server, now);

    // 2. The server takes its events; "handlers" finish in reverse order.
    let mut requests: Vec<Request> = Vec::new();
    while let Some(event) = server.poll_event() {
        if let Event::Message(req) = event {
            requests.push(req);
        }
    }
    for req in requests.into_iter().rev() {
        let reply = match router.resolve(req.method) {
            Resolved::Route(handler) | Resolved::Fallback(handler) => handler(&req.body),
            _ => Vec::new(),
        };
        server
            .complete(req.id, Some((req.method, reply.into())), now)
            .expect("request in flight");
    }
    pump(&mut server, &mut client, now);

    // 3. The client sees the replies in request order.
    while let Some(event) = client.poll_event() {
        if let Event::Message(reply) = event {
            println!(
                "reply to method {}: {}",
                reply.method,
                String::from_utf8_lossy(&reply.body)
            );
        }
    }

    // 4. A quiet spell: only timers run. Each side sleeps until its own deadline.
    let quiet_until = start + Duration::from_secs(20);
    while now < quiet_until {
        let next = [client.poll_timeout(), server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("both sides have timers");
        now = next.min(quiet_until);
        client.handle_timeout(now);
        server.handle_timeout(now);
        pump(&mut client, &mut server, now);
        while let Some(event) = server.poll_event() {
            println!("t={:>2}s server: {event:?}", (now - start).as_secs());
        }
    }

    // 5. The client goes silent (its heartbeats stop); the server evicts it on time.
    loop {
        now = server.poll_timeout().expect("idle timer armed");
        server.handle_timeout(now);
        if let Some(Event::Closed(reason)) = server.poll_event() {
            let t = (now - start).as_secs();
            println!("t={t:>2}s server closed the connection: {reason}");
            break;
        }
    }
    let stats = server.stats();
    println!(
        "server stats: {} messages, {} heartbeats, {} bytes in, {} bytes out",
        stats.messages_received, stats.heartbeats_received, stats.bytes_received, stats.bytes_sent
    );
}
