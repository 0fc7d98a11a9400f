//! A client whose server does not read: `try_send` fails fast, `send` waits for room.

use std::net::TcpListener;
use std::time::Duration;

use lynn_proto::ClientError;

use crate::app::ECHO;
use crate::raw::RawPeer;
use crate::runtime::{ClientUnderTest, Runtime};
use crate::support::{client_config, wait_for};

const BODY: usize = 16 << 10;
/// Bytes tried before the queue must have filled: far more than any kernel buffers.
const TRY_CAP: usize = 64 << 20;

/// Against a peer that accepts (completing the handshake under TLS) and does not read,
/// `try_send` of 16 KiB bodies fails with `QueueFull` before 64 MiB; a `send` made then
/// waits, and completes once the peer reads; `try_send` works again; everything accepted
/// arrives, exactly once.
pub fn client_backpressure<C: Runtime>() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = client_config(listener.local_addr().unwrap())
        .send_queue_limit(64 << 10)
        .heartbeat_interval(None)
        .build()
        .unwrap();
    // Accepts on a thread of its own: a TLS client's connect returns after the handshake.
    let accepting = std::thread::spawn(move || RawPeer::accept_for::<C>(&listener));
    let client = C::connect(config).expect("client connects");
    let mut socket = accepting.join().unwrap().expect("accepted");
    let body = vec![7u8; BODY];
    let mut accepted = 0usize;
    loop {
        match client.try_send(ECHO, body.clone().into()) {
            Ok(()) => accepted += 1,
            Err(ClientError::QueueFull) => break,
            Err(e) => panic!("{}: try_send failed with {e}", C::name()),
        }
        assert!(
            accepted * BODY < TRY_CAP,
            "{}: the queue never filled",
            C::name()
        );
    }
    std::thread::scope(|s| {
        let waiting = s.spawn(|| client.send(ECHO, body.clone().into()));
        socket.set_read_timeout(Duration::from_secs(20)).unwrap();
        let reader = s.spawn(move || {
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match socket.read_some(&mut buf) {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        waiting
            .join()
            .unwrap()
            .expect("send completes once the peer reads");
        accepted += 1;
        wait_for("try_send to have room again", || {
            client.try_send(ECHO, body.clone().into()).ok()
        });
        accepted += 1;
        client.close();
        let received = reader.join().unwrap();
        assert_eq!(
            received,
            accepted * (BODY + 15),
            "{}: bytes on the wire (inside TLS, under TLS)",
            C::name()
        );
    });
}
