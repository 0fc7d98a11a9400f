//! A deterministic simulated runtime: [`SimRuntime`] implements `lynn_service::Runtime`
//! with in-memory streams, a virtual clock and a seeded task order, so lynn's shared server
//! and client run with no sockets and no sleeps, the same way for the same seed.
//!
//! [`Sim::block_on`] runs the simulation on the calling thread until a future completes:
//! it polls ready tasks in an order drawn from the seed, and when none is ready it moves
//! the clock to the next timer. Time passes only there, so a 180 s timeout costs nothing.
//! Reads hand out at most a seeded number of bytes, so frames arrive split in different
//! places for different seeds.
//!
//! - `runtime`: [`SimRuntime`], its timers, and [`sleep`], [`timeout`] and [`idle`].
//! - `net`: in-memory streams and listeners; every connection gets a peer address of
//!   its own.
//! - [`raw`]: a peer that writes and reads exact bytes over a [`SimStream`].
//! - [`raw_server`]: [`crate::raw_server`]'s hand-written lynn_tcp-like server.
//! - [`server`]: the real shared server (`lynn_service::server::Server<(), SimRuntime>`)
//!   serving [`crate::app`].
//! - [`scenarios`]: the conformance scenarios as async functions over the simulation.

mod net;
pub mod raw;
pub mod raw_server;
mod runtime;
pub mod scenarios;
pub mod server;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use lynn_proto::Instant;

pub use net::{CLIENT_IP, SimListener, SimStream};
pub use runtime::{SimRuntime, SimTimer, elapsed, idle, sleep, tick, timeout};
pub use server::SimServer;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Steps a `block_on` may take before the simulation is declared stuck.
const MAX_STEPS: u64 = 20_000_000;

/// Task polls in a row without the clock moving before a task is declared spinning: a
/// loop that wakes itself at once, which the simulation cannot tell from progress.
const MAX_POLLS_AT_ONE_INSTANT: u64 = 1_000_000;

/// Stream and timer polls within one poll of a task before it is declared spinning: a
/// loop that never yields, which would hang the simulation (and hog a real runtime's
/// thread).
const MAX_IO_POLLS_IN_ONE_POLL: u64 = 1_000_000;

/// Virtual time a `block_on` may reach before the simulation is declared stuck (a future
/// that never completes while timers keep firing, a heartbeat say).
const MAX_VIRTUAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the tasks' wakers share: which tasks are ready. A set ordered by task id, so the
/// next pick depends on which tasks are ready and on the seed, not on the order they were
/// woken in (which may come from a `HashMap`'s iteration order, different in every run).
#[derive(Default)]
struct Ready {
    tasks: Mutex<BTreeSet<usize>>,
}

struct TaskWaker {
    id: usize,
    ready: Arc<Ready>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.tasks.lock().unwrap().insert(self.id);
    }
}

/// The simulated world of one test thread.
struct World {
    base: Instant,
    elapsed: Duration,
    seed: u64,
    tasks: Vec<Option<Task>>,
    ready: Arc<Ready>,
    /// Timers by deadline, with the wakers waiting on them.
    timers: BTreeMap<(Instant, u64), Waker>,
    next_timer: u64,
    /// Futures waiting for the world to be idle (see [`idle`]).
    idle: Vec<Waker>,
    /// How many times the world was idle (see [`idle`]).
    idle_epoch: u64,
    /// Futures waiting for the clock to move (see [`tick`]).
    ticks: Vec<Waker>,
    /// How many times the clock moved.
    tick_epoch: u64,
    /// The last simulated port handed to a listener bound at port 0.
    next_port: u16,
    net: net::Net,
    /// A digest of every scheduling choice and read split, to tell runs apart.
    digest: u64,
    /// Task polls so far.
    polls: u64,
    /// Reads that handed out bytes so far.
    reads: u64,
    /// Task polls since the clock last moved, in all and per task.
    polls_at_instant: u64,
    spinning: BTreeMap<usize, u64>,
    /// Stream and timer polls since the current task (or the main future) was polled.
    io_polls: u64,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fn with<T>(f: impl FnOnce(&mut World) -> T) -> T {
    WORLD.with(|w| f(w.borrow_mut().as_mut().expect("inside Sim::block_on")))
}

/// Like [`with`], doing nothing once the world is gone (for destructors).
fn try_with(f: impl FnOnce(&mut World)) {
    WORLD.with(|w| {
        if let Ok(mut w) = w.try_borrow_mut()
            && let Some(w) = w.as_mut()
        {
            f(w);
        }
    });
}

/// The next number of the world's seeded generator (xorshift).
fn random() -> u64 {
    with(|w| {
        w.seed ^= w.seed << 13;
        w.seed ^= w.seed >> 7;
        w.seed ^= w.seed << 17;
        w.seed
    })
}

/// Counts one poll of a stream or a timer; panics when the task being polled keeps polling
/// without ever yielding.
fn count_io_poll() {
    with(|w| {
        w.io_polls += 1;
        assert!(
            w.io_polls < MAX_IO_POLLS_IN_ONE_POLL,
            "a task spins at {:?}: {} stream and timer polls without yielding",
            w.elapsed,
            w.io_polls
        );
    });
}

/// Mixes `choice` into the world's digest.
fn record(w: &mut World, choice: u64) {
    w.digest = (w.digest ^ choice).wrapping_mul(0x0000_0100_0000_01b3);
}

/// A simulation on the calling thread. Dropping it ends the world (and its tasks).
pub struct Sim;

/// What a run of the simulation did, to compare runs: the same seed gives the same trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Virtual time passed.
    pub elapsed: Duration,
    /// Task polls.
    pub polls: u64,
    /// Reads that handed out bytes (how the seed split the streams).
    pub reads: u64,
    /// A digest of every scheduling choice and every read's size.
    pub digest: u64,
}

impl Sim {
    /// A new world on this thread, its order of tasks and read splits drawn from `seed`.
    pub fn new(seed: u64) -> Sim {
        let world = World {
            base: Instant::now(),
            elapsed: Duration::ZERO,
            seed: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            tasks: Vec::new(),
            ready: Arc::default(),
            timers: BTreeMap::new(),
            next_timer: 0,
            idle: Vec::new(),
            idle_epoch: 0,
            ticks: Vec::new(),
            tick_epoch: 0,
            next_port: 20000,
            net: net::Net::default(),
            digest: 0xcbf2_9ce4_8422_2325,
            polls: 0,
            reads: 0,
            polls_at_instant: 0,
            spinning: BTreeMap::new(),
            io_polls: 0,
        };
        WORLD.with(|w| *w.borrow_mut() = Some(world));
        Sim
    }

    /// Time passed in the simulation.
    pub fn elapsed(&self) -> Duration {
        with(|w| w.elapsed)
    }

    /// What the simulation did so far.
    pub fn trace(&self) -> Trace {
        with(|w| Trace {
            elapsed: w.elapsed,
            polls: w.polls,
            reads: w.reads,
            digest: w.digest,
        })
    }

    /// Runs the world until `fut` completes; panics when nothing can make progress.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let main = Arc::new(Ready::default());
        let waker = Waker::from(Arc::new(TaskWaker {
            id: usize::MAX,
            ready: Arc::clone(&main),
        }));
        let mut cx = Context::from_waker(&waker);
        let mut poll_main = true;
        for _ in 0..MAX_STEPS {
            if poll_main {
                with(|w| w.io_polls = 0);
                if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                    return out;
                }
                poll_main = false;
            }
            if std::mem::take(&mut *main.tasks.lock().unwrap()).contains(&usize::MAX) {
                poll_main = true;
                continue;
            }
            if run_one() || wake_idle() {
                continue;
            }
            assert!(
                advance(),
                "the simulation is stuck: nothing ready, no timer"
            );
            let elapsed = self.elapsed();
            assert!(elapsed < MAX_VIRTUAL, "the simulation ran for {elapsed:?}");
        }
        panic!("the simulation took more than {MAX_STEPS} steps");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Tasks hold streams and wakers of this world: drop them outside the borrow.
        let world = WORLD.with(|w| w.borrow_mut().take());
        drop(world);
    }
}

/// Polls one ready task, picked by the seed. False when none is ready.
fn run_one() -> bool {
    let picked = with(|w| {
        let mut ready = w.ready.tasks.lock().unwrap();
        let n = ready.len();
        if n == 0 {
            return None;
        }
        let id = *ready.iter().nth((w.seed as usize) % n).expect("in range");
        ready.remove(&id);
        drop(ready);
        record(w, id as u64);
        let task = w.tasks[id].take();
        Some((id, task, Arc::clone(&w.ready)))
    });
    let Some((id, task, ready)) = picked else {
        return false;
    };
    random();
    // A task woken after it ended.
    let Some(mut task) = task else {
        return true;
    };
    with(|w| {
        w.polls += 1;
        w.io_polls = 0;
        w.polls_at_instant += 1;
        *w.spinning.entry(id).or_default() += 1;
        assert!(
            w.polls_at_instant < MAX_POLLS_AT_ONE_INSTANT,
            "tasks spin at {:?} without the clock moving (polls per task: {:?})",
            w.elapsed,
            w.spinning
        );
    });
    let waker = Waker::from(Arc::new(TaskWaker { id, ready }));
    if task
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending()
    {
        with(|w| w.tasks[id] = Some(task));
    }
    true
}

/// Wakes the futures waiting for the world to be idle. False when there are none.
fn wake_idle() -> bool {
    let waiting = with(|w| {
        w.idle_epoch += 1;
        std::mem::take(&mut w.idle)
    });
    let any = !waiting.is_empty();
    waiting.into_iter().for_each(Waker::wake);
    any
}

/// Moves the clock to the earliest timer and wakes what waits on it, and what waits for
/// the clock to move. False when no timer is set.
fn advance() -> bool {
    let due = with(|w| {
        let (&(at, id), _) = w.timers.iter().next()?;
        let waker = w.timers.remove(&(at, id))?;
        w.spinning.clear();
        w.polls_at_instant = 0;
        w.elapsed = w.elapsed.max(at.saturating_duration_since(w.base));
        w.tick_epoch += 1;
        Some((waker, std::mem::take(&mut w.ticks)))
    });
    match due {
        Some((waker, ticks)) => {
            waker.wake();
            ticks.into_iter().for_each(Waker::wake);
            true
        }
        None => false,
    }
}
