//! TLS over smol: echo on async and in-place routes, a client's certificate in handlers
//! under mutual TLS, and a client without one refused. Certificates are made at test time.

mod common;

use common::*;
use lynn_smol::{Client, ClientConfig, ClientTls, Context, Server, ServerTls};
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
fn echo_on_async_and_in_place_routes() {
    run(async {
        let pki = pki();
        let server = Server::builder(config().build().unwrap())
            .route(
                1,
                |ctx: Context| async move { ctx.reply(ctx.body().clone()) },
            )
            .route_sync(2, |ctx| ctx.reply(ctx.body()))
            .tls(pki.server())
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let config = ClientConfig::builder().addr(srv.addr()).build().unwrap();
        let client = Client::connect_tls(config, pki.client()).await.unwrap();
        let big = vec![7u8; 300_000];
        for (method, body) in [(1, &b"smol"[..]), (2, &b"in place"[..]), (1, &big[..])] {
            let reply = client.request(method, body.to_vec()).await.unwrap();
            assert!(reply[..] == *body);
        }
        client.close().await;
        srv.stop();
    });
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate_and_shows_one_with() {
    run(async {
        let pki = pki();
        let tls = pki.server().client_ca_pem(pki.ca.as_bytes()).unwrap();
        let server = Server::builder(config().build().unwrap())
            .route(1, |ctx: Context| async move {
                let n = ctx.peer_certificates().map_or(0, <[_]>::len);
                ctx.reply(vec![n as u8])
            })
            .tls(tls)
            .bind()
            .await
            .unwrap();
        let srv = spawn(server);
        let config = ClientConfig::builder().addr(srv.addr()).build().unwrap();
        let refused = match Client::connect_tls(config.clone(), pki.client()).await {
            Ok(client) => client.request(1, "anyone").await.is_err(),
            Err(_) => true,
        };
        assert!(refused);
        let metrics = srv.handle.metrics().clone();
        wait_until("the refusal to be counted", || {
            metrics.tls_handshake_failures("certificate") == 1
        })
        .await;
        let tls = pki
            .client()
            .client_cert_pem(pki.cert.as_bytes(), pki.key.as_bytes());
        let client = Client::connect_tls(config, tls.unwrap()).await.unwrap();
        assert_eq!(&client.request(1, "me").await.unwrap()[..], &[1]);
        srv.stop();
    });
}
