//! The conformance suite: every server scenario against every adapter's server.

lynn_tests::conformance!(tokio, lynn_tests::runtimes::TokioRuntime);
lynn_tests::conformance!(tokio_workers, lynn_tests::runtimes::TokioWorkersRuntime);
lynn_tests::conformance!(smol, lynn_tests::runtimes::SmolRuntime);
lynn_tests::conformance!(blocking, lynn_tests::runtimes::BlockingRuntime);
