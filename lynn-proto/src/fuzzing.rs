//! Fuzz targets for the core, usable both by cargo-fuzz and by ordinary tests.
//!
//! Each function takes raw bytes, turns them into a structured scenario with
//! [`arbitrary::Unstructured`], runs it against the real code and checks it against a small
//! reference model. A function panics (through `assert!`) exactly when an invariant is
//! violated, and returns normally for every other input, so the same function serves as a
//! libFuzzer entry point (`fuzz/fuzz_targets/*.rs`) and replays saved inputs in tests
//! (`tests/tests/fuzz_replay.rs` runs every file under `fuzz/seeds/<target>/`).
//!
//! | target         | checks                                                                     |
//! |----------------|----------------------------------------------------------------------------|
//! | [`decoder`]    | split invariance, exact re-encoding, error kind/frame/offset, `bytes_needed` |
//! | [`connection`] | events, in-place answers, output, reply order, stats, bounds, timers, close |
//! | [`admission`]  | open counts, per-IP and global bounds, table bound, rate windows, release   |
//! | [`reconnect`]  | back-off bounds, attempts, timer honesty, terminal states                    |
//! | [`client_calls`] | answers once, reply matching, timeouts, pending and offline bounds, timers |
//!
//! Time is simulated: every scenario takes one `Instant::now()` as its base and adds
//! durations to it; nothing sleeps.

mod admission_target;
mod client_calls_target;
mod connection_target;
mod decoder_target;
mod reconnect_target;

use arbitrary::Unstructured;

/// Frame decoder: an arbitrary stream (well-formed frames, forged headers, raw bytes) under
/// arbitrary marks and `max_frame_len`, decoded whole and under an arbitrary chunking.
///
/// Checks that both decodes give the same frames and the same error (kind, frame index,
/// offset), that an error is reported as soon as the bytes proving it are present, that each
/// frame re-encodes to exactly its input bytes, that an error's offset is the sum of the
/// preceding frame lengths and names what is really wrong at that offset, and that the
/// encoder refuses exactly the bodies that exceed the limit.
pub fn decoder(data: &[u8]) {
    let _ = decoder_target::run(&mut Unstructured::new(data));
}

/// [`Connection`](crate::Connection): an arbitrary valid configuration with small limits,
/// driven by an arbitrary sequence of operations (peer bytes, reads, reads answered in place
/// through `handle_received_inline`, writes, sends, completions, time, close, end of stream,
/// transport errors, aborts), then closed and drained to its end. The in-place callback
/// plays an arbitrary answer per message: replies (some too large for the peer), no reply,
/// deferring, withdrawing a reply, replying twice.
///
/// Checks, against a reference model that follows the connection's decoding, that events
/// are exactly the decoded frames in order, that exactly the messages allowed to be answered in
/// place (nothing queued or in flight before them, send queue below its bound) are offered,
/// with ids shared with events, that output bytes are exactly the accepted sends, replies (in
/// request order; never a withdrawn or refused one) and heartbeats, that every counter,
/// `wants_read`, `has_events` and `in_flight` match, that the send queue stays within its
/// documented bound, that timers are honest, that `Closed` comes exactly once with a reason
/// that fits what happened, and that a connection asked to close always gets there.
pub fn connection(data: &[u8]) {
    let _ = connection_target::run(&mut Unstructured::new(data));
}

/// [`Admission`](crate::admission::Admission): an arbitrary small configuration (invalid ones
/// must be refused) under arbitrary admit, release and time steps over a few addresses.
///
/// Checks open counts against a model, the global, per-IP and table bounds, the token-bucket
/// bound on admissions in any time window, exact decisions where the model can predict them,
/// and that releasing every permit brings the open count back to zero.
pub fn admission(data: &[u8]) {
    let _ = admission_target::run(&mut Unstructured::new(data));
}

/// [`Reconnect`](crate::reconnect::Reconnect): an arbitrary configuration (invalid ones must
/// be refused) under arbitrary polls, outcomes, time steps, stops and resets.
///
/// Checks every step against a reference state machine: delays within the jittered
/// exponential bounds, `attempts <= max_attempts`, timer honesty, and that `GaveUp` (until
/// reset) and `Stopped` are terminal.
pub fn reconnect(data: &[u8]) {
    let _ = reconnect_target::run(&mut Unstructured::new(data));
}

/// [`ClientCalls`](crate::client_calls::ClientCalls) with a client
/// [`Connection`](crate::Connection) against a lynn server's `Connection`: an arbitrary small
/// configuration (correlation ids or v1 order, `max_pending_requests`, `offline_queue`,
/// `request_timeout`, send queue bound, frame limit) under arbitrary sends, requests, server
/// answers (out of order, silent, under another method), pushes, forged reply frames with
/// arbitrary ids, time, byte delivery in arbitrary chunks, connection loss and `finish`.
///
/// Checks, against a model of the pending requests learnt from the client's output, that
/// every call is answered exactly once and as its kind, that each message is a reply, a push
/// or late exactly as the model predicts, that a reply never goes to another request (with
/// ids always; by order until a push or an unanswered request shifts it, as documented),
/// that `Late` only names ids not pending, that a timeout fails exactly the requests due
/// (`Timeout`, or `PushesUnread` with the given count) and, without ids, every other one with
/// `CorrelationLost` and closes the connection with `CloseReason::CorrelationLost` (with ids it
/// leaves the connection alone), that at most `max_pending_requests` are pending and
/// `TooManyPending` only comes when that many are, that while disconnected calls are kept
/// offline exactly up to `offline_queue`, that no call is sent twice, altered or after its
/// answer, that `poll_timeout` is the earliest deadline, that once everything is delivered
/// no call is left behind while requests have room, and that `finish` answers everything
/// left.
pub fn client_calls(data: &[u8]) {
    let _ = client_calls_target::run(&mut Unstructured::new(data));
}
