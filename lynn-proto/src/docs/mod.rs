//! Long-form guides. They are documentation only: every code block in them is compiled and
//! run as a doc test.
//!
//! - [`embedding`](crate::docs::embedding): driving [`Connection`](crate::Connection),
//!   [`Admission`](crate::admission::Admission) and [`Router`](crate::router::Router) from
//!   your own loop (mio/epoll, a game tick, a simulator): the exact order of calls, what each
//!   `poll_*` returns, how backpressure shows, how time enters, and the mistakes to avoid.

#[doc = include_str!("embedding.md")]
pub mod embedding {}
