//! [`TlsStream`]: a rustls session driven sans-IO over any [`Transport`], itself a
//! [`Transport`], so the drive loops that serve plain sockets serve TLS unchanged.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, IoSlice, Write};
use std::ops::DerefMut;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use rustls::client::ClientConnectionData;
use rustls::pki_types::CertificateDer;
use rustls::server::ServerConnectionData;
use rustls::{ClientConnection, ConnectionCommon, ServerConnection};

use crate::runtime::Transport;

/// Most ciphertext read from the inner stream at once (two full TLS records).
pub(super) const READ_CHUNK: usize = 2 * (16 * 1024 + 256);

/// Most encrypted output (and, during the handshake, plaintext) a session buffers
/// ([`rustls::ConnectionCommon::set_buffer_limit`]): plaintext is taken from a writer only
/// while there is room, so a peer that does not read holds at most this much here.
pub const TLS_BUFFER_LIMIT: usize = 32 * 1024;

thread_local! {
    /// The buffer ciphertext is read into before the session takes it, shared by the
    /// streams polled on this thread: a stream keeps one only while the session has not
    /// taken all of it (its plaintext is full), so an idle TLS connection holds none.
    static STAGING: Cell<BytesMut> = Cell::new(BytesMut::new());
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for rustls::ServerConnection {}
    impl Sealed for rustls::ClientConnection {}
}

/// The rustls session of a [`TlsStream`]: [`rustls::ServerConnection`] or
/// [`rustls::ClientConnection`]. Sealed.
pub trait Session:
    sealed::Sealed + DerefMut<Target = ConnectionCommon<Self::Data>> + Send + Unpin + 'static
{
    /// The side's data in rustls's connection.
    type Data;
}

impl Session for ServerConnection {
    type Data = ServerConnectionData;
}

impl Session for ClientConnection {
    type Data = ClientConnectionData;
}

/// Where closing the write side stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    Open,
    /// `close_notify` is queued; the inner write side is shut once it is written.
    Flushing,
    Done,
}

/// A TLS session over the transport `T`: ciphertext on `T`, plaintext through this
/// stream's own [`Transport`] methods. `C` is the side: [`ServerConnection`] (the default)
/// or [`ClientConnection`].
///
/// - **Reads**: plaintext the session already decrypted is handed out first; otherwise
///   ciphertext is read from `T` once, given to the session, and what it decrypted handed
///   out. Readable when plaintext (or undelivered ciphertext) is buffered, or `T` is. The
///   end of `T`, with or without the peer's `close_notify`, reads as the end of the stream
///   (the framing above tells a frame cut short).
/// - **Writes**: records the session holds are written to `T` first; then plaintext is
///   taken while the session has room ([`TLS_BUFFER_LIMIT`]), encrypted, and written as far
///   as `T` takes it. What `T` does not take stays for [`Transport::try_flush`], which
///   reports `WouldBlock` until it is out, so the drive loop waits for writability.
/// - **`shutdown_write`** queues `close_notify`, and shuts `T`'s write side once it is out.
///
/// A TLS error fails the read that met it (and every later one) with `InvalidData`, after
/// the session's alert is offered to `T`.
pub struct TlsStream<T, C = ServerConnection> {
    inner: T,
    session: C,
    /// Ciphertext read from `inner` that the session has not taken yet (it takes none while
    /// its plaintext buffer is full).
    staged: BytesMut,
    /// Plaintext the session holds, not yet read.
    plaintext: usize,
    /// The peer sent `close_notify`.
    closed: bool,
    /// `inner` reached its end.
    eof: bool,
    /// The session failed: every read fails.
    failed: Option<rustls::Error>,
    shutdown: Shutdown,
}

impl<T, C: Session> fmt::Debug for TlsStream<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.session.is_handshaking())
            .field("plaintext", &self.plaintext)
            .field("staged", &self.staged.len())
            .field("eof", &self.eof)
            .field("failed", &self.failed)
            .finish()
    }
}

/// What one pull of ciphertext did.
pub(super) enum Pull {
    /// The session took ciphertext (it may have plaintext or output now).
    Progress,
    /// `inner` is at its end.
    Eof,
}

/// `T` as an [`io::Write`] for [`ConnectionCommon::write_tls`].
struct Sink<'a, T>(&'a mut T);

impl<T: Transport> Write for Sink<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: Transport, C: Session> TlsStream<T, C> {
    /// `session` over `inner`, before its handshake (see [`handshake`](super::handshake)).
    /// Limits the session's buffers to [`TLS_BUFFER_LIMIT`].
    pub fn new(inner: T, mut session: C) -> Self {
        session.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        TlsStream {
            inner,
            session,
            staged: BytesMut::new(),
            plaintext: 0,
            closed: false,
            eof: false,
            failed: None,
            shutdown: Shutdown::Open,
        }
    }

    /// The rustls session (ALPN, SNI, cipher suite, keying material...).
    pub fn session(&self) -> &C {
        &self.session
    }

    /// The transport underneath.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The certificate chain the peer presented (end entity first), once the handshake
    /// verified it; `None` when it presented none.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.session.peer_certificates()
    }

    /// The transport and the session, taken apart (buffered plaintext and ciphertext are
    /// dropped).
    pub fn into_parts(self) -> (T, C) {
        (self.inner, self.session)
    }

    /// Ciphertext read and not yet taken by the session.
    #[cfg(test)]
    pub(super) fn staged_len(&self) -> usize {
        self.staged.len()
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Whether a read would make progress without the inner stream: plaintext or
    /// ciphertext is buffered, or the stream is over (end or error).
    fn buffered(&self) -> bool {
        self.plaintext > 0
            || !self.staged.is_empty()
            || self.closed
            || self.eof
            || self.failed.is_some()
    }

    /// Records a TLS error and offers the session's alert to `inner` (best effort).
    fn fail(&mut self, error: rustls::Error) -> io::Error {
        let _ = self.flush_records();
        self.failed = Some(error.clone());
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// The error a failed session reports again.
    fn failure(&self) -> Option<io::Error> {
        let error = self.failed.clone()?;
        Some(io::Error::new(io::ErrorKind::InvalidData, error))
    }

    /// Reads ciphertext from `inner` once (unless some is still staged) and gives it to the
    /// session. `WouldBlock` when `inner` has nothing; `InvalidData` on a TLS error.
    pub(super) fn pull(&mut self) -> io::Result<Pull> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        if self.staged.is_empty() {
            if self.eof {
                return Ok(Pull::Eof);
            }
            let mut staged = STAGING.take();
            staged.clear();
            staged.reserve(READ_CHUNK);
            match self.inner.try_read(&mut staged) {
                Ok(0) => {
                    STAGING.set(staged);
                    self.eof = true;
                    // Tells the session: an unfinished record or a missing close_notify
                    // shows up in its reader's state.
                    let _ = self.session.read_tls(&mut io::empty());
                    return Ok(Pull::Eof);
                }
                Ok(_) => self.staged = staged,
                Err(e) => {
                    STAGING.set(staged);
                    return Err(e);
                }
            }
        }
        self.feed()?;
        Ok(Pull::Progress)
    }

    /// Gives staged ciphertext to the session and processes it, until all is taken or the
    /// session's plaintext buffer is full.
    fn feed(&mut self) -> io::Result<()> {
        while !self.staged.is_empty() {
            match self.session.read_tls(&mut &self.staged[..]) {
                // After close_notify the session takes nothing more: the rest is dropped.
                Ok(0) => self.staged.clear(),
                Ok(n) => self.staged.advance(n),
                // Its plaintext buffer is full: read that first.
                Err(e) if e.kind() == io::ErrorKind::Other && self.plaintext > 0 => break,
                Err(e) => {
                    let error = rustls::Error::General(e.to_string());
                    return Err(self.fail(error));
                }
            }
            match self.session.process_new_packets() {
                Ok(state) => {
                    self.plaintext = state.plaintext_bytes_to_read();
                    self.closed |= state.peer_has_closed();
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        if self.staged.is_empty() && self.staged.capacity() > 0 {
            STAGING.set(std::mem::take(&mut self.staged));
        }
        Ok(())
    }

    /// Moves decrypted plaintext into `buf`'s spare room (grown if it has none). `None`
    /// when the session has none and the stream is not over.
    fn take_plaintext(&mut self, buf: &mut BytesMut) -> Option<io::Result<usize>> {
        if self.plaintext == 0 {
            if let Some(e) = self.failure() {
                return Some(Err(e));
            }
            // A clean close (close_notify) or the end of `inner` reads as the end.
            return (self.closed || self.eof).then_some(Ok(0));
        }
        if buf.capacity() == buf.len() {
            buf.reserve(self.plaintext.min(READ_CHUNK));
        }
        let room = buf.capacity() - buf.len();
        let mut copied = 0;
        let mut reader = self.session.reader();
        while copied < room {
            let chunk = match reader.fill_buf() {
                Ok(chunk) if !chunk.is_empty() => chunk,
                _ => break,
            };
            let take = chunk.len().min(room - copied);
            buf.extend_from_slice(&chunk[..take]);
            reader.consume(take);
            copied += take;
        }
        self.plaintext = self.plaintext.saturating_sub(copied);
        if copied == 0 {
            // The count was stale: nothing is buffered after all.
            self.plaintext = 0;
            return None;
        }
        Some(Ok(copied))
    }

    /// Writes the records the session holds to `inner` until none is left (`Ok`) or
    /// `inner` would block (`WouldBlock`).
    pub(super) fn flush_records(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut Sink(&mut self.inner)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Polls `inner`'s read readiness (for the handshake).
    pub(super) fn poll_inner_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }

    /// Polls `inner`'s write readiness (for the handshake).
    pub(super) fn poll_inner_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_write_ready(cx)
    }
}

impl<T: Transport, C: Session> Transport for TlsStream<T, C> {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered() {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_read_ready(cx)
    }

    fn read_ready(&self) -> bool {
        self.buffered() || self.inner.read_ready()
    }

    fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            if let Some(res) = self.take_plaintext(buf) {
                return res;
            }
            // `Eof` or `Progress`: the next turn reports the end or what was decrypted.
            self.pull()?;
        }
    }

    fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_write_ready(cx)
    }

    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let blocked = match self.flush_records() {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => return Err(e),
        };
        let taken = self.session.writer().write_vectored(bufs)?;
        if taken == 0 && blocked {
            // The session is full and `inner` takes nothing: its readiness is cleared.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // As far as `inner` takes it; the rest waits for `try_flush`. An error here shows
        // again on the next write or flush.
        let _ = self.flush_records();
        Ok(taken)
    }

    fn try_flush(&mut self) -> io::Result<()> {
        self.flush_records()?;
        if self.shutdown == Shutdown::Flushing {
            self.shutdown = Shutdown::Done;
            self.inner.shutdown_write();
        }
        Ok(())
    }

    fn shutdown_write(&mut self) {
        if self.shutdown == Shutdown::Open {
            self.session.send_close_notify();
            self.shutdown = Shutdown::Flushing;
        }
        let _ = self.try_flush();
    }
}
