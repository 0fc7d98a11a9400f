//! Client request/reply across body sizes.

use lynn_proto::ClientError;

use crate::app::{App, ECHO};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{client_config, pattern, server_config};

/// Bodies of 0, 1, 127, 128 bytes, 4 KiB, 64 KiB and 1 MiB come back byte for byte, in
/// order; a body over the server's frame limit is refused locally by the client.
pub fn echo_all_sizes<C: Runtime, S: Runtime>() {
    const LIMIT: u64 = 2 << 20;
    let config = server_config().max_frame_len(LIMIT).build().unwrap();
    let server = S::start_server(config, App::default()).expect("server starts");
    let client = C::connect(
        client_config(server.addr())
            .max_frame_len(LIMIT)
            .build()
            .unwrap(),
    )
    .expect("client connects");
    for (i, len) in [0, 1, 127, 128, 4 << 10, 64 << 10, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let body = pattern(len, i as u8);
        let reply = client
            .request(ECHO, body.clone().into())
            .unwrap_or_else(|e| panic!("echo of {len} bytes: {e}"));
        assert_eq!(reply.len(), len, "reply length for a {len}-byte body");
        assert!(reply == body, "reply content for a {len}-byte body");
    }
    let too_big = vec![0u8; LIMIT as usize];
    match client.request(ECHO, too_big.into()) {
        Err(ClientError::Encode(_)) => {}
        other => panic!("an oversized body must be refused locally, got {other:?}"),
    }
    let reply = client
        .request(ECHO, "still fine".into())
        .expect("still works");
    assert_eq!(&reply[..], b"still fine");
    client.close();
    server.stop();
}
