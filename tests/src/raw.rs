//! A raw-socket peer that writes and reads exact bytes, so the wire format is checked
//! independently of lynn's own encoder and decoder; over TLS (a blocking rustls session)
//! when the runtime under test speaks TLS.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use lynn_service::tls::ClientTls;
use lynn_service::tls::rustls::{ClientConnection, ServerConnection, StreamOwned};

use crate::runtime::Runtime;

/// DESIGN.md §2 sample: method 1, body `hello`.
pub const SAMPLE_HELLO: &[u8] = &[
    0xd9, 0x23, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x00, b'h', b'e', b'l', b'l', b'o', 0x27,
    0x1e,
];

/// DESIGN.md §2 sample: a heartbeat.
pub const SAMPLE_HEARTBEAT: &[u8] = &[
    0xd9, 0x23, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x00, 0x27, 0x1e,
];

/// lynn_tcp's default marks, as on the wire.
pub const DEFAULT_MARKS: (u16, u16) = (9177, 7719);

/// Encodes a frame by hand from the spec (not with lynn-proto's encoder).
pub fn frame(marks: (u16, u16), kind: u8, method: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(15 + body.len());
    out.extend_from_slice(&marks.0.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64 + 5).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&marks.1.to_le_bytes());
    out
}

/// A message frame with the default marks.
pub fn message(method: u16, body: &[u8]) -> Vec<u8> {
    frame(DEFAULT_MARKS, 1, method, body)
}

/// One frame as read off the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// Kind byte.
    pub kind: u8,
    /// Method id.
    pub method: u16,
    /// Body.
    pub body: Vec<u8>,
}

/// A blocking peer with a read timeout, for exact-bytes tests: over plain TCP, or over TLS
/// when the runtime under test speaks it ([`connect_for`](Self::connect_for)), the bytes
/// being then the plaintext inside the TLS session.
#[derive(Debug)]
pub struct RawPeer {
    wire: Wire,
    marks: (u16, u16),
}

impl RawPeer {
    /// Connects over plain TCP with the default marks and a 5 s read timeout.
    pub fn connect(addr: SocketAddr) -> io::Result<RawPeer> {
        RawPeer::connect_with_marks(addr, DEFAULT_MARKS)
    }

    /// Connects over plain TCP expecting `marks` on received frames.
    pub fn connect_with_marks(addr: SocketAddr, marks: (u16, u16)) -> io::Result<RawPeer> {
        let stream = tcp(addr)?;
        Ok(RawPeer {
            wire: Wire::Tcp(stream),
            marks,
        })
    }

    /// Connects to a server of runtime `R` as [`connect`](Self::connect) does, over TLS if
    /// `R` speaks it ([`Runtime::tls`]).
    pub fn connect_for<R: Runtime>(addr: SocketAddr) -> io::Result<RawPeer> {
        RawPeer::connect_with_marks_for::<R>(addr, DEFAULT_MARKS)
    }

    /// Connects to a server of runtime `R` expecting `marks`, over TLS if `R` speaks it.
    pub fn connect_with_marks_for<R: Runtime>(
        addr: SocketAddr,
        marks: (u16, u16),
    ) -> io::Result<RawPeer> {
        match R::tls() {
            None => RawPeer::connect_with_marks(addr, marks),
            Some(tls) => RawPeer::connect_tls(addr, marks, tls.client()),
        }
    }

    /// Connects over TLS with `tls` (verifying the server as `addr`'s IP unless `tls` names
    /// it otherwise) and runs the handshake before returning. A TCP connection the server
    /// refuses or closes during the handshake still returns a peer, as a refused plain
    /// connection does: the failure shows at its first read or write.
    pub fn connect_tls(
        addr: SocketAddr,
        marks: (u16, u16),
        tls: &ClientTls,
    ) -> io::Result<RawPeer> {
        let name = tls
            .server_name_for(&addr.to_string())
            .map_err(io::Error::other)?;
        let session =
            ClientConnection::new(tls.config().clone(), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(session, tcp(addr)?);
        let _ = stream.conn.complete_io(&mut stream.sock);
        Ok(RawPeer {
            wire: Wire::TlsClient(Box::new(stream)),
            marks,
        })
    }

    /// Accepts one connection on `listener` as the server of runtime `R`'s clients expect:
    /// plain, or over TLS (handshake done before returning) if `R` speaks it.
    pub fn accept_for<R: Runtime>(listener: &TcpListener) -> io::Result<RawPeer> {
        let (stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let wire = match R::tls() {
            None => Wire::Tcp(stream),
            Some(tls) => {
                let session = ServerConnection::new(tls.server().config().clone())
                    .map_err(io::Error::other)?;
                let mut stream = StreamOwned::new(session, stream);
                while stream.conn.is_handshaking() {
                    stream.conn.complete_io(&mut stream.sock)?;
                }
                Wire::TlsServer(Box::new(stream))
            }
        };
        Ok(RawPeer {
            wire,
            marks: DEFAULT_MARKS,
        })
    }

    /// Changes the read timeout (default 5 s) of every later read.
    pub fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.wire.socket().set_read_timeout(Some(timeout))
    }

    /// Sets a write timeout on every later write (none by default).
    pub fn set_write_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.wire.socket().set_write_timeout(Some(timeout))
    }

    /// Whether this peer speaks TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self.wire, Wire::Tcp(_))
    }

    /// The marks this peer writes with [`request`](Self::request) and expects on reads.
    pub fn marks(&self) -> (u16, u16) {
        self.marks
    }

    /// Writes one message frame with this peer's marks and reads the next frame.
    pub fn request(&mut self, method: u16, body: &[u8]) -> io::Result<RawFrame> {
        self.write(&frame(self.marks, 1, method, body))?;
        self.read_frame()
    }

    /// The TCP socket underneath, for socket options, `shutdown` and `try_clone`. Under TLS
    /// it carries ciphertext: read and write bytes through the peer's own methods.
    pub fn stream(&mut self) -> &mut TcpStream {
        self.wire.socket()
    }

    /// Writes all of `bytes` in one write call sequence.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.write_all(bytes)?;
        self.wire.flush()
    }

    /// Writes `bytes` one byte per write call (with TCP_NODELAY, mostly one byte per segment;
    /// under TLS, one record per byte).
    pub fn write_bytewise(&mut self, bytes: &[u8]) -> io::Result<()> {
        for b in bytes {
            self.write(std::slice::from_ref(b))?;
        }
        Ok(())
    }

    /// One write call: how much of `bytes` was taken (under TLS, by the session, which
    /// fails the next call if it cannot write out what it took).
    pub fn write_some(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.wire.write(bytes)
    }

    /// One read call into `buf`: 0 at the end of the stream.
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.wire.read(buf)
    }

    /// Reads exactly `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.wire.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Reads one frame and checks its marks.
    pub fn read_frame(&mut self) -> io::Result<RawFrame> {
        let head = self.read_bytes(13)?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if u16::from_le_bytes([head[0], head[1]]) != self.marks.0 {
            return Err(bad("wrong header mark"));
        }
        let len = u64::from_le_bytes(head[2..10].try_into().expect("8 bytes"));
        if !(5..=64 << 20).contains(&len) {
            return Err(bad("implausible length"));
        }
        let rest = self.read_bytes(len as usize - 3)?;
        let (body, tail) = rest.split_at(rest.len() - 2);
        if u16::from_le_bytes([tail[0], tail[1]]) != self.marks.1 {
            return Err(bad("wrong tail mark"));
        }
        Ok(RawFrame {
            kind: head[10],
            method: u16::from_le_bytes([head[11], head[12]]),
            body: body.to_vec(),
        })
    }

    /// Whether the server closes the connection within the read timeout: true on EOF or a
    /// reset (bytes that arrive before it are skipped), false when the timeout passes first.
    /// Under TLS, also on an end without `close_notify` or a TLS alert.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.wire.read(&mut buf) {
                Ok(0) => {
                    // As a client does: the server's end of stream is answered with ours,
                    // which ends a lingering close at once.
                    self.wire.shutdown_write();
                    return true;
                }
                // Frames queued before the close may still arrive; keep reading.
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    use io::ErrorKind::{
                        ConnectionAborted, ConnectionReset, InvalidData, UnexpectedEof,
                    };
                    return match e.kind() {
                        ConnectionReset | ConnectionAborted => true,
                        UnexpectedEof | InvalidData => self.is_tls(),
                        _ => false,
                    };
                }
            }
        }
    }
}

/// A TCP connection to `addr` with TCP_NODELAY and a 5 s read timeout.
fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}

/// What a [`RawPeer`] reads and writes: a socket, or a TLS session over one.
#[derive(Debug)]
enum Wire {
    Tcp(TcpStream),
    TlsClient(Box<StreamOwned<ClientConnection, TcpStream>>),
    TlsServer(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Wire {
    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Wire::Tcp(s) => s,
            Wire::TlsClient(s) => &mut s.sock,
            Wire::TlsServer(s) => &mut s.sock,
        }
    }

    /// Ends this side's writing: a FIN, after `close_notify` under TLS (best effort).
    fn shutdown_write(&mut self) {
        match self {
            Wire::Tcp(_) => {}
            Wire::TlsClient(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            Wire::TlsServer(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        }
        let _ = self.socket().shutdown(Shutdown::Write);
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.read(buf),
            Wire::TlsClient(s) => s.read(buf),
            Wire::TlsServer(s) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.write(buf),
            Wire::TlsClient(s) => s.write(buf),
            Wire::TlsServer(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.flush(),
            Wire::TlsClient(s) => s.flush(),
            Wire::TlsServer(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_encoder_matches_the_spec_samples() {
        assert_eq!(message(1, b"hello"), SAMPLE_HELLO);
        assert_eq!(frame(DEFAULT_MARKS, 2, 0, b""), SAMPLE_HEARTBEAT);
    }
}
