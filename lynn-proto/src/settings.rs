//! Endpoint settings shared by every runtime: [`ServerConfig`] and [`ClientConfig`].
//!
//! They live in the core so that lynn-tokio, lynn-smol and lynn-blocking accept the same
//! options under the same names with the same defaults. Each covers every lynn_tcp option;
//! the builder method names follow lynn_tcp's `with_*` names without the prefix.
//!
//! ```
//! use std::time::Duration;
//! use lynn_proto::ServerConfig;
//!
//! let config = ServerConfig::builder()
//!     .addr("127.0.0.1:9177")
//!     .max_connections(10_000)
//!     .max_connections_per_ip(50)
//!     .connection_rate(200)
//!     .heartbeat_timeout(Some(Duration::from_secs(60)))
//!     .build()
//!     .unwrap();
//! assert_eq!(config.admission.max_connections, 10_000);
//! ```

use std::time::Duration;

use crate::admission::{Admission, AdmissionConfig, Rate};
use crate::codec::Marks;
use crate::config::{ConnectionConfig, Liveness, SendFull};
use crate::error::ConfigError;
use crate::frame_budget::FrameBudget;
use crate::groups::GroupLimits;
use crate::reconnect::{Reconnect, ReconnectConfig};
use crate::router::UnknownMethod;

/// Socket options a runtime applies to every connection (through socket2 or std).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct SocketOptions {
    /// `TCP_NODELAY` (default true: small frames must not wait for Nagle).
    pub nodelay: bool,
    /// TCP keep-alive idle time; `None` disables keep-alive (default 120 s).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off_duration"))]
    pub keepalive: Option<Duration>,
    /// `SO_RCVBUF`; `None` keeps the OS default, which auto-tunes (default).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub recv_buffer_size: Option<usize>,
    /// `SO_SNDBUF`; `None` keeps the OS default, which auto-tunes (default).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub send_buffer_size: Option<usize>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            nodelay: true,
            keepalive: Some(Duration::from_secs(120)),
            recv_buffer_size: None,
            send_buffer_size: None,
        }
    }
}

/// Everything a lynn server needs to know. Build it with [`ServerConfig::builder`], or read
/// it from a file with the `serde` feature (see [the crate docs](crate#configuration-files-feature-serde)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct ServerConfig {
    /// Listen address (`host:port`, or a socket path for Unix listeners). Default
    /// `0.0.0.0:9177`, lynn_tcp's.
    pub addr: String,
    /// Settings of each accepted connection (server preset).
    pub connection: ConnectionConfig,
    /// Connection limits and rates.
    pub admission: AdmissionConfig,
    /// Socket options of accepted connections.
    pub socket: SocketOptions,
    /// Bounds of the group table.
    pub groups: GroupLimits,
    /// What to do with a message for a method no route handles.
    pub unknown_method: UnknownMethod,
    /// Handlers running at once across the whole server; `None`: only the per-connection
    /// limit applies. (lynn_tcp's task pool size.)
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub max_concurrent_handlers: Option<usize>,
    /// Messages that may wait for a connection's task (sends from other connections or from
    /// outside, broadcasts) before further sends to it are refused.
    pub outbound_queue: usize,
    /// How long a graceful shutdown waits for handlers and flushes before dropping
    /// connections.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub shutdown_timeout: Duration,
    /// Where to serve Prometheus metrics over HTTP, if anywhere.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub metrics_addr: Option<String>,
    /// Connections the listener queues before they are accepted. `None` (the default): the
    /// larger of 1,024 and what the system allows (`net.core.somaxconn` on Linux), so a
    /// burst of connects is queued rather than reset.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub listen_backlog: Option<u32>,
    /// Bounds on the memory large frames still arriving may hold, per IP address and in
    /// total (default 64 MiB and 256 MiB; a connection over them stops reading).
    pub frame_budget: FrameBudget,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "0.0.0.0:9177".into(),
            connection: ConnectionConfig::server(),
            admission: AdmissionConfig::default(),
            socket: SocketOptions::default(),
            groups: GroupLimits::default(),
            unknown_method: UnknownMethod::default(),
            max_concurrent_handlers: None,
            outbound_queue: 1024,
            shutdown_timeout: Duration::from_secs(30),
            metrics_addr: None,
            listen_backlog: None,
            frame_budget: FrameBudget::default(),
        }
    }
}

impl ServerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ServerConfigBuilder {
        ServerConfigBuilder(ServerConfig::default())
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.connection.validate()?;
        if let Err(e) = Admission::new(self.admission.clone()) {
            return Err(ConfigError {
                field: "admission",
                problem: e.to_string(),
            });
        }
        if self.connection.max_in_flight == 0 {
            return Err(ConfigError {
                field: "max_in_flight",
                problem: "a server needs at least 1 (replies are ordered by completion tracking)"
                    .into(),
            });
        }
        if self.outbound_queue == 0 {
            return Err(ConfigError {
                field: "outbound_queue",
                problem: "must be at least 1".into(),
            });
        }
        if self.max_concurrent_handlers == Some(0) {
            return Err(ConfigError {
                field: "max_concurrent_handlers",
                problem: "must be at least 1 (use None for no global limit)".into(),
            });
        }
        let (budget, frame) = (&self.frame_budget, self.connection.max_frame_len);
        if (budget.per_ip as u64) < frame.saturating_add(10) || budget.total < budget.per_ip {
            return Err(ConfigError {
                field: "frame_budget",
                problem: format!(
                    "per_ip must hold the largest frame ({} bytes) and total at least per_ip",
                    frame.saturating_add(10)
                ),
            });
        }
        Ok(())
    }
}

/// The setters both builders share: the address, the connection's framing and timeouts,
/// and the socket options (names follow lynn_tcp's `with_*` options).
macro_rules! shared_setters {
    () => {
        /// Listen or connect address: `host:port`, or `unix:/path` (lynn_tcp `with_addr`).
        pub fn addr(mut self, addr: impl Into<String>) -> Self {
            self.0.addr = addr.into();
            self
        }
        /// Header mark (lynn_tcp `with_message_header_mark`).
        pub fn header_mark(mut self, mark: u16) -> Self {
            self.0.connection.marks.header = mark;
            self
        }
        /// Tail mark (lynn_tcp `with_message_tail_mark`).
        pub fn tail_mark(mut self, mark: u16) -> Self {
            self.0.connection.marks.tail = mark;
            self
        }
        /// Both marks at once.
        pub fn marks(mut self, marks: Marks) -> Self {
            self.0.connection.marks = marks;
            self
        }
        /// `TCP_NODELAY` (lynn_tcp `with_tcp_nodelay`).
        pub fn nodelay(mut self, on: bool) -> Self {
            self.0.socket.nodelay = on;
            self
        }
        /// TCP keep-alive time, `None` to disable (lynn_tcp `with_tcp_keepalive_*`).
        pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
            self.0.socket.keepalive = idle;
            self
        }
        /// Close when a partial frame stalls this long (lynn_tcp `with_read_timeout_secs`).
        pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
            self.0.connection.read_timeout = timeout;
            self
        }
        /// Close when output makes no progress this long (lynn_tcp `with_write_timeout_secs`).
        pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
            self.0.connection.write_timeout = timeout;
            self
        }
        /// Free an idle connection's buffers after this long without bytes in or out
        /// (default 5 s); `None` keeps them while the connection is open.
        pub fn release_buffers_after(mut self, quiet: Option<Duration>) -> Self {
            self.0.connection.release_buffers_after = quiet;
            self
        }
        /// `SO_RCVBUF` (lynn_tcp `with_recv_buffer_size`).
        pub fn recv_buffer_size(mut self, bytes: usize) -> Self {
            self.0.socket.recv_buffer_size = Some(bytes);
            self
        }
        /// `SO_SNDBUF` (lynn_tcp `with_send_buffer_size`).
        pub fn send_buffer_size(mut self, bytes: usize) -> Self {
            self.0.socket.send_buffer_size = Some(bytes);
            self
        }
        /// Largest frame accepted from and sent to the peer (length field).
        pub fn max_frame_len(mut self, len: u64) -> Self {
            self.0.connection.max_frame_len = len;
            self.0.connection.peer_max_frame_len = len;
            self
        }
        /// Bound of the send queue in bytes.
        pub fn send_queue_limit(mut self, bytes: usize) -> Self {
            self.0.connection.send_queue_limit = bytes;
            self
        }
        /// Replaces the per-connection settings wholesale.
        pub fn connection(mut self, config: ConnectionConfig) -> Self {
            self.0.connection = config;
            self
        }
    };
}

/// Builder of [`ServerConfig`]; every lynn_tcp server option has a method here.
#[derive(Clone, Debug)]
#[must_use]
pub struct ServerConfigBuilder(ServerConfig);

impl ServerConfigBuilder {
    shared_setters!();
    /// Maximum open connections (lynn_tcp `with_server_max_connections`).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.0.admission.max_connections = n;
        self
    }
    /// Maximum open connections from one IP (lynn_tcp `with_max_connections_per_ip`).
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.0.admission.max_per_ip = n;
        self
    }
    /// New connections per second across the server, burst of the same size; 0 disables
    /// (lynn_tcp `with_connection_rate_limit`).
    pub fn connection_rate(mut self, per_second: u32) -> Self {
        self.0.admission.rate = (per_second > 0).then(|| Rate::per_second(per_second));
        self
    }
    /// New connections per second from one IP; 0 disables.
    pub fn connection_rate_per_ip(mut self, per_second: u32) -> Self {
        self.0.admission.per_ip_rate = (per_second > 0).then(|| Rate::per_second(per_second));
        self
    }
    /// Evict a peer silent for this long (lynn_tcp `with_server_check_heart_timeout_time`).
    /// lynn checks exact deadlines, so lynn_tcp's check interval has no equivalent.
    pub fn heartbeat_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.0.connection.idle_timeout = timeout;
        self
    }
    /// Count only heartbeat frames as signs of life, as lynn_tcp does (default: any frame).
    pub fn heartbeat_only(mut self, yes: bool) -> Self {
        self.0.connection.liveness = if yes {
            Liveness::HeartbeatOnly
        } else {
            Liveness::AnyFrame
        };
        self
    }
    /// Handlers of one connection that may run at once; replies still leave in order
    /// (lynn_tcp `with_server_single_processs_permit`, here per connection).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.0.connection.max_in_flight = n;
        self
    }
    /// Handlers running at once across the server (lynn_tcp `with_server_max_taskpool_size`).
    pub fn max_concurrent_handlers(mut self, n: Option<usize>) -> Self {
        self.0.max_concurrent_handlers = n;
        self
    }
    /// What happens when a connection's send queue is full.
    pub fn send_full(mut self, policy: SendFull) -> Self {
        self.0.connection.send_full = policy;
        self
    }
    /// Messages waiting for a connection's task before sends to it are refused.
    pub fn outbound_queue(mut self, messages: usize) -> Self {
        self.0.outbound_queue = messages;
        self
    }
    /// What to do with messages for unknown methods.
    pub fn unknown_method(mut self, policy: UnknownMethod) -> Self {
        self.0.unknown_method = policy;
        self
    }
    /// Bounds of the group table.
    pub fn groups(mut self, limits: GroupLimits) -> Self {
        self.0.groups = limits;
        self
    }
    /// Deadline of a graceful shutdown.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.0.shutdown_timeout = timeout;
        self
    }
    /// Serve Prometheus metrics over HTTP at this address.
    pub fn metrics_addr(mut self, addr: impl Into<String>) -> Self {
        self.0.metrics_addr = Some(addr.into());
        self
    }
    /// Bounds on the memory of large frames still arriving (see [`FrameBudget`]).
    pub fn frame_budget(mut self, budget: FrameBudget) -> Self {
        self.0.frame_budget = budget;
        self
    }
    /// Connections the listener queues before they are accepted (default: the larger of
    /// 1,024 and the system's cap).
    pub fn listen_backlog(mut self, n: u32) -> Self {
        self.0.listen_backlog = Some(n);
        self
    }
    /// Replaces the admission settings wholesale.
    pub fn admission(mut self, config: AdmissionConfig) -> Self {
        self.0.admission = config;
        self
    }
    /// The validated configuration.
    pub fn build(self) -> Result<ServerConfig, ConfigError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

/// Everything a lynn client needs to know. Build it with [`ClientConfig::builder`], or read
/// it from a file with the `serde` feature (see [the crate docs](crate#configuration-files-feature-serde)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct ClientConfig {
    /// Server address (`host:port`, or a socket path). Default `127.0.0.1:9177`.
    pub addr: String,
    /// Settings of the connection (client preset: heartbeats every 30 s of silence).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::serde_impl::client_connection")
    )]
    pub connection: ConnectionConfig,
    /// Socket options.
    pub socket: SocketOptions,
    /// Give up a connection attempt after this long.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub connect_timeout: Duration,
    /// Fail a `request` whose reply has not come after this long; `None`: wait forever.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off_duration"))]
    pub request_timeout: Option<Duration>,
    /// Requests awaiting replies at once; further requests are refused.
    pub max_pending_requests: usize,
    /// Reconnect policy; `None`: a lost connection stays lost.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::off"))]
    pub reconnect: Option<ReconnectConfig>,
    /// Messages kept while disconnected and sent after reconnecting; 0 refuses sends while
    /// disconnected (the default: a caller learns at once that its message did not go).
    pub offline_queue: usize,
    /// Pushes (messages that are no reply) held for `recv`.
    pub incoming_queue: usize,
    /// What happens to a push when `incoming_queue` pushes already wait for `recv`.
    pub push_full: PushFull,
    /// Tag each request with a correlation id (wire kinds 3 and 4) instead of matching
    /// replies by order. Needs a lynn server; a lynn_tcp server ignores tagged requests.
    pub correlation_ids: bool,
}

/// What a client does with a push (a message that is no reply) when `incoming_queue`
/// pushes already wait for `recv`.
///
/// Replies never wait in that queue: a reply goes straight to its request. But the socket
/// carries pushes and replies in one stream, so a client that stops reading for its pushes
/// also stops receiving replies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum PushFull {
    /// Drop the oldest waiting push to make room, and count it
    /// (`lynn_messages_dropped_total`). Reading never stops, so replies always arrive. The
    /// default: the newest state is what most pushes (positions, presence, prices) are for.
    #[default]
    DropOldest,
    /// Drop the new push and count it; the waiting ones keep their order.
    DropNewest,
    /// Stop reading until `recv` makes room: no push is lost, and TCP pushes back on the
    /// server. Replies behind the unread pushes wait too; a request that times out meanwhile
    /// fails with [`ClientError::PushesUnread`](crate::ClientError::PushesUnread).
    Wait,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            addr: "127.0.0.1:9177".into(),
            connection: ConnectionConfig::client(),
            socket: SocketOptions::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Some(Duration::from_secs(30)),
            max_pending_requests: 1024,
            reconnect: Some(ReconnectConfig::default()),
            offline_queue: 0,
            incoming_queue: 1024,
            push_full: PushFull::default(),
            correlation_ids: false,
        }
    }
}

impl ClientConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder(ClientConfig::default())
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.connection.validate()?;
        let err = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.into(),
            })
        };
        if self.connect_timeout.is_zero() {
            return err("connect_timeout", "must be positive");
        }
        if self.request_timeout == Some(Duration::ZERO) {
            return err(
                "request_timeout",
                "must be positive (use None to wait forever)",
            );
        }
        if self.max_pending_requests == 0 {
            return err("max_pending_requests", "must be at least 1");
        }
        if self.incoming_queue == 0 {
            return err("incoming_queue", "must be at least 1");
        }
        if let Some(policy) = &self.reconnect
            && let Err(e) = Reconnect::new(policy.clone())
        {
            return err("reconnect", &e.to_string());
        }
        Ok(())
    }
}

/// Builder of [`ClientConfig`]; every lynn_tcp client option has a method here.
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientConfigBuilder(ClientConfig);

impl ClientConfigBuilder {
    shared_setters!();
    /// Connection attempt timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.0.connect_timeout = timeout;
        self
    }
    /// Send a heartbeat after this much send silence; `None` never sends one.
    pub fn heartbeat_interval(mut self, interval: Option<Duration>) -> Self {
        self.0.connection.heartbeat_interval = interval;
        self
    }
    /// Close when the server is silent this long (off by default).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.0.connection.idle_timeout = timeout;
        self
    }
    /// Reply deadline of `request`.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.0.request_timeout = timeout;
        self
    }
    /// Requests awaiting replies at once.
    pub fn max_pending_requests(mut self, n: usize) -> Self {
        self.0.max_pending_requests = n;
        self
    }
    /// The whole reconnect policy; `None` disables reconnecting.
    pub fn reconnect(mut self, policy: Option<ReconnectConfig>) -> Self {
        self.0.reconnect = policy;
        self
    }
    /// Consecutive failed attempts before giving up; `None` retries forever (lynn_tcp's
    /// planned reconnect attempts option).
    pub fn reconnect_attempts(mut self, attempts: Option<u32>) -> Self {
        self.0
            .reconnect
            .get_or_insert_with(Default::default)
            .max_attempts = attempts;
        self
    }
    /// First delay between attempts; later ones back off from it.
    pub fn reconnect_interval(mut self, delay: Duration) -> Self {
        self.0
            .reconnect
            .get_or_insert_with(Default::default)
            .initial_delay = delay;
        self
    }
    /// Messages kept while disconnected; 0 refuses sends while disconnected.
    pub fn offline_queue(mut self, messages: usize) -> Self {
        self.0.offline_queue = messages;
        self
    }
    /// Pushes held for `recv`; see [`push_full`](Self::push_full) for what happens beyond.
    pub fn incoming_queue(mut self, messages: usize) -> Self {
        self.0.incoming_queue = messages;
        self
    }
    /// What to do with a push when `incoming_queue` pushes wait (default: drop the oldest).
    pub fn push_full(mut self, policy: PushFull) -> Self {
        self.0.push_full = policy;
        self
    }
    /// Tag requests with correlation ids, so that replies may come in any order and a
    /// request without a reply times out alone (default off: lynn_tcp's v1 wire, replies
    /// matched by order). The server must be a lynn server.
    pub fn correlation_ids(mut self, on: bool) -> Self {
        self.0.correlation_ids = on;
        self
    }
    /// The validated configuration.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_match_lynn_tcp() {
        let s = ServerConfig::builder().build().unwrap();
        assert_eq!(s.addr, "0.0.0.0:9177");
        assert_eq!(s.admission.max_connections, 100_000);
        assert_eq!(s.admission.max_per_ip, 100);
        assert_eq!(s.connection.idle_timeout, Some(Duration::from_secs(180)));
        let quiet = Some(Duration::from_secs(5));
        assert_eq!(s.connection.release_buffers_after, quiet);
        assert!(s.socket.nodelay);
        let c = ClientConfig::builder().build().unwrap();
        assert_eq!(c.connection.release_buffers_after, quiet);
        let c = ClientConfig::builder().release_buffers_after(None).build();
        assert_eq!(c.unwrap().connection.release_buffers_after, None);
    }

    #[test]
    fn builders_refuse_what_cannot_work() {
        let e = ServerConfig::builder()
            .max_connections(0)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "admission");
        let e = ServerConfig::builder()
            .send_queue_limit(3)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "send_queue_limit");
        let e = ClientConfig::builder()
            .connect_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "connect_timeout");
        let e = ClientConfig::builder()
            .heartbeat_interval(Some(Duration::ZERO))
            .build();
        assert_eq!(e.unwrap_err().field, "heartbeat_interval");
        let e = ServerConfig::builder()
            .release_buffers_after(Some(Duration::ZERO))
            .build();
        assert_eq!(e.unwrap_err().field, "release_buffers_after");
    }

    #[test]
    fn rate_zero_disables() {
        let s = ServerConfig::builder()
            .connection_rate(5)
            .connection_rate(0)
            .build()
            .unwrap();
        assert!(s.admission.rate.is_none());
    }
}
