//! Custom header and tail marks.

use lynn_proto::Marks;

use crate::app::{App, ECHO};
use crate::raw::{RawPeer, frame, message};
use crate::runtime::{ClientUnderTest, Runtime, ServerUnderTest};
use crate::support::{client_config, server_config, wait_until};

const MARKS: Marks = Marks {
    header: 0x1234,
    tail: 0x5678,
};

/// A server and a client configured with the same custom marks talk; a raw peer using the
/// custom marks is echoed with them; a raw peer using the default marks is closed.
pub fn custom_marks<C: Runtime, S: Runtime>() {
    let server = S::start_server(
        server_config().marks(MARKS).build().unwrap(),
        App::default(),
    )
    .expect("server");
    let client = C::connect(client_config(server.addr()).marks(MARKS).build().unwrap())
        .expect("client connects");
    assert_eq!(
        &client.request(ECHO, "marked".into()).unwrap()[..],
        b"marked"
    );

    let raw_marks = (MARKS.header, MARKS.tail);
    let mut raw = RawPeer::connect_with_marks_for::<S>(server.addr(), raw_marks).unwrap();
    raw.write(&frame(raw_marks, 1, ECHO, b"raw")).unwrap();
    assert_eq!(raw.read_frame().expect("custom-marked reply").body, b"raw");

    let mut default_peer = RawPeer::connect_for::<S>(server.addr()).unwrap();
    default_peer.write(&message(ECHO, b"wrong marks")).unwrap();
    assert!(default_peer.closed_by_peer(), "default marks are rejected");
    let metrics = server.metrics();
    wait_until("protocol_error", || {
        metrics.closed_with("protocol_error") == 1
    });
    drop(raw);
    client.close();
    server.stop();
}
