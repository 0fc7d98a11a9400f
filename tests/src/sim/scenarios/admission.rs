//! Admission: max connections, the per-IP limit (peers from different simulated IPs), the
//! connection rate in virtual time; slots come back on close (`crate::scenarios::limits`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::{server_config, settle, start};
use crate::app::ECHO;
use crate::sim::raw::RawSim;
use crate::sim::sleep;

/// The simulated address `10.0.1.n`.
fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, n))
}

/// A connection from `from` if the server serves it (a refused one is closed at once).
async fn admitted(addr: &str, from: IpAddr) -> Option<RawSim> {
    let mut peer = RawSim::connect_from(addr, from).ok()?;
    let reply = peer.request(ECHO, b"admitted?").await.ok()?;
    (reply.body == b"admitted?").then_some(peer)
}

/// `max_connections(2)`: a third and a fourth connection are refused whatever their
/// address, counted as `max_connections`; once the first closes, one is admitted again.
pub async fn max_connections() {
    let server = start(server_config().max_connections(2)).await;
    let addr = server.addr();
    let first = admitted(addr, ip(1)).await.expect("first admitted");
    let _second = admitted(addr, ip(2)).await.expect("second admitted");
    assert!(admitted(addr, ip(3)).await.is_none(), "third refused");
    assert!(admitted(addr, ip(1)).await.is_none(), "fourth refused");
    let metrics = server.metrics();
    settle("max_connections", || {
        metrics.rejected_with("max_connections") == 2
    })
    .await;
    drop(first);
    settle("the slot released", || {
        server.handle().connection_count() == 1
    })
    .await;
    let _again = admitted(addr, ip(3)).await.expect("admitted after a close");
    assert_eq!(server.handle().connection_count(), 2);
    server.stop().await;
}

/// `max_connections_per_ip(2)`: a third connection from `10.0.1.1` (the first one's IP is
/// also the second's here) is refused; one from another IP is admitted.
pub async fn per_ip_limit() {
    let server = start(server_config().max_connections_per_ip(2)).await;
    let addr = server.addr();
    let first = admitted(addr, ip(1)).await.expect("first admitted");
    let _second = admitted(addr, ip(1)).await.expect("second admitted");
    assert!(
        admitted(addr, ip(1)).await.is_none(),
        "third from the same IP refused"
    );
    let _other = admitted(addr, ip(2)).await.expect("another IP admitted");
    let metrics = server.metrics();
    settle("max_per_ip", || metrics.rejected_with("max_per_ip") == 1).await;
    drop(first);
    settle("the slot released", || {
        server.handle().connection_count() == 2
    })
    .await;
    let _again = admitted(addr, ip(1)).await.expect("admitted after a close");
    assert_eq!(server.handle().connection_count(), 3);
    server.stop().await;
}

/// `connection_rate(3)`: of eight connections opened at the same virtual instant, exactly
/// three (the burst) are admitted and five refused as `rate_limited`; a second later the
/// bucket has refilled.
pub async fn connection_rate() {
    let server = start(server_config().connection_rate(3)).await;
    let addr = server.addr();
    let mut served = 0;
    for n in 0..8 {
        served += usize::from(admitted(addr, ip(n)).await.is_some());
    }
    assert_eq!(served, 3, "the burst");
    let metrics = server.metrics();
    assert_eq!(metrics.rejected_with("rate_limited"), 5);
    sleep(Duration::from_secs(1)).await;
    let _later = admitted(addr, ip(9)).await.expect("the bucket refills");
    server.stop().await;
}
