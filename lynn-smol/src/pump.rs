//! [`Pump`]: the IO half of one connection's loop, shared by the server's connection task
//! and the client's session: readiness, reads, vectored writes, the one deadline timer, and
//! the metrics delta reported once per loop turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Timer;
use lynn_proto::{Connection, Instant};
use lynn_service::{Metrics, StatsReport};

use crate::stream::{ReadOutcome, Stream};

/// Reads in a row without waiting for readiness before yielding to the executor.
const EAGER_READS: u8 = 16;

/// Which IO source is ready.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IoWake {
    /// The socket is readable (or may still hold bytes).
    Read,
    /// The socket accepts output again.
    Write,
    /// The connection's deadline passed.
    Timer,
}

/// Socket, timer and bookkeeping of one connection.
#[derive(Debug)]
pub(crate) struct Pump {
    stream: Stream,
    /// Fires at `armed`, which is at or before `deadline` (see [`arm`](Self::arm)).
    timer: Timer,
    armed: Option<Instant>,
    /// The connection's next deadline.
    deadline: Option<Instant>,
    /// Whether the timer was polled since it was last set, so that it wakes the task when
    /// it fires.
    timer_waits: bool,
    /// The time [`on_wake_with`](Self::on_wake_with) read in this loop turn, after the
    /// wake-up; cleared when the task sleeps or yields.
    woken_at: Option<Instant>,
    write_blocked: bool,
    read_more: bool,
    eager: u8,
    reported: StatsReport,
}

impl Pump {
    /// A pump over `stream`.
    pub(crate) fn new(stream: Stream) -> Self {
        Pump {
            stream,
            timer: Timer::never(),
            armed: None,
            deadline: None,
            timer_waits: false,
            woken_at: None,
            write_blocked: false,
            read_more: false,
            eager: 0,
            reported: StatsReport::default(),
        }
    }

    /// The socket.
    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Writes all the output the socket takes now (`now`: the time of the loop turn).
    #[inline]
    pub(crate) fn flush(&mut self, conn: &mut Connection, now: Instant) {
        self.write_blocked = self.stream.write_from(conn, now);
    }

    /// Points the timer at `deadline`. The idle deadline moves later with every frame
    /// received; re-arming async-io's timer each time (a remove and an insert in the
    /// reactor's timer tree) cost ~1,000 instructions per request with one request per
    /// read. So a later deadline leaves the timer as it is: it fires at the old time, and
    /// [`poll_io`](Self::poll_io) re-arms it for the current deadline then. Only an earlier
    /// deadline re-arms at once.
    #[inline]
    pub(crate) fn arm(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        if let Some(at) = deadline
            && self.armed.is_none_or(|armed| at < armed)
        {
            self.timer.set_at(at);
            self.armed = Some(at);
            self.timer_waits = false;
        }
    }

    /// Whether the last read filled its buffer, so the next read should not wait.
    #[inline]
    pub(crate) fn should_yield(&mut self) -> bool {
        if self.read_more {
            self.eager = self.eager.saturating_add(1);
            if self.eager >= EAGER_READS {
                self.eager = 0;
                // The timer may fire during the yield and its wake-up be merged with it.
                self.woken_at = None;
                return true;
            }
        } else {
            self.eager = 0;
        }
        false
    }

    /// Polls the socket (for reading when `read`, for writing when output is blocked) and the
    /// timer.
    #[inline]
    pub(crate) fn poll_io(
        &mut self,
        conn: &mut Connection,
        read: bool,
        cx: &mut Context<'_>,
    ) -> Poll<IoWake> {
        if read && conn.wants_read() {
            if self.read_more {
                return Poll::Ready(IoWake::Read);
            }
            match self.stream.poll_readable(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(IoWake::Read),
                Poll::Ready(Err(e)) => {
                    conn.handle_transport_error(e.kind(), Instant::now());
                    return Poll::Ready(IoWake::Read);
                }
                Poll::Pending => {}
            }
        }
        if self.write_blocked && conn.wants_write() {
            match self.stream.poll_writable(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(IoWake::Write),
                Poll::Ready(Err(e)) => {
                    conn.handle_transport_error(e.kind(), Instant::now());
                    return Poll::Ready(IoWake::Write);
                }
                Poll::Pending => {}
            }
        }
        // Polling the timer reads the clock. While it waits (polled since set, so its firing
        // wakes this task) and the time read after this turn's wake-up is before it, it
        // cannot have fired: skip it. Were it to fire later, its wake-up polls again with
        // `woken_at` cleared. Without a deadline an armed timer may still fire once; that
        // wake-up is spurious and harmless.
        let before_timer =
            matches!((self.woken_at, self.armed), (Some(now), Some(armed)) if now < armed);
        if let Some(deadline) = self.deadline
            && !(self.timer_waits && before_timer)
        {
            while let Some(armed) = self.armed
                && Pin::new(&mut self.timer).poll(cx).is_ready()
            {
                if armed >= deadline {
                    self.timer_waits = false;
                    return Poll::Ready(IoWake::Timer);
                }
                // Fired at an old, earlier deadline: sleep on to the current one.
                self.timer.set_at(deadline);
                self.armed = Some(deadline);
            }
            self.timer_waits = self.armed.is_some();
        }
        self.woken_at = None;
        Poll::Pending
    }

    /// Acts on what [`poll_io`](Self::poll_io) reported, with `received` called after a
    /// read (a server answers messages in place with `handle_received_inline`). Returns the
    /// time, read from the clock once (after the read, for a read), for the loop turn.
    #[inline]
    pub(crate) fn on_wake_with(
        &mut self,
        wake: IoWake,
        conn: &mut Connection,
        received: impl FnOnce(&mut Connection, Instant),
    ) -> Instant {
        let now = match wake {
            IoWake::Read => {
                if conn.is_closed() || !conn.wants_read() {
                    self.read_more = false;
                    Instant::now()
                } else {
                    let (outcome, now) = self.stream.read_into(conn, received);
                    self.read_more = matches!(outcome, ReadOutcome::Data { full: true });
                    now
                }
            }
            IoWake::Write => {
                self.write_blocked = false;
                Instant::now()
            }
            IoWake::Timer => {
                // A fired timer stays silent until re-armed.
                self.armed = None;
                let now = Instant::now();
                conn.handle_timeout(now);
                now
            }
        };
        self.woken_at = Some(now);
        now
    }

    /// Publishes the connection's counters to `metrics`.
    #[inline]
    pub(crate) fn report(&mut self, conn: &Connection, metrics: &Metrics) {
        self.reported.report(conn, metrics);
    }

    /// [`report`](Self::report) after a flush, which moves only the bytes sent.
    #[inline]
    pub(crate) fn report_written(&mut self, conn: &Connection, metrics: &Metrics) {
        self.reported.report_written(conn, metrics);
    }
}
