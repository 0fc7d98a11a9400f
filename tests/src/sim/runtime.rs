//! [`SimRuntime`]: `lynn_service::Runtime` over the calling thread's [`Sim`](super::Sim),
//! its timers on the virtual clock, and the waits a scenario needs: [`sleep`],
//! [`timeout`] and [`idle`].

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use lynn_proto::{Endpoint, Instant, SocketOptions};
use lynn_service::{Runtime, Timer};

use super::{SimListener, SimStream, net, try_with, with};

/// The simulated runtime (the world is the calling thread's [`Sim`](super::Sim)).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimRuntime;

fn address(endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::Tcp(a) => a,
        Endpoint::Unix(p) => p,
    }
}

impl Runtime for SimRuntime {
    type Stream = SimStream;
    type Timer = SimTimer;
    type Listener = SimListener;

    /// Listens at `endpoint`'s address with a queue of `backlog` connections not accepted
    /// yet; port 0 takes the next free simulated port. An address already listened at is
    /// refused (`AddrInUse`).
    #[allow(clippy::manual_async_fn)]
    fn bind(
        &self,
        endpoint: Endpoint,
        backlog: u32,
    ) -> impl Future<Output = std::io::Result<SimListener>> + Send + 'static {
        let addr = address(endpoint);
        async move {
            with(|w| {
                let addr = match addr.strip_suffix(":0") {
                    Some(host) => {
                        w.next_port += 1;
                        format!("{host}:{}", w.next_port)
                    }
                    None => addr,
                };
                let backlog = w.net.listen(&addr, backlog)?;
                Ok(SimListener::new(addr, backlog))
            })
        }
    }

    fn adopt(&self, stream: SimStream, _options: &SocketOptions) -> std::io::Result<SimStream> {
        Ok(stream)
    }

    /// Connects from [`CLIENT_IP`](super::CLIENT_IP); refused when nobody listens.
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        endpoint: Endpoint,
        _options: SocketOptions,
    ) -> impl Future<Output = std::io::Result<SimStream>> + Send + 'static {
        let addr = address(endpoint);
        async move { with(|w| w.net.connect(&addr, net::CLIENT_IP)) }
    }

    fn timer(&self) -> SimTimer {
        SimTimer {
            deadline: None,
            registered: None,
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        with(|w| {
            let id = w.tasks.len();
            w.tasks.push(Some(Box::pin(task)));
            w.ready.tasks.lock().unwrap().insert(id);
        });
    }

    fn now(&self) -> Instant {
        with(|w| w.base + w.elapsed)
    }
}

/// A timer of the virtual clock.
#[derive(Debug)]
pub struct SimTimer {
    deadline: Option<Instant>,
    /// Its entry in the world's timers, replaced at each registration.
    registered: Option<(Instant, u64)>,
}

impl Timer for SimTimer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        super::count_io_poll();
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        if SimRuntime.now() >= deadline {
            return Poll::Ready(());
        }
        self.registered = Some(with(|w| {
            if let Some(old) = self.registered {
                w.timers.remove(&old);
            }
            let key = (deadline, w.next_timer);
            w.next_timer += 1;
            w.timers.insert(key, cx.waker().clone());
            key
        }));
        Poll::Pending
    }
}

impl Drop for SimTimer {
    /// A dropped timer wakes nobody, and does not move the clock.
    fn drop(&mut self) {
        if let Some(key) = self.registered {
            try_with(|w| {
                w.timers.remove(&key);
            });
        }
    }
}

/// Virtual time passed since the world began.
pub fn elapsed() -> Duration {
    with(|w| w.elapsed)
}

/// Waits `duration` of virtual time.
pub async fn sleep(duration: Duration) {
    let mut timer = SimRuntime.timer();
    timer.reset(SimRuntime.now() + duration);
    poll_fn(|cx| timer.poll_elapsed(cx)).await;
}

/// `fut`'s output, or `None` if `duration` of virtual time passes first.
pub async fn timeout<F: Future>(duration: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut timer = SimRuntime.timer();
    timer.reset(SimRuntime.now() + duration);
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        timer.poll_elapsed(cx).map(|()| None)
    })
    .await
}

/// Completes once every task of the world waits (on a stream, a channel or a timer), with
/// no virtual time passed: what was sent has been handled as far as it can be.
pub async fn idle() {
    let mut since = None;
    poll_fn(|cx| {
        with(|w| {
            if since.is_some_and(|epoch| w.idle_epoch > epoch) {
                return Poll::Ready(());
            }
            since.get_or_insert(w.idle_epoch);
            w.idle.push(cx.waker().clone());
            Poll::Pending
        })
    })
    .await;
}

/// Completes once the clock has moved to the next timer (whoever set it): a wait for
/// something timed to happen, at no particular time. Panics through `block_on` when no
/// timer is set (nothing could ever happen).
pub async fn tick() {
    let mut since = None;
    poll_fn(|cx| {
        with(|w| {
            if since.is_some_and(|epoch| w.tick_epoch > epoch) {
                return Poll::Ready(());
            }
            since.get_or_insert(w.tick_epoch);
            w.ticks.push(cx.waker().clone());
            Poll::Pending
        })
    })
    .await;
}
