//! Configuration files (feature `config`): the sample files, layering, and errors that
//! name the key. No test touches the process environment: each passes its own variables.
#![cfg(feature = "config")]

use std::path::PathBuf;
use std::time::Duration;

use lynn_proto::{ClientConfig, ConnectionConfig, ServerConfig};
use lynn_service::config::{self, ConfigFileError, ConfigLoader};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name)
}

fn server(toml: &str) -> Result<ServerConfig, ConfigFileError> {
    ConfigLoader::new().toml(toml).load()
}

fn client(toml: &str) -> Result<ClientConfig, ConfigFileError> {
    ConfigLoader::new().toml(toml).load()
}

/// A file of this test's own in the temporary directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("lynn-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_sample_files_hold_the_defaults() {
    let s: ServerConfig = ConfigLoader::new()
        .file(sample("server.toml"))
        .load()
        .unwrap();
    assert_eq!(s, ServerConfig::default());
    let c: ClientConfig = ConfigLoader::new()
        .file(sample("client.toml"))
        .load()
        .unwrap();
    assert_eq!(c, ClientConfig::default());
}

#[test]
fn the_sample_files_round_trip() {
    let s: ServerConfig = ConfigLoader::new()
        .file(sample("server.toml"))
        .load()
        .unwrap();
    assert_eq!(server(&config::to_toml(&s).unwrap()).unwrap(), s);
    let c: ClientConfig = ConfigLoader::new()
        .file(sample("client.toml"))
        .load()
        .unwrap();
    assert_eq!(client(&config::to_toml(&c).unwrap()).unwrap(), c);

    // A configuration far from the defaults, every kind of value changed, round-trips too.
    let changed = server(
        r#"
        addr = "127.0.0.1:0"
        max_concurrent_handlers = 64
        metrics_addr = "127.0.0.1:9100"
        shutdown_timeout = "1m 5s 250ms"
        [connection]
        heartbeat_interval = "15s"
        idle_timeout = "off"
        linger = "off"
        liveness = "heartbeat_only"
        [admission]
        per_ip_rate = { per_second = 5, burst = 9 }
        [socket]
        keepalive = "off"
        send_buffer_size = 262144
        "#,
    )
    .unwrap();
    assert_eq!(
        server(&config::to_toml(&changed).unwrap()).unwrap(),
        changed
    );
    let changed = client("reconnect = \"off\"\nrequest_timeout = \"off\"\n").unwrap();
    assert_eq!(
        client(&config::to_toml(&changed).unwrap()).unwrap(),
        changed
    );
}

#[test]
fn an_unknown_key_is_named() {
    let path = temp_file("unknown.toml", "[connection]\nread_chunck = 1\n");
    let e = ConfigLoader::new().file(&path).load::<ServerConfig>();
    let e = e.unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(e.key, "connection.read_chunck");
    assert_eq!(e.origin, Some(path.display().to_string()));
    let message = e.to_string();
    assert!(message.contains("`connection.read_chunck`"), "{message}");
    assert!(
        message.contains("unknown key; the keys here are `marks`"),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_wrong_type_is_named() {
    let e = server("outbound_queue = \"many\"\n").unwrap_err();
    assert_eq!(e.key, "outbound_queue");
    assert!(e.to_string().contains("invalid type"), "{e}");
    let e = server("[connection]\nidle_timeout = 30\n").unwrap_err();
    assert_eq!(e.key, "connection.idle_timeout");
    let e = server("[connection]\nidle_timeout = \"30 parsecs\"\n").unwrap_err();
    assert_eq!(e.key, "connection.idle_timeout");
    assert!(e.to_string().contains("expected a duration"), "{e}");
    let e = client("push_full = \"drop_all\"\n").unwrap_err();
    assert_eq!(e.key, "push_full");
    assert!(
        e.reason
            .contains("unknown value `drop_all`; expected one of"),
        "{e}"
    );
    let e = server("[admission]\nrate = 200\n").unwrap_err();
    assert_eq!(e.key, "admission.rate");
    assert!(e.reason.contains("per_second = 200"), "{e}");
}

#[test]
fn an_out_of_range_value_is_named() {
    let cases = [
        (
            "[connection]\nread_chunk = 0\n",
            "connection.read_chunk",
            "at least 1",
        ),
        (
            "[connection]\nidle_timeout = \"0s\"\n",
            "connection.idle_timeout",
            "\"off\"",
        ),
        (
            "[connection]\nmax_in_flight = 0\n",
            "connection.max_in_flight",
            "at least 1",
        ),
        (
            "[connection.linger]\ntimeout = \"0s\"\n",
            "connection.linger.timeout",
            "positive",
        ),
        (
            "[admission]\nmax_connections = 0\n",
            "admission.max_connections",
            "at least 1",
        ),
        (
            "[admission]\nrate = { per_second = 0 }\n",
            "admission.rate.per_second",
            "at least 1",
        ),
        ("outbound_queue = 0\n", "outbound_queue", "at least 1"),
        (
            "[frame_budget]\nper_ip = 10\n",
            "frame_budget",
            "largest frame",
        ),
    ];
    for (toml, key, reason) in cases {
        let e = server(toml).unwrap_err();
        assert_eq!(e.key, key, "{toml}");
        assert!(e.reason.contains(reason), "{toml}: {e}");
        assert!(e.to_string().contains(&format!("`{key}`")), "{e}");
    }
    let e = client("connect_timeout = \"0s\"\n").unwrap_err();
    assert_eq!(e.key, "connect_timeout");
    let e = client("[reconnect]\nmultiplier = 0\n").unwrap_err();
    assert_eq!(e.key, "reconnect.multiplier");
    let e = client("[reconnect]\nmax_attempts = 0\n").unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.reason.contains("use \"off\"")),
        ("reconnect.max_attempts", true)
    );
}

#[test]
fn the_environment_wins_over_the_file_and_set_values_over_both() {
    let toml = "addr = \"10.0.0.1:1\"\noutbound_queue = 7\n[connection]\nidle_timeout = \"1m\"\n";
    let s: ServerConfig = ConfigLoader::new()
        .toml(toml)
        .env([
            ("LYNN_CONNECTION__IDLE_TIMEOUT", "30s"),
            ("LYNN_ADDR", "127.0.0.1:2"),
            ("LYNN_SOCKET__NODELAY", "false"),
            ("LYNN_ADMISSION__RATE__PER_SECOND", "50"),
            ("HOME", "/root"),
        ])
        .load()
        .unwrap();
    assert_eq!(s.connection.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(s.addr, "127.0.0.1:2");
    assert_eq!(
        s.outbound_queue, 7,
        "a key the environment leaves alone keeps the file's"
    );
    assert!(!s.socket.nodelay);
    assert_eq!(
        s.admission.rate.map(|r| (r.per_second, r.burst)),
        Some((50, 50))
    );

    let s: ServerConfig = ConfigLoader::new()
        .toml(toml)
        .env([
            ("LYNN_ADDR", "127.0.0.1:2"),
            ("LYNN_CONNECTION__LINGER", "off"),
        ])
        .set("addr", "127.0.0.1:3")
        .load()
        .unwrap();
    assert_eq!(s.addr, "127.0.0.1:3");
    assert_eq!(s.connection.linger, None);
    let s: ServerConfig = ConfigLoader::new()
        .toml(toml)
        .set("addr", None::<String>)
        .set("connection.idle_timeout", "off")
        .load()
        .unwrap();
    assert_eq!(s.addr, "10.0.0.1:1", "None sets nothing");
    assert_eq!(s.connection.idle_timeout, None);

    // A client's environment changes one connection key; the others keep the client preset.
    let c: ClientConfig = ConfigLoader::new()
        .env([("LYNN_CONNECTION__READ_CHUNK", "4096")])
        .load()
        .unwrap();
    let expected = ConnectionConfig {
        read_chunk: 4096,
        ..ConnectionConfig::client()
    };
    assert_eq!(c.connection, expected);
}

#[test]
fn errors_from_the_environment_name_the_variable() {
    let load = |name: &str, value: &str| {
        ConfigLoader::new()
            .toml("[connection]\nread_chunk = 4096\n")
            .env([(name, value)])
            .load::<ServerConfig>()
            .unwrap_err()
    };
    let e = load("LYNN_CONNECTION__IDLE_TIMEOUT", "soon");
    assert_eq!(e.key, "connection.idle_timeout");
    let var = "environment variable LYNN_CONNECTION__IDLE_TIMEOUT";
    assert_eq!(e.origin.as_deref(), Some(var));
    let e = load("LYNN_CONNECTION__READ_CHUNK", "0");
    assert_eq!(e.key, "connection.read_chunk");
    let var = "environment variable LYNN_CONNECTION__READ_CHUNK";
    assert_eq!(
        e.origin.as_deref(),
        Some(var),
        "validation names the layer that won"
    );
    let e = load("LYNN_CONECTION__READ_CHUNK", "1");
    assert_eq!(e.key, "conection");
    assert!(e.to_string().contains("LYNN_CONECTION"), "{e}");
    let e = load("LYNN_", "1");
    assert!(e.to_string().contains("not a key"), "{e}");
}

#[test]
fn unreadable_and_malformed_files_are_refused() {
    let missing = std::env::temp_dir().join("lynn-no-such-dir/server.toml");
    let e = ConfigLoader::new().file(&missing).load::<ServerConfig>();
    let e = e.unwrap_err();
    assert_eq!(e.key, "");
    assert!(e.to_string().contains("lynn-no-such-dir"), "{e}");
    assert!(e.reason.contains("cannot read"), "{e}");

    let path = temp_file("syntax.toml", "[connection\nread_chunk = 1\n");
    let e = ConfigLoader::new().file(&path).load::<ServerConfig>();
    std::fs::remove_file(&path).unwrap();
    let e = e.unwrap_err();
    assert_eq!(e.origin, Some(path.display().to_string()));
    assert!(e.reason.contains("TOML parse error"), "{e}");
}
