//! TlsStream over in-memory pipes, polled by hand: handshakes, bodies both ways through
//! small pipes, mutual TLS refusals, and arbitrary bytes fed to a server session.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use proptest::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::{ClientConnection, ServerConnection};

use super::stream::READ_CHUNK;
use super::{ClientTls, HandshakeError, ServerTls, TlsStream};
use crate::runtime::Transport;

/// One direction of a pipe: bytes in flight, at most `cap`, and whether it is closed.
#[derive(Default)]
struct Half {
    bytes: VecDeque<u8>,
    closed: bool,
}

/// One end of an in-memory pipe: never blocks, `WouldBlock` when empty or full.
struct End {
    rx: Arc<Mutex<Half>>,
    tx: Arc<Mutex<Half>>,
    cap: usize,
}

fn pipe(cap: usize) -> (End, End) {
    let (a, b) = (Arc::default(), Arc::default());
    let one = End {
        rx: Arc::clone(&a),
        tx: Arc::clone(&b),
        cap,
    };
    (one, End { rx: b, tx: a, cap })
}

impl Transport for End {
    fn poll_read_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let rx = self.rx.lock().unwrap();
        if rx.bytes.is_empty() && !rx.closed {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut rx = self.rx.lock().unwrap();
        if rx.bytes.is_empty() {
            return if rx.closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        if buf.capacity() == buf.len() {
            buf.reserve(4096);
        }
        let n = rx.bytes.len().min(buf.capacity() - buf.len());
        buf.extend(rx.bytes.drain(..n));
        Ok(n)
    }

    fn poll_write_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.tx.lock().unwrap().bytes.len() >= self.cap {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut tx = self.tx.lock().unwrap();
        let room = self.cap.saturating_sub(tx.bytes.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(room - n);
            tx.bytes.extend(&b[..take]);
            n += take;
        }
        Ok(n)
    }

    fn shutdown_write(&mut self) {
        self.tx.lock().unwrap().closed = true;
    }
}

/// A CA and a certificate it signed for `127.0.0.1` and `lynn.test`.
pub(super) struct Pki {
    pub(super) ca: String,
    pub(super) cert: String,
    pub(super) key: String,
}

pub(super) fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "lynn.test".to_string()]);
    let key = KeyPair::generate().unwrap();
    let cert = leaf.unwrap().signed_by(&key, &issuer).unwrap();
    Pki {
        ca: ca_cert.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

type Server = TlsStream<End, ServerConnection>;
type Client = TlsStream<End, ClientConnection>;

fn pair(server: &ServerTls, client: &ClientTls, cap: usize) -> (Server, Client) {
    let (a, b) = pipe(cap);
    let name = client.server_name_for("127.0.0.1:1").unwrap();
    (server.accept(a).unwrap(), client.connect(b, name).unwrap())
}

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// How a handshake stands.
type Shaken = Poll<Result<(), HandshakeError>>;

/// Polls both handshakes until neither moves.
fn shake(s: &mut Server, c: &mut Client) -> (Shaken, Shaken) {
    let (mut sr, mut cr) = (Poll::Pending, Poll::Pending);
    for _ in 0..100 {
        if cr.is_pending() {
            cr = c.poll_handshake(&mut cx());
        }
        if sr.is_pending() {
            sr = s.poll_handshake(&mut cx());
        }
        if sr.is_ready() && cr.is_ready() {
            break;
        }
    }
    (sr, cr)
}

/// Moves `body` from `tx` to `rx` through both streams, polling by hand.
fn carry<A: Transport, B: Transport>(tx: &mut A, rx: &mut B, body: &[u8]) -> Vec<u8> {
    let (mut sent, mut got) = (0, BytesMut::new());
    for _ in 0..100_000 {
        if sent < body.len() {
            match tx.try_write_vectored(&[IoSlice::new(&body[sent..])]) {
                Ok(n) => sent += n,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        } else if let Err(e) = tx.try_flush() {
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        match rx.try_read(&mut got) {
            Ok(n) => assert!(n > 0, "unexpected end"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
        }
        if got.len() == body.len() {
            break;
        }
    }
    got.to_vec()
}

fn configs(pki: &Pki) -> (ServerTls, ClientTls) {
    let server = ServerTls::from_pem(pki.cert.as_bytes(), pki.key.as_bytes()).unwrap();
    (server, ClientTls::from_ca_pem(pki.ca.as_bytes()).unwrap())
}

#[test]
fn a_mebibyte_crosses_both_ways_through_a_small_pipe() {
    let pki = pki();
    let (server, client) = configs(&pki);
    let (mut s, mut c) = pair(&server, &client, 3000);
    let (sr, cr) = shake(&mut s, &mut c);
    assert!(matches!(
        (sr, cr),
        (Poll::Ready(Ok(())), Poll::Ready(Ok(())))
    ));
    assert!(s.peer_certificates().is_none());
    let body: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    assert!(carry(&mut c, &mut s, &body) == body);
    assert!(carry(&mut s, &mut c, &body) == body);
    // close_notify, then the inner write side: the peer reads the end.
    c.shutdown_write();
    assert!(c.try_flush().is_ok());
    let mut rest = BytesMut::new();
    assert_eq!(s.try_read(&mut rest).unwrap(), 0);
}

#[test]
fn the_server_name_must_match_the_certificate() {
    let pki = pki();
    let (server, client) = configs(&pki);
    let (a, b) = pipe(1 << 16);
    let mut s = server.accept(a).unwrap();
    let name = client.server_name_for("other.test:1").unwrap();
    let mut c = client.connect(b, name).unwrap();
    let (sr, cr) = shake(&mut s, &mut c);
    assert!(
        matches!(cr, Poll::Ready(Err(HandshakeError::Certificate(_)))),
        "{cr:?}"
    );
    assert!(
        matches!(sr, Poll::Ready(Err(HandshakeError::Certificate(_)))),
        "{sr:?}"
    );
    // By DNS name it matches.
    let client = client.server_name("lynn.test").unwrap();
    let (mut s, mut c) = pair(&server, &client, 1 << 16);
    assert!(matches!(
        shake(&mut s, &mut c),
        (Poll::Ready(Ok(())), Poll::Ready(Ok(())))
    ));
}

#[test]
fn mutual_tls_refuses_no_certificate_and_another_ca() {
    let (pki, other) = (pki(), pki());
    let server = ServerTls::from_pem(pki.cert.as_bytes(), pki.key.as_bytes())
        .and_then(|s| s.client_ca_pem(pki.ca.as_bytes()))
        .unwrap();
    let anonymous = ClientTls::from_ca_pem(pki.ca.as_bytes()).unwrap();
    let foreign = anonymous
        .clone()
        .client_cert_pem(other.cert.as_bytes(), other.key.as_bytes())
        .unwrap();
    for client in [anonymous.clone(), foreign] {
        let (mut s, mut c) = pair(&server, &client, 1 << 16);
        let (sr, _) = shake(&mut s, &mut c);
        assert!(
            matches!(sr, Poll::Ready(Err(HandshakeError::Certificate(_)))),
            "{sr:?}"
        );
        assert_eq!(
            sr.map(|r| r.unwrap_err().reason()),
            Poll::Ready("certificate")
        );
    }
    let trusted = anonymous
        .client_cert_pem(pki.cert.as_bytes(), pki.key.as_bytes())
        .unwrap();
    let (mut s, mut c) = pair(&server, &trusted, 1 << 16);
    assert!(matches!(
        shake(&mut s, &mut c),
        (Poll::Ready(Ok(())), Poll::Ready(Ok(())))
    ));
    assert_eq!(s.peer_certificates().map(<[_]>::len), Some(1));
}

#[test]
fn garbage_instead_of_a_client_hello_is_a_protocol_error() {
    let pki = pki();
    let (server, _) = configs(&pki);
    let (a, mut b) = pipe(1 << 16);
    let mut s = server.accept(a).unwrap();
    b.try_write_vectored(&[IoSlice::new(b"GET / HTTP/1.1\r\n\r\n")])
        .unwrap();
    let res = s.poll_handshake(&mut cx());
    assert!(
        matches!(res, Poll::Ready(Err(HandshakeError::Protocol(_)))),
        "{res:?}"
    );
    // An end of stream instead is an IO failure.
    let (a, mut b) = pipe(1 << 16);
    let mut s = server.accept(a).unwrap();
    b.shutdown_write();
    let res = s.poll_handshake(&mut cx());
    assert!(
        matches!(res, Poll::Ready(Err(HandshakeError::Io(_)))),
        "{res:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes, raw or framed as TLS records, fed to a server session before or
    /// after its handshake: no panic, errors only of the expected kinds, and never more
    /// than a bounded amount of ciphertext staged.
    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        chunks in prop::collection::vec(
            (any::<bool>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..3000)),
            1..12,
        ),
        after_handshake in any::<bool>(),
    ) {
        let pki = PKI.with(|p| (p.cert.clone(), p.key.clone(), p.ca.clone()));
        let server = ServerTls::from_pem(pki.0.as_bytes(), pki.1.as_bytes()).unwrap();
        let client = ClientTls::from_ca_pem(pki.2.as_bytes()).unwrap();
        let (mut s, mut c) = pair(&server, &client, 1 << 20);
        if after_handshake {
            let (sr, cr) = shake(&mut s, &mut c);
            prop_assert!(matches!((sr, cr), (Poll::Ready(Ok(())), Poll::Ready(Ok(())))));
        }
        // The client's end of the pipe, written raw.
        let (mut raw, _) = c.into_parts();
        for (framed, kind, bytes) in chunks {
            if framed {
                let len = (bytes.len() as u16).to_be_bytes();
                let header = [kind % 4 + 20, 3, 3, len[0], len[1]];
                let _ = raw.try_write_vectored(&[IoSlice::new(&header), IoSlice::new(&bytes)]);
            } else {
                let _ = raw.try_write_vectored(&[IoSlice::new(&bytes)]);
            }
            let mut buf = BytesMut::new();
            for _ in 0..8 {
                let res = if s.is_handshaking() {
                    s.poll_handshake(&mut cx()).map(|r| r.map(|()| 0).map_err(HandshakeError::into_io))
                } else {
                    Poll::Ready(s.try_read(&mut buf))
                };
                if let Poll::Ready(Err(e)) = &res {
                    prop_assert!(matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                    ), "{e:?}");
                }
                prop_assert!(s.staged_len() <= READ_CHUNK);
                prop_assert!(buf.len() <= 1 << 16);
            }
        }
    }
}

thread_local! {
    /// One set of certificates for every case (generating keys is slow).
    static PKI: Pki = pki();
}
