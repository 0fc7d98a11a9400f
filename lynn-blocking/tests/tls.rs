//! TLS with blocking calls: echo on closure and in-place routes, a client's certificate
//! in handlers under mutual TLS, and a client without one refused. Certificates are made
//! at test time.

mod common;

use common::*;
use lynn_blocking::{Client, ClientConfig, ClientTls, Context, Server, ServerTls};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA's PEM, and a certificate and key it signed for `127.0.0.1` and `lynn.test`.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let names = vec!["127.0.0.1".to_string(), "lynn.test".to_string()];
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer);
    Pki {
        ca: ca_pem,
        cert: cert.unwrap().pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    fn server(&self) -> ServerTls {
        ServerTls::from_pem(self.cert.as_bytes(), self.key.as_bytes()).unwrap()
    }

    fn client(&self) -> ClientTls {
        ClientTls::from_ca_pem(self.ca.as_bytes()).unwrap()
    }
}

#[test]
fn echo_on_closure_and_in_place_routes() {
    let pki = pki();
    let server = Server::builder(build(config()))
        .route(1, |ctx: Context| ctx.reply(ctx.body().clone()))
        .route_sync(2, |ctx| ctx.reply(ctx.body()))
        .tls(pki.server())
        .bind()
        .unwrap();
    let srv = Running::start(server);
    let config = ClientConfig::builder()
        .addr(srv.addr.clone())
        .build()
        .unwrap();
    let client = Client::connect_tls(config, pki.client()).unwrap();
    let big = vec![9u8; 300_000];
    for (method, body) in [(1, &b"blocking"[..]), (2, &b"in place"[..]), (2, &big[..])] {
        let reply = client.request(method, body.to_vec()).unwrap();
        assert!(reply[..] == *body);
    }
    client.close();
    srv.stop();
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate_and_shows_one_with() {
    let pki = pki();
    let tls = pki.server().client_ca_pem(pki.ca.as_bytes()).unwrap();
    let server = Server::builder(build(config()))
        .route_sync(1, |ctx| {
            let n = ctx.peer_certificates().map_or(0, <[_]>::len);
            ctx.reply(&[n as u8]);
        })
        .tls(tls)
        .bind()
        .unwrap();
    let srv = Running::start(server);
    let config = ClientConfig::builder()
        .addr(srv.addr.clone())
        .build()
        .unwrap();
    let refused = match Client::connect_tls(config.clone(), pki.client()) {
        Ok(client) => client.request(1, "anyone").is_err(),
        Err(_) => true,
    };
    assert!(refused);
    let metrics = srv.handle.metrics().clone();
    wait_until("the refusal to be counted", || {
        metrics.tls_handshake_failures("certificate") == 1
    });
    let tls = pki
        .client()
        .client_cert_pem(pki.cert.as_bytes(), pki.key.as_bytes());
    let client = Client::connect_tls(config, tls.unwrap()).unwrap();
    assert_eq!(&client.request(1, "me").unwrap()[..], &[1]);
    srv.stop();
}
