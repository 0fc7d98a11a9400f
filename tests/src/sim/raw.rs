//! [`RawSim`]: a peer that writes exact bytes into a [`SimStream`] and reads frames back,
//! decoded by hand ([`crate::raw`]'s encoder, not lynn's codec), the simulated twin of
//! [`RawPeer`](crate::raw::RawPeer).

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use lynn_service::Transport;

use super::{CLIENT_IP, SimStream, timeout, with};
use crate::raw::{DEFAULT_MARKS, RawFrame, frame};

/// How long (virtual time) a read waits before it fails with `TimedOut`.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A raw peer of the simulation.
#[derive(Debug)]
pub struct RawSim {
    stream: SimStream,
    /// Bytes read and not yet taken.
    buf: BytesMut,
    marks: (u16, u16),
    read_timeout: Duration,
}

impl RawSim {
    /// Connects to `addr` from [`CLIENT_IP`].
    pub fn connect(addr: &str) -> io::Result<RawSim> {
        RawSim::connect_from(addr, CLIENT_IP)
    }

    /// Connects to `addr` from `ip` (a port of its own).
    pub fn connect_from(addr: &str, ip: IpAddr) -> io::Result<RawSim> {
        let stream = with(|w| w.net.connect(addr, ip))?;
        Ok(RawSim::from_stream(stream))
    }

    /// A raw peer over `stream` (one a listener accepted, say).
    pub fn from_stream(stream: SimStream) -> RawSim {
        RawSim {
            stream,
            buf: BytesMut::new(),
            marks: DEFAULT_MARKS,
            read_timeout: READ_TIMEOUT,
        }
    }

    /// Expects and writes `marks` from now on.
    pub fn with_marks(mut self, marks: (u16, u16)) -> Self {
        self.marks = marks;
        self
    }

    /// Changes how long (virtual time) a read waits.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout;
    }

    /// Writes all of `bytes`, waiting while the pipe is full.
    pub async fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n =
                poll_fn(|cx| self.stream.poll_write_vectored(cx, &[IoSlice::new(bytes)])).await?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Writes `bytes` while reading whatever comes, until the end of the stream has been
    /// read and `bytes` written (or refused: writing stops at the first error). What was
    /// read stays buffered for [`read_frame`](Self::read_frame) and
    /// [`read_bytes`](Self::read_bytes). Returns how many bytes were written.
    pub async fn write_while_reading(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let (mut written, mut writing, mut eof) = (0, true, false);
        let exchange = poll_fn(|cx| {
            while writing && written < bytes.len() {
                match self
                    .stream
                    .poll_write_vectored(cx, &[IoSlice::new(&bytes[written..])])
                {
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(_)) => writing = false,
                    Poll::Pending => break,
                }
            }
            while !eof {
                match self.stream.poll_read(cx, &mut self.buf) {
                    Poll::Ready(Ok(0)) => eof = true,
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            let written_all = !writing || written == bytes.len();
            if eof && written_all {
                Poll::Ready(Ok(written))
            } else {
                Poll::Pending
            }
        });
        timeout(self.read_timeout, exchange)
            .await
            .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Ends this peer's write side: the server reads the end of the stream.
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown_write();
    }

    /// Writes one message frame with this peer's marks and reads the next frame.
    pub async fn request(&mut self, method: u16, body: &[u8]) -> io::Result<RawFrame> {
        self.write(&frame(self.marks, 1, method, body)).await?;
        self.read_frame().await
    }

    /// Reads once more into the buffer: `Ok(0)` at the end of the stream; `TimedOut` after
    /// the read timeout.
    async fn fill(&mut self) -> io::Result<usize> {
        let read = poll_fn(|cx| self.stream.poll_read(cx, &mut self.buf));
        timeout(self.read_timeout, read)
            .await
            .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Reads exactly `n` bytes.
    pub async fn read_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.split_to(n).to_vec())
    }

    /// Reads one frame and checks its marks.
    pub async fn read_frame(&mut self) -> io::Result<RawFrame> {
        let mut head = &self.read_bytes(13).await?[..];
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if head.get_u16_le() != self.marks.0 {
            return Err(bad("wrong header mark"));
        }
        let len = head.get_u64_le();
        if !(5..=64 << 20).contains(&len) {
            return Err(bad("implausible length"));
        }
        let (kind, method) = (head.get_u8(), head.get_u16_le());
        let mut rest = self.read_bytes(len as usize - 3).await?;
        let tail = rest.split_off(rest.len() - 2);
        if u16::from_le_bytes([tail[0], tail[1]]) != self.marks.1 {
            return Err(bad("wrong tail mark"));
        }
        Ok(RawFrame {
            kind,
            method,
            body: rest,
        })
    }

    /// Whether the server closes the connection within the read timeout (bytes before the
    /// end are skipped).
    pub async fn closed_by_peer(&mut self) -> bool {
        loop {
            self.buf.clear();
            match self.fill().await {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() != io::ErrorKind::TimedOut,
            }
        }
    }

    /// Whether the server has closed the connection by now (no virtual time passes): the
    /// end of the stream is there, after any bytes not read yet.
    pub fn is_closed(&mut self) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            match self.stream.poll_read(&mut cx, &mut self.buf) {
                std::task::Poll::Ready(Ok(0) | Err(_)) => return true,
                std::task::Poll::Ready(Ok(_)) => continue,
                std::task::Poll::Pending => return false,
            }
        }
    }
}
