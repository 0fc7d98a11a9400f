//! Every adapter's client against every adapter's server (9 pairs), through the client
//! scenarios. Tests are named `client::server::scenario`.

lynn_tests::cross_runtime!(
    tokio => lynn_tests::runtimes::TokioRuntime,
    smol => lynn_tests::runtimes::SmolRuntime,
    blocking => lynn_tests::runtimes::BlockingRuntime,
);
