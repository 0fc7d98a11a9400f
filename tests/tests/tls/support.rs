//! What the TLS tests share: certificates as rustls configs, configs, and a lynn-tokio TLS
//! echo server.
#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lynn_proto::{ClientConfig, ServerConfig};
use lynn_service::Metrics;
use lynn_service::tls::{ClientTls, ServerTls};
use lynn_tests::pki::Pki;
use lynn_tests::support::DEADLINE;

/// A tokio runtime for servers and clients of lynn-tokio.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn server_tls(pki: &Pki) -> ServerTls {
    ServerTls::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).expect("server")
}

pub fn client_tls(pki: &Pki) -> ClientTls {
    ClientTls::from_ca_pem(pki.ca.as_bytes()).expect("client")
}

pub fn server_config() -> ServerConfig {
    ServerConfig::builder()
        .addr("127.0.0.1:0")
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .expect("server config")
}

/// A lynn-tokio client connected over TLS to `addr`, trusting `pki`'s CA.
pub fn tls_client(rt: &tokio::runtime::Runtime, addr: SocketAddr, pki: &Pki) -> lynn_tokio::Client {
    rt.block_on(lynn_tokio::Client::connect_tls(
        client_config(addr),
        client_tls(pki),
    ))
    .expect("TLS client")
}

pub fn client_config(addr: SocketAddr) -> ClientConfig {
    ClientConfig::builder()
        .addr(addr.to_string())
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)))
        .build()
        .expect("client config")
}

/// A lynn-tokio TLS echo server on `rt` (method 1 async, method 2 in place, method 3
/// answers with the DER of the client's first certificate, empty without one); counts
/// the requests its handlers saw.
pub struct TokioServer {
    pub addr: SocketAddr,
    pub handle: lynn_tokio::ServerHandle,
    pub served: Arc<AtomicUsize>,
    serving: tokio::task::JoinHandle<Result<(), lynn_proto::ServerError>>,
}

impl TokioServer {
    pub fn start(rt: &tokio::runtime::Runtime, config: ServerConfig, tls: ServerTls) -> Self {
        Self::try_start(rt, config, tls).expect("bind")
    }

    pub fn try_start(
        rt: &tokio::runtime::Runtime,
        config: ServerConfig,
        tls: ServerTls,
    ) -> Result<Self, lynn_proto::ServerError> {
        let served = Arc::new(AtomicUsize::new(0));
        let server = rt.block_on(
            lynn_tokio::Server::builder(config)
                .state(served.clone())
                .route(1, |ctx: lynn_tokio::Context<Arc<AtomicUsize>>| async move {
                    ctx.state().fetch_add(1, Ordering::SeqCst);
                    ctx.reply(ctx.body().clone())
                })
                .route_sync(2, |ctx| ctx.reply(ctx.body()))
                .route_sync(3, |ctx| {
                    let der = ctx.peer_certificates().map(|c| c[0].to_vec());
                    ctx.reply(&der.unwrap_or_default())
                })
                .tls(tls)
                .bind(),
        );
        let server = server?;
        let addr = server.tcp_addr().expect("TCP");
        let handle = server.handle();
        let serving = rt.spawn(server.serve());
        Ok(TokioServer {
            addr,
            handle,
            served,
            serving,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        self.handle.metrics()
    }

    pub fn stop(self, rt: &tokio::runtime::Runtime) {
        self.handle.shutdown();
        let done = rt.block_on(async { tokio::time::timeout(DEADLINE, self.serving).await });
        done.expect("serve ends").expect("task").expect("serve");
    }
}

/// Reads `sock` until the server closes it; what came is the server's alert, if any.
pub fn read_to_close(sock: &mut TcpStream) -> Vec<u8> {
    sock.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut got = Vec::new();
    let _ = sock.read_to_end(&mut got);
    got
}
