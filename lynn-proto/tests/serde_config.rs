//! The `serde` feature: how `ServerConfig` and `ClientConfig` read and write (TOML here).
#![cfg(feature = "serde")]

use std::time::Duration;

use lynn_proto::admission::Rate;
use lynn_proto::{
    ClientConfig, ConnectionConfig, Liveness, OverBudget, PushFull, SendFull, ServerConfig,
};

fn server(text: &str) -> Result<ServerConfig, toml::de::Error> {
    toml::from_str(text)
}

fn client(text: &str) -> Result<ClientConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(server("").unwrap(), ServerConfig::default());
    assert_eq!(client("").unwrap(), ClientConfig::default());
}

#[test]
fn defaults_round_trip_with_every_key_written() {
    let text = toml::to_string(&ServerConfig::default()).unwrap();
    assert!(text.contains("metrics_addr = \"off\""), "{text}");
    assert!(text.contains("idle_timeout = \"3m\""), "{text}");
    assert_eq!(server(&text).unwrap(), ServerConfig::default());
    let text = toml::to_string(&ClientConfig::default()).unwrap();
    assert!(text.contains("idle_timeout = \"off\""), "{text}");
    assert_eq!(client(&text).unwrap(), ClientConfig::default());
}

#[test]
fn a_partial_connection_table_keeps_its_sides_preset() {
    let c = client("[connection]\nread_chunk = 8192\n").unwrap();
    let expected = ConnectionConfig {
        read_chunk: 8192,
        ..ConnectionConfig::client()
    };
    assert_eq!(c.connection, expected);
    let s = server("[connection]\nread_chunk = 8192\n").unwrap();
    let expected = ConnectionConfig {
        read_chunk: 8192,
        ..ConnectionConfig::server()
    };
    assert_eq!(s.connection, expected);
    // An empty server table is the server preset (16 handlers in flight, not 0).
    assert_eq!(
        server("[connection]\n").unwrap().connection.max_in_flight,
        16
    );
}

#[test]
fn durations_enums_and_off() {
    let s = server(
        r#"
        shutdown_timeout = "1m 30s"
        listen_backlog = 4096
        metrics_addr = "127.0.0.1:9100"
        unknown_method = "close"
        [connection]
        idle_timeout = "off"
        read_timeout = "250ms"
        linger = "off"
        liveness = "heartbeat_only"
        send_full = "close"
        [admission]
        rate = { per_second = 200 }
        per_ip_rate = { per_second = 5, burst = 20 }
        [socket]
        keepalive = "off"
        recv_buffer_size = 65536
        [frame_budget]
        over = "close"
        "#,
    )
    .unwrap();
    assert_eq!(s.shutdown_timeout, Duration::from_secs(90));
    assert_eq!(s.listen_backlog, Some(4096));
    assert_eq!(s.metrics_addr.as_deref(), Some("127.0.0.1:9100"));
    assert_eq!(s.connection.idle_timeout, None);
    assert_eq!(s.connection.read_timeout, Some(Duration::from_millis(250)));
    assert_eq!(s.connection.linger, None);
    assert_eq!(s.connection.liveness, Liveness::HeartbeatOnly);
    assert_eq!(s.connection.send_full, SendFull::Close);
    assert_eq!(s.admission.rate, Some(Rate::per_second(200)));
    assert_eq!(
        s.admission.per_ip_rate,
        Some(Rate::per_second(5).with_burst(20))
    );
    assert_eq!(s.socket.keepalive, None);
    assert_eq!(s.socket.recv_buffer_size, Some(65536));
    assert_eq!(s.frame_budget.over, OverBudget::Close);
    let back = server(&toml::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);

    let c = client(
        "reconnect = \"off\"\nrequest_timeout = \"off\"\npush_full = \"wait\"\n\
         [connection.linger]\nmax_bytes = 10\n",
    )
    .unwrap();
    assert_eq!(c.reconnect, None);
    assert_eq!(c.request_timeout, None);
    assert_eq!(c.push_full, PushFull::Wait);
    let linger = c.connection.linger.unwrap();
    assert_eq!(
        (linger.timeout, linger.max_bytes),
        (Duration::from_secs(2), 10)
    );
    let c = client("[reconnect]\nmax_attempts = \"off\"\ninitial_delay = \"1s\"\n").unwrap();
    let policy = c.reconnect.unwrap();
    assert_eq!(policy.max_attempts, None);
    assert_eq!(policy.initial_delay, Duration::from_secs(1));
    assert_eq!(policy.max_delay, Duration::from_secs(30));
}

#[test]
fn mistakes_are_errors_that_name_the_key() {
    let e = server("[connection]\nread_chunck = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `read_chunck`"), "{e}");
    let e = server("outbound_queue = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("outbound_queue") && e.contains("invalid type"),
        "{e}"
    );
    let e = server("[connection]\nidle_timeout = 30\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("idle_timeout") && e.contains("duration"), "{e}");
    let e = server("[connection]\nidle_timeout = \"30 parsecs\"\n");
    assert!(e.unwrap_err().to_string().contains("idle_timeout"));
    let e = server("[connection]\nsend_full = \"drop\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown variant `drop`"), "{e}");
    let e = server("[admission]\nrate = { burst = 3 }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `per_second`"), "{e}");
    let e = server("[admission]\nrate = { per_second = 3, bursts = 3 }\n");
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("unknown field `bursts`")
    );
    let e = client("reconnect = \"never\"\n").unwrap_err().to_string();
    assert!(e.contains("reconnect"), "{e}");
}
