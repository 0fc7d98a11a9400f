//! Every adapter's client against every adapter's server (9 pairs), through the client
//! scenarios. Tests are named `client::server::scenario`.

lynn_tests::cross_runtime!(
    tokio => lynn_tests::runtimes::TokioRuntime,
    smol => lynn_tests::runtimes::SmolRuntime,
    blocking => lynn_tests::runtimes::BlockingRuntime,
);

// The same over mutual TLS: every adapter's TLS client against every adapter's TLS server.
lynn_tests::cross_runtime!(
    tokio_tls => lynn_tests::runtimes::TokioTlsRuntime,
    smol_tls => lynn_tests::runtimes::SmolTlsRuntime,
    blocking_tls => lynn_tests::runtimes::BlockingTlsRuntime,
);
