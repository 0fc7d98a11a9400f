//! A deterministic simulated runtime: [`SimRuntime`] implements `lynn_service::Runtime`
//! with in-memory streams, a virtual clock and a seeded task order, so the shared client
//! runs with no sockets and no sleeps, the same way for the same seed.
//!
//! [`Sim::block_on`] runs the simulation on the calling thread until a future completes:
//! it polls ready tasks in an order drawn from the seed, and when none is ready it moves
//! the clock to the next timer. Time passes only there, so a 30 s timeout costs nothing.
//! Reads hand out at most a seeded number of bytes, so frames arrive split in different
//! places for different seeds.

mod net;
mod server;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use lynn_proto::{Endpoint, Instant, SocketOptions};
use lynn_service::Runtime;

pub use net::{SimListener, SimStream};
pub use server::serve;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Steps a `block_on` may take before the simulation is declared stuck.
const MAX_STEPS: u64 = 5_000_000;

/// What the tasks' wakers share: which tasks are ready.
#[derive(Default)]
struct Ready {
    tasks: Mutex<Vec<usize>>,
}

struct TaskWaker {
    id: usize,
    ready: Arc<Ready>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        let mut tasks = self.ready.tasks.lock().unwrap();
        if !tasks.contains(&self.id) {
            tasks.push(self.id);
        }
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
    /// The last simulated port handed to a listener bound at port 0.
    next_port: u16,
    net: net::Net,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fn with<T>(f: impl FnOnce(&mut World) -> T) -> T {
    WORLD.with(|w| f(w.borrow_mut().as_mut().expect("inside Sim::block_on")))
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

/// A simulation on the calling thread. Dropping it ends the world (and its tasks).
pub struct Sim;

impl Sim {
    /// A new world on this thread, its order of tasks drawn from `seed`.
    pub fn new(seed: u64) -> Sim {
        let world = World {
            base: Instant::now(),
            elapsed: Duration::ZERO,
            seed: seed | 1,
            tasks: Vec::new(),
            ready: Arc::default(),
            timers: BTreeMap::new(),
            next_timer: 0,
            next_port: 20000,
            net: net::Net::default(),
        };
        WORLD.with(|w| *w.borrow_mut() = Some(world));
        Sim
    }

    /// Time passed in the simulation.
    pub fn elapsed(&self) -> Duration {
        with(|w| w.elapsed)
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
                if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                    return out;
                }
                poll_main = false;
            }
            if !main.tasks.lock().unwrap().is_empty() {
                main.tasks.lock().unwrap().clear();
                poll_main = true;
                continue;
            }
            if run_one() {
                continue;
            }
            assert!(
                advance(),
                "the simulation is stuck: nothing ready, no timer"
            );
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
        if ready.is_empty() {
            return None;
        }
        let i = (w.seed as usize) % ready.len();
        let id = ready.swap_remove(i);
        drop(ready);
        let task = w.tasks[id].take()?;
        Some((id, task, Arc::clone(&w.ready)))
    });
    random();
    let Some((id, mut task, ready)) = picked else {
        return with(|w| !w.ready.tasks.lock().unwrap().is_empty());
    };
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

/// Moves the clock to the earliest timer and wakes what waits on it. False when no timer
/// is set.
fn advance() -> bool {
    let due = with(|w| {
        let (&(at, id), _) = w.timers.iter().next()?;
        let waker = w.timers.remove(&(at, id))?;
        w.elapsed = w.elapsed.max(at.saturating_duration_since(w.base));
        Some(waker)
    });
    match due {
        Some(waker) => {
            waker.wake();
            true
        }
        None => false,
    }
}

/// Stops listening at `addr`, if the world is still there (a listener may outlive it).
fn unlisten(addr: &str) {
    let _ = WORLD.with(|w| w.borrow_mut().as_mut().map(|w| w.net.unlisten(addr)));
}

/// The simulated runtime (the world is the calling thread's [`Sim`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimRuntime;

impl Runtime for SimRuntime {
    type Stream = SimStream;
    type Timer = SimTimer;
    type Listener = SimListener;

    /// Listens at `endpoint`'s address; port 0 takes the next free simulated port.
    #[allow(clippy::manual_async_fn)]
    fn bind(
        &self,
        endpoint: Endpoint,
        _backlog: u32,
    ) -> impl Future<Output = std::io::Result<SimListener>> + Send + 'static {
        let addr = match endpoint {
            Endpoint::Tcp(a) => a,
            Endpoint::Unix(p) => p,
        };
        async move {
            Ok(with(|w| {
                let addr = match addr.strip_suffix(":0") {
                    Some(host) => {
                        w.next_port += 1;
                        format!("{host}:{}", w.next_port)
                    }
                    None => addr,
                };
                let backlog = w.net.listen(&addr);
                SimListener::new(addr, backlog)
            }))
        }
    }

    fn adopt(&self, stream: SimStream, _options: &SocketOptions) -> std::io::Result<SimStream> {
        Ok(stream)
    }

    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        endpoint: Endpoint,
        _options: SocketOptions,
    ) -> impl Future<Output = std::io::Result<SimStream>> + Send + 'static {
        let addr = match endpoint {
            Endpoint::Tcp(a) => a,
            Endpoint::Unix(p) => p,
        };
        async move { with(|w| w.net.connect(&addr)) }
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
            w.ready.tasks.lock().unwrap().push(id);
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

impl lynn_service::Timer for SimTimer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
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
