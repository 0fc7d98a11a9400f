//! The conformance suite: every server scenario against every adapter's server, over plain
//! TCP and over mutual TLS (`Tls<R>`: lynn's TLS on both ends, raw peers through rustls).

lynn_tests::conformance!(tokio, lynn_tests::runtimes::TokioRuntime);
lynn_tests::conformance!(tokio_workers, lynn_tests::runtimes::TokioWorkersRuntime);
lynn_tests::conformance!(smol, lynn_tests::runtimes::SmolRuntime);
lynn_tests::conformance!(blocking, lynn_tests::runtimes::BlockingRuntime);
lynn_tests::conformance!(tokio_tls, lynn_tests::runtimes::TokioTlsRuntime, tls);
lynn_tests::conformance!(smol_tls, lynn_tests::runtimes::SmolTlsRuntime, tls);
lynn_tests::conformance!(blocking_tls, lynn_tests::runtimes::BlockingTlsRuntime, tls);
