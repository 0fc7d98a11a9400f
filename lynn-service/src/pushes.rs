//! [`Pushes`]: a client's bounded queue of pushes (messages that are no reply) between its
//! background task or thread and the application's `recv`, with the configured
//! [`PushFull`] policy. One type for every adapter: `recv` for async callers,
//! [`recv_deadline`](Pushes::recv_deadline) for threads.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::Metrics;
pub use event_listener::EventListener;
use event_listener::{Event, Listener};
use lynn_proto::{Message, PushFull};

/// What [`Pushes::offer`] did with a push.
#[derive(Debug)]
pub enum Offer {
    /// Queued for `recv`.
    Queued,
    /// Queued, after dropping the oldest waiting push ([`PushFull::DropOldest`]); or
    /// dropped itself ([`PushFull::DropNewest`]). Counted in the metrics.
    Dropped,
    /// The queue is full under [`PushFull::Wait`]: the push is given back. Keep it, stop
    /// taking the connection's events, and offer it again once the listener completes
    /// (`recv` took a push since this offer).
    Full(Message, EventListener),
}

/// Why [`Pushes::recv_deadline`] returned no push.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// The deadline passed first.
    Timeout,
    /// The client is over and every push was taken.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Message>,
    closed: bool,
}

/// The push queue shared by a client's task (which offers) and its handles (which take).
#[derive(Debug)]
pub struct Pushes {
    state: Mutex<State>,
    limit: usize,
    policy: PushFull,
    /// Fires when a push is queued or the queue closes.
    pushed: Event,
    /// Fires when `recv` takes a push.
    room: Event,
}

impl Pushes {
    /// An empty queue of at most `limit` pushes (at least 1).
    pub fn new(limit: usize, policy: PushFull) -> Self {
        Pushes {
            state: Mutex::default(),
            limit: limit.max(1),
            policy,
            pushed: Event::new(),
            room: Event::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `msg` under the policy; a drop is counted in `metrics`.
    pub fn offer(&self, msg: Message, metrics: &Metrics) -> Offer {
        let mut state = self.lock();
        if state.queue.len() >= self.limit {
            match self.policy {
                // Listening under the lock: any `recv` after this look wakes the listener.
                PushFull::Wait => return Offer::Full(msg, self.room.listen()),
                PushFull::DropNewest => {
                    metrics.message_dropped();
                    return Offer::Dropped;
                }
                _ => {
                    state.queue.pop_front();
                    state.queue.push_back(msg);
                    drop(state);
                    metrics.message_dropped();
                    self.pushed.notify(1);
                    return Offer::Dropped;
                }
            }
        }
        state.queue.push_back(msg);
        drop(state);
        self.pushed.notify(1);
        Offer::Queued
    }

    /// Pushes waiting for `recv`.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no push waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No more pushes will come: `recv` returns `None` once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.pushed.notify(usize::MAX);
    }

    /// Takes the oldest push: `Ok(Some)`, `Ok(None)` when none waits, `Err(Closed)` when
    /// none ever will.
    pub fn try_recv(&self) -> Result<Option<Message>, RecvError> {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(msg) => {
                drop(state);
                self.room.notify(1);
                Ok(Some(msg))
            }
            None if state.closed => Err(RecvError::Closed),
            None => Ok(None),
        }
    }

    /// The next push; `None` once the queue is closed and empty.
    pub async fn recv(&self) -> Option<Message> {
        loop {
            if let Some(got) = self.try_recv().transpose() {
                return got.ok();
            }
            let listener = self.pushed.listen();
            // Checked again: a push may have come between the look and the listen.
            if let Some(got) = self.try_recv().transpose() {
                return got.ok();
            }
            listener.await;
        }
    }

    /// The next push, blocking the thread until `deadline` (`None`: no deadline).
    pub fn recv_deadline(&self, deadline: Option<Instant>) -> Result<Message, RecvError> {
        loop {
            if let Some(got) = self.try_recv().transpose() {
                return got;
            }
            let listener = self.pushed.listen();
            if let Some(got) = self.try_recv().transpose() {
                return got;
            }
            match deadline {
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return self.try_recv()?.ok_or(RecvError::Timeout);
                    }
                }
                None => listener.wait(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn msg(n: u8) -> Message {
        Message {
            method: 1,
            body: Bytes::from(vec![n]),
        }
    }

    fn bodies(p: &Pushes) -> Vec<u8> {
        std::iter::from_fn(|| p.try_recv().ok().flatten())
            .map(|m| m.body[0])
            .collect()
    }

    #[test]
    fn each_policy_at_the_bound() {
        let metrics = Metrics::default();
        let oldest = Pushes::new(2, PushFull::DropOldest);
        let newest = Pushes::new(2, PushFull::DropNewest);
        let wait = Pushes::new(2, PushFull::Wait);
        for n in 0..4 {
            oldest.offer(msg(n), &metrics);
            newest.offer(msg(n), &metrics);
        }
        assert!(matches!(wait.offer(msg(0), &metrics), Offer::Queued));
        assert!(matches!(wait.offer(msg(1), &metrics), Offer::Queued));
        assert!(matches!(wait.offer(msg(2), &metrics), Offer::Full(m, _) if m == msg(2)));
        assert_eq!(bodies(&oldest), [2, 3]);
        assert_eq!(bodies(&newest), [0, 1]);
        assert_eq!(bodies(&wait), [0, 1]);
        assert_eq!(metrics.messages_dropped(), 4);
    }

    #[test]
    fn blocking_recv_wakes_on_a_push_and_ends_on_close() {
        let metrics = Metrics::default();
        let pushes = Arc::new(Pushes::new(4, PushFull::Wait));
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(pushes.recv_deadline(Some(soon)), Err(RecvError::Timeout));
        let taker = {
            let pushes = Arc::clone(&pushes);
            std::thread::spawn(move || {
                let first = pushes.recv_deadline(None);
                (first, pushes.recv_deadline(None))
            })
        };
        pushes.offer(msg(7), &metrics);
        pushes.close();
        let (first, second) = taker.join().unwrap();
        assert_eq!(first, Ok(msg(7)));
        assert_eq!(second, Err(RecvError::Closed));
    }
}
