//! A raw-socket peer that writes and reads exact bytes, so the wire format is checked
//! independently of lynn's own encoder and decoder.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

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

/// A plain blocking TCP peer with a read timeout, for exact-bytes tests.
#[derive(Debug)]
pub struct RawPeer {
    stream: TcpStream,
    marks: (u16, u16),
}

impl RawPeer {
    /// Connects with the default marks and a 5 s read timeout.
    pub fn connect(addr: SocketAddr) -> io::Result<RawPeer> {
        RawPeer::connect_with_marks(addr, DEFAULT_MARKS)
    }

    /// Connects expecting `marks` on received frames.
    pub fn connect_with_marks(addr: SocketAddr, marks: (u16, u16)) -> io::Result<RawPeer> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(RawPeer { stream, marks })
    }

    /// Changes the read timeout (default 5 s) of every later read.
    pub fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
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

    /// The socket, for tests that need more control.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes all of `bytes` in one write call sequence.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes `bytes` one byte per write call (with TCP_NODELAY, mostly one byte per segment).
    pub fn write_bytewise(&mut self, bytes: &[u8]) -> io::Result<()> {
        for b in bytes {
            self.stream.write_all(std::slice::from_ref(b))?;
        }
        Ok(())
    }

    /// Reads exactly `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf)?;
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
    pub fn closed_by_peer(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    // As a client does: the server's end of stream is answered with ours,
                    // which ends a lingering close at once.
                    let _ = self.stream.shutdown(std::net::Shutdown::Write);
                    return true;
                }
                // Frames queued before the close may still arrive; keep reading.
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    );
                }
            }
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
