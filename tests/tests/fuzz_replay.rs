//! Replays the saved fuzz inputs as ordinary tests.
//!
//! Every file under `fuzz/seeds/<target>/` (hand-made seeds and minimised crash inputs that
//! now pass) runs through the matching `lynn_proto::fuzzing` function, so `cargo test`
//! keeps each fixed bug fixed without cargo-fuzz or a nightly toolchain. Inputs for bugs
//! still open live under `fuzz/known-bugs/<target>/` and replay in an ignored test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use lynn_proto::fuzzing;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly under `dir`, sorted; none if `dir` does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input in `dir` through `target`; fails naming each input that panicked.
fn replay(dir: &Path, target: Target) -> usize {
    let files = inputs(dir);
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable seed");
            catch_unwind(AssertUnwindSafe(|| target(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
    files.len()
}

fn seeds(target: &str, f: Target) {
    let dir = fuzz_dir().join("seeds").join(target);
    let n = replay(&dir, f);
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn decoder_seeds() {
    seeds("decoder", fuzzing::decoder);
}

#[test]
fn connection_seeds() {
    seeds("connection", fuzzing::connection);
}

#[test]
fn admission_seeds() {
    seeds("admission", fuzzing::admission);
}

#[test]
fn reconnect_seeds() {
    seeds("reconnect", fuzzing::reconnect);
}

#[test]
fn client_calls_seeds() {
    seeds("client_calls", fuzzing::client_calls);
}

#[test]
fn empty_and_tiny_inputs_never_panic() {
    for data in [&[][..], &[0], &[0xff; 3], &[1, 2, 3, 4, 5, 6, 7, 8]] {
        fuzzing::decoder(data);
        fuzzing::connection(data);
        fuzzing::admission(data);
        fuzzing::reconnect(data);
        fuzzing::client_calls(data);
    }
}
