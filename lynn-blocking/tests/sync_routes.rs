//! Synchronous routes (`route_sync`, `fallback_sync`): answered in the connection's task,
//! in request order with pooled routes (closures run on handler threads), failures caught
//! and counted, and the server handle usable from inside them.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{DEADLINE, Raw, Running, build, config, frame, wait_until};
use lynn_blocking::{Client, Context, Metrics, Server, SyncContext};

/// Method of the pooled route that blocks until the test releases it.
const SLOW: u16 = 2;

/// State shared by the handlers: a pooled handler that blocks on `release` (after saying
/// so on `started`), and a count of synchronous calls.
struct Gate {
    started: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
    sync_calls: Arc<AtomicUsize>,
}

/// The test's side of a [`Gate`].
struct Control {
    started: Receiver<()>,
    release: Sender<()>,
    sync_calls: Arc<AtomicUsize>,
}

fn gate() -> (Gate, Control) {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let sync_calls = Arc::new(AtomicUsize::new(0));
    let gate = Gate {
        started: Mutex::new(started_tx),
        release: Mutex::new(release_rx),
        sync_calls: Arc::clone(&sync_calls),
    };
    let control = Control {
        started,
        release,
        sync_calls,
    };
    (gate, control)
}

/// The pooled handler for [`SLOW`]: reports that it started, waits to be released (at most
/// [`DEADLINE`]), then echoes.
fn slow(ctx: Context<Gate>) -> lynn_blocking::Reply {
    let gate = ctx.state();
    gate.started.lock().unwrap().send(()).unwrap();
    let released = gate.release.lock().unwrap().recv_timeout(DEADLINE);
    assert!(released.is_ok(), "never released");
    ctx.reply(ctx.body().clone())
}

/// A synchronous echo that counts its calls.
fn counted_echo(ctx: &mut SyncContext<'_, '_, Gate>) {
    ctx.state().sync_calls.fetch_add(1, Ordering::SeqCst);
    ctx.reply(ctx.body());
}

/// Whether no handler is counted in flight.
fn none_in_flight(m: &Metrics) -> bool {
    m.render().contains("\nlynn_system_queue_size 0\n")
}

fn read_body(raw: &mut Raw) -> Vec<u8> {
    raw.read_frame().expect("a reply").body.to_vec()
}

#[test]
fn sync_echo_answers_small_and_64k_bodies() {
    let server = Server::builder(build(config()))
        .route_sync(1, |ctx| ctx.reply(ctx.body()))
        .route_sync(2, |ctx| ctx.reply_with(20, b"other method"))
        .fallback_sync(|ctx| ctx.reply(ctx.body()))
        .bind()
        .unwrap();
    let server = Running::start(server);
    let client = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&client.request(1, "hi").unwrap()[..], b"hi");
    assert_eq!(
        &client.request(9, "via fallback").unwrap()[..],
        b"via fallback"
    );
    let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(&client.request(1, big.clone()).unwrap()[..], &big[..]);

    // Pipelined on a raw socket: several messages per read, and a 64 KiB one spanning
    // several reads (larger than `read_chunk`), all answered in order.
    let mut raw = Raw::connect(&server.addr);
    let mut bytes = Vec::new();
    for i in 0u32..50 {
        bytes.extend(frame(1, &i.to_le_bytes()));
    }
    bytes.extend(frame(1, &big));
    bytes.extend(frame(2, b""));
    bytes.extend(frame(1, b"last"));
    let mut writer = raw.stream.try_clone().unwrap();
    let w = std::thread::spawn(move || std::io::Write::write_all(&mut writer, &bytes));
    for i in 0u32..50 {
        assert_eq!(read_body(&mut raw), i.to_le_bytes(), "reply {i}");
    }
    assert_eq!(read_body(&mut raw), big);
    let f = raw.read_frame().unwrap();
    assert_eq!((f.method, &f.body[..]), (20, &b"other method"[..]));
    assert_eq!(read_body(&mut raw), b"last");
    w.join().unwrap().unwrap();

    let m = server.handle.metrics();
    assert_eq!(m.handler_failures(), (0, 0));
    assert!(none_in_flight(m), "{}", m.render());
    server.stop();
}

#[test]
fn sync_replies_keep_request_order_behind_a_pooled_request() {
    let (gate, control) = gate();
    let server = Server::builder(build(config()))
        .state(gate)
        .route(SLOW, slow)
        .route_sync(1, counted_echo)
        .bind()
        .unwrap();
    let server = Running::start(server);
    let mut raw = Raw::connect(&server.addr);
    let mut bytes = frame(1, b"a");
    bytes.extend(frame(SLOW, b"slow"));
    for body in [b"b", b"c", b"d"] {
        bytes.extend(frame(1, body));
    }
    raw.write(&bytes);
    // Nothing before it is owed: answered at once, while the pooled handler is blocked.
    assert_eq!(read_body(&mut raw), b"a");
    control.started.recv_timeout(DEADLINE).unwrap();
    // The sync messages behind the blocked one are handled in the connection's task, but
    // their replies wait for it.
    let m = Arc::clone(server.handle.metrics());
    wait_until("sync handlers ran behind the pooled one", || {
        control.sync_calls.load(Ordering::SeqCst) == 4
    });
    control.release.send(()).unwrap();
    for expected in [&b"slow"[..], b"b", b"c", b"d"] {
        assert_eq!(read_body(&mut raw), expected);
    }
    // The same connection keeps answering in place.
    raw.write(&frame(1, b"e"));
    assert_eq!(read_body(&mut raw), b"e");
    assert!(none_in_flight(&m), "{}", m.render());
    server.stop();
}

#[test]
fn sync_panic_or_error_loses_only_its_reply() {
    let (gate, control) = gate();
    let server = Server::builder(build(config()))
        .state(gate)
        .route(SLOW, slow)
        .route_sync(1, |ctx: &mut SyncContext<'_, '_, Gate>| {
            ctx.reply(ctx.body())
        })
        .route_sync(3, |_: &mut SyncContext<'_, '_, Gate>| -> () {
            panic!("sync handler bug")
        })
        .route_sync(4, |_: &mut SyncContext<'_, '_, Gate>| Err::<(), _>("nope"))
        .bind()
        .unwrap();
    let server = Running::start(server);
    let m = Arc::clone(server.handle.metrics());
    let mut raw = Raw::connect(&server.addr);

    // Answered in place.
    let mut bytes = frame(1, b"a");
    bytes.extend(frame(3, b"boom"));
    bytes.extend(frame(4, b"err"));
    bytes.extend(frame(1, b"b"));
    raw.write(&bytes);
    assert_eq!(read_body(&mut raw), b"a");
    assert_eq!(read_body(&mut raw), b"b");
    assert_eq!(m.handler_failures(), (1, 1));

    // Answered as events, behind a pooled request that is still running.
    let mut bytes = frame(SLOW, b"slow");
    bytes.extend(frame(3, b"boom"));
    bytes.extend(frame(4, b"err"));
    bytes.extend(frame(1, b"c"));
    raw.write(&bytes);
    control.started.recv_timeout(DEADLINE).unwrap();
    wait_until("failures counted", || m.handler_failures() == (2, 2));
    control.release.send(()).unwrap();
    assert_eq!(read_body(&mut raw), b"slow");
    assert_eq!(read_body(&mut raw), b"c");

    // The connection and the others keep working.
    raw.write(&frame(1, b"d"));
    assert_eq!(read_body(&mut raw), b"d");
    let other = Client::connect(server.addr.clone()).unwrap();
    assert_eq!(&other.request(1, "other").unwrap()[..], b"other");
    assert_eq!(server.handle.connection_count(), 2);
    assert!(none_in_flight(&m), "{}", m.render());
    server.stop();
}

#[test]
fn sync_handler_broadcasts_through_the_server_handle() {
    let server = Server::builder(build(config()))
        .route_sync(7, |ctx| {
            let reached = ctx.server().broadcast(8, ctx.body().to_vec());
            ctx.reply(&(reached as u32).to_le_bytes());
        })
        .route_sync(10, |ctx| {
            let joined = ctx
                .server()
                .join("g", ctx.id())
                .map_err(|e| e.to_string())?;
            ctx.reply(if joined { b"joined" } else { b"member" });
            Ok::<(), String>(())
        })
        .route_sync(11, |ctx| {
            ctx.server().broadcast_group("g", 12, ctx.body().to_vec());
        })
        .bind()
        .unwrap();
    let server = Running::start(server);
    let a = Client::connect(server.addr.clone()).unwrap();
    let b = Client::connect(server.addr.clone()).unwrap();
    wait_until("two connected", || server.handle.connection_count() == 2);

    let reached = a.request(7, "news").unwrap();
    assert_eq!(&reached[..], 2u32.to_le_bytes());
    for c in [&a, &b] {
        let m = c.recv_timeout(DEADLINE).unwrap();
        assert_eq!((m.method, &m.body[..]), (8, &b"news"[..]));
    }

    // A group joined from a sync handler, and broadcast to from another.
    assert_eq!(&b.request(10, "").unwrap()[..], b"joined");
    a.send(11, "to g").unwrap();
    let m = b.recv_timeout(DEADLINE).unwrap();
    assert_eq!((m.method, &m.body[..]), (12, &b"to g"[..]));
    assert_eq!(&b.request(10, "").unwrap()[..], b"member");
    // Only the broadcast to all reached `a` (its push came after the reply, before this
    // request's reply).
    assert_eq!(&a.request(10, "").unwrap()[..], b"joined");
    assert_eq!(
        a.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    server.stop();
}
