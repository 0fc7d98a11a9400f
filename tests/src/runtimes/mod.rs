//! The [`Runtime`](crate::runtime::Runtime) impls, one per adapter.

mod background;
mod blocking;
mod smol;
mod tokio;

pub use blocking::{BlockingClient, BlockingRuntime, BlockingServer};
pub use smol::{SmolClient, SmolRuntime, SmolServer};
pub use tokio::{TokioClient, TokioRuntime, TokioServer, TokioWorkersRuntime};
