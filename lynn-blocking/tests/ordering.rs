//! Replies come back in request order while handlers run concurrently.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Raw, Running, build, config, frame};
use lynn_blocking::{Context, Server};

#[derive(Default)]
struct Load {
    running: AtomicUsize,
    max_running: AtomicUsize,
    rng: AtomicU64,
}

#[test]
fn replies_keep_request_order_under_concurrency() {
    const N: u32 = 200;
    let cfg = build(config().max_in_flight(8).max_concurrent_handlers(Some(4)));
    let load = Arc::new(Load::default());
    let server = Server::builder(cfg)
        .state(Arc::clone(&load))
        .route(1, |ctx: Context<Arc<Load>>| {
            let load = ctx.state();
            let now = load.running.fetch_add(1, Ordering::SeqCst) + 1;
            load.max_running.fetch_max(now, Ordering::SeqCst);
            // The workload: a random short amount of work per request.
            let r = load
                .rng
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
                .wrapping_mul(0xbf58_476d_1ce4_e5b9);
            std::thread::sleep(Duration::from_micros((r >> 40) % 3000));
            load.running.fetch_sub(1, Ordering::SeqCst);
            ctx.reply(ctx.body().clone())
        })
        .bind()
        .unwrap();
    let server = Running::start(server);
    let mut raw = Raw::connect(&server.addr);
    let mut bytes = Vec::new();
    for i in 0..N {
        bytes.extend(frame(1, &i.to_le_bytes()));
    }
    let mut writer = raw.stream.try_clone().unwrap();
    let w = std::thread::spawn(move || std::io::Write::write_all(&mut writer, &bytes));
    for i in 0..N {
        let f = raw.read_frame().expect("reply");
        assert_eq!(&f.body[..], &i.to_le_bytes(), "reply {i} out of order");
    }
    w.join().unwrap().unwrap();
    let max = load.max_running.load(Ordering::SeqCst);
    assert!(max > 1, "handlers ran concurrently (max {max})");
    assert!(
        max <= 4,
        "at most max_concurrent_handlers at once (max {max})"
    );
    server.stop();
}
