//! [`TaskSet`]: the tasks of one server (its connections, the metrics endpoint), run inside
//! the future of `Server::serve`, wherever that future is polled.
//!
//! async-executor's `Executor::run` cost ~650 instructions per task wake-up (a global and
//! a per-runner queue with stealing between them, sleeper bookkeeping): it is built for
//! several threads running one executor. A server's tasks run only where its `serve`
//! future is polled, so one queue under a lock is enough.
//!
//! On Linux the set also drives its connections' [`Epoll`]: between batches of tasks it
//! takes the kernel's readiness events (one `epoll_wait` that does not wait), and only when
//! nothing is left to run does it sleep in async-io's reactor.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use async_task::{Builder, Runnable};
use futures_lite::future;
use futures_util::FutureExt as _;
use slab::Slab;

#[cfg(target_os = "linux")]
use crate::edge::Epoll;

/// Tasks run per poll of [`TaskSet::run`] before it yields to its caller (which polls
/// async-io's reactor then, when it is `async_io::block_on`), as `Executor::run` does
/// after 200.
const BATCH: usize = 128;

/// A set of tasks run by [`run`](Self::run); dropping the set drops the tasks' futures.
pub(crate) struct TaskSet {
    queue: Arc<Queue>,
    #[cfg(target_os = "linux")]
    epoll: Arc<Epoll>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Tasks woken and not run yet, in wake-up order.
    ready: VecDeque<Runnable>,
    /// The waker of `run` while it has nothing to run.
    idle: Option<Waker>,
    /// A waker of every task not finished yet, to drop them all with the set.
    live: Slab<Waker>,
    /// Set when the set is dropped: a task woken later is dropped at once.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A task's schedule function: queues it and wakes `run` if it waits.
    fn schedule(&self, runnable: Runnable) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            // Drops the future (outside the lock: its drop takes the lock).
            drop(runnable);
            return;
        }
        state.ready.push_back(runnable);
        let idle = state.idle.take();
        drop(state);
        if let Some(waker) = idle {
            waker.wake();
        }
    }

    /// `run` is being polled: the waker [`sleep`](Self::sleep) left is not needed (waking
    /// it now would only make the caller poll `run` again for nothing).
    fn awake(&self) {
        self.lock().idle = None;
    }

    /// Moves the queued tasks into `taken` (empty): one lock for the lot rather than one
    /// per task (~40 instructions per task run). Swapped, so both deques keep their
    /// allocations.
    fn take(&self, taken: &mut VecDeque<Runnable>) {
        std::mem::swap(&mut self.lock().ready, taken);
    }

    /// Puts tasks taken and not run back in front of the queue (they were woken first).
    fn put_back(&self, taken: &mut VecDeque<Runnable>) {
        let mut state = self.lock();
        taken.append(&mut state.ready);
        std::mem::swap(&mut state.ready, taken);
    }

    /// Leaves `waker` to be woken by the next [`schedule`](Self::schedule), unless a task
    /// is queued already (then returns `false`).
    fn sleep(&self, waker: &Waker) -> bool {
        let mut state = self.lock();
        if !state.ready.is_empty() {
            return false;
        }
        if !state.idle.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.idle = Some(waker.clone());
        }
        true
    }
}

/// Tasks [`run`](TaskSet::run) took from the queue and has not run yet (it runs at most
/// [`BATCH`] per poll). Those left when its future is dropped go back to the queue.
struct Taken<'a> {
    queue: &'a Queue,
    tasks: VecDeque<Runnable>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if !self.tasks.is_empty() {
            self.queue.put_back(&mut self.tasks);
        }
    }
}

/// Removes a task from the live list when its future completes or is dropped.
struct Unlist {
    queue: Arc<Queue>,
    key: usize,
}

impl Drop for Unlist {
    fn drop(&mut self) {
        self.queue.lock().live.try_remove(self.key);
    }
}

impl TaskSet {
    /// An empty set.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(TaskSet {
            queue: Arc::default(),
            #[cfg(target_os = "linux")]
            epoll: Epoll::new()?,
        })
    }

    /// The epoll instance the set's connections register with.
    #[cfg(target_os = "linux")]
    pub(crate) fn epoll(&self) -> &Arc<Epoll> {
        &self.epoll
    }

    /// Adds a task running `future`. A panic in it ends only that task.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        let mut state = self.queue.lock();
        let entry = state.live.vacant_entry();
        let unlist = Unlist {
            queue: Arc::clone(&self.queue),
            key: entry.key(),
        };
        let queue = Arc::clone(&self.queue);
        // `unlist` is dropped with the future, or when it completes. Not an `async` block
        // that awaits `future`: that holds `future` twice (captured, then awaited), so a
        // connection's task took 4 KB rather than 2, and its state byte, read at every
        // wake-up, sat at the end, on another page than the rest: one more TLB miss per
        // response with 1,024 connections.
        let (runnable, task) = Builder::new().propagate_panic(true).spawn(
            move |()| future.map(move |()| drop(unlist)),
            move |runnable| queue.schedule(runnable),
        );
        entry.insert(runnable.waker());
        drop(state);
        task.detach();
        runnable.schedule();
    }

    /// Runs `main` and the set's tasks until `main` completes.
    pub(crate) async fn run<T>(&self, main: impl Future<Output = T>) -> T {
        let mut main = pin!(main);
        let mut taken = Taken {
            queue: &self.queue,
            tasks: VecDeque::new(),
        };
        future::poll_fn(|cx| {
            self.queue.awake();
            if let Poll::Ready(out) = main.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            let mut ran = 0;
            loop {
                while ran < BATCH {
                    if taken.tasks.is_empty() {
                        self.queue.take(&mut taken.tasks);
                    }
                    let Some(runnable) = taken.tasks.pop_front() else {
                        break;
                    };
                    runnable.run();
                    ran += 1;
                }
                #[cfg(target_os = "linux")]
                let woke = self.epoll.poll_events();
                #[cfg(not(target_os = "linux"))]
                let woke = false;
                if ran == BATCH {
                    // More may be left to run: let the caller poll its reactor first.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                if !woke && self.queue.sleep(cx.waker()) {
                    #[cfg(target_os = "linux")]
                    self.epoll.wait(cx);
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}

impl Drop for TaskSet {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.closed = true;
        let live = std::mem::take(&mut state.live);
        let ready = std::mem::take(&mut state.ready);
        drop(state);
        // Dropping a queued task drops its future; waking a waiting one queues it on the
        // closed set, which drops it.
        drop(ready);
        for (_, waker) in live {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_set_drops_its_waiting_tasks() {
        let set = TaskSet::new().unwrap();
        let (held, watch) = async_channel::bounded::<()>(1);
        let (started, wait_started) = async_channel::bounded(1);
        set.spawn(async move {
            let _held = held;
            started.send(()).await.unwrap();
            future::pending::<()>().await;
        });
        async_io::block_on(set.run(wait_started.recv())).unwrap();
        assert!(!watch.is_closed());
        drop(set);
        assert!(watch.is_closed());
    }

    #[test]
    fn a_panicking_task_ends_alone() {
        let set = TaskSet::new().unwrap();
        set.spawn(async { panic!("a task panics on purpose") });
        let (tx, rx) = async_channel::bounded(1);
        set.spawn(async move { tx.send(7).await.unwrap() });
        assert_eq!(async_io::block_on(set.run(rx.recv())), Ok(7));
    }

    #[test]
    fn a_task_leaves_the_set_when_it_ends_or_panics() {
        let set = TaskSet::new().unwrap();
        set.spawn(async { panic!("a task panics on purpose") });
        set.spawn(async {});
        let (tx, rx) = async_channel::bounded(1);
        set.spawn(async move { tx.send(()).await.unwrap() });
        assert_eq!(set.queue.lock().live.len(), 3);
        async_io::block_on(set.run(rx.recv())).unwrap();
        // The third task ended once its value was sent, before `run` returned.
        assert_eq!(set.queue.lock().live.len(), 0);
    }

    #[test]
    fn a_task_woken_from_another_thread_runs() {
        let set = TaskSet::new().unwrap();
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let (done, wait_done) = async_channel::bounded(1);
        set.spawn(async move {
            let n = rx.recv().await.unwrap();
            done.send(n + 1).await.unwrap();
        });
        let sender = std::thread::spawn(move || tx.send_blocking(1).unwrap());
        assert_eq!(async_io::block_on(set.run(wait_done.recv())), Ok(2));
        sender.join().unwrap();
    }

    #[test]
    fn a_task_that_never_waits_does_not_starve_the_caller() {
        let set = TaskSet::new().unwrap();
        set.spawn(async {
            loop {
                future::yield_now().await;
            }
        });
        // Ready the second time it is polled: only if `run` hands control back.
        async_io::block_on(set.run(future::yield_now()));
    }

    #[test]
    fn tasks_taken_and_not_run_when_run_returns_run_next_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let set = TaskSet::new().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..BATCH + 10 {
            let done = Arc::clone(&done);
            set.spawn(async move {
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // The first poll takes every task and runs `BATCH` of them; `main` is done at the
        // second, before the rest run.
        async_io::block_on(set.run(future::yield_now()));
        assert_eq!(done.load(Ordering::SeqCst), BATCH);
        async_io::block_on(set.run(future::yield_now()));
        assert_eq!(done.load(Ordering::SeqCst), BATCH + 10);
    }
}
