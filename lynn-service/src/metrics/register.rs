//! Every metric of a [`Metrics`] registered in its registry, with its help text.

use super::Metrics;
use super::collect::Collect;

impl Metrics {
    /// Registers every metric (prometheus-client appends `_total` to counters' names).
    pub(super) fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "lynn_connections",
            "Connections established (admitted by a server, connected by a client).",
            self.connections.clone(),
        );
        r.register(
            "lynn_connections_active",
            "Connections open now.",
            self.active.clone(),
        );
        r.register(
            "lynn_connections_closed",
            "Connections closed, by reason (sum over reasons for lynn_tcp's total).",
            self.closed.family.clone(),
        );
        r.register(
            "lynn_connections_failed",
            "Connection attempts that failed: refused by admission, TLS handshakes that \
             failed, a client's reconnect attempts that failed.",
            self.failed.clone(),
        );
        r.register(
            "lynn_connections_rejected",
            "Connections refused by admission, by limit.",
            self.rejected.family.clone(),
        );
        r.register(
            "lynn_tls_handshake_failures",
            "TLS handshakes that failed, by reason.",
            self.tls_failed.family.clone(),
        );
        r.register(
            "lynn_messages_dropped",
            "Messages dropped: a client's late replies and pushes beyond its incoming \
             queue, a server's outbound messages for a connection already closing.",
            self.dropped.clone(),
        );
        r.register(
            "lynn_network_tcp_errors",
            "Socket errors: failed accepts, and connections ended by a transport error \
             (reset, broken pipe, ...).",
            self.tcp_errors.clone(),
        );
        r.register(
            "lynn_system_queue_size",
            "Requests waiting for their handler: handlers started and not finished (lynn \
             has no thread pool queue; handlers run on their connection's task).",
            self.in_flight.clone(),
        );
        r.register(
            "lynn_unknown_methods",
            "Messages for methods without a route.",
            self.unknown_methods.clone(),
        );
        r.register(
            "lynn_handler_errors",
            "Handlers that returned an error.",
            self.handler_errors.clone(),
        );
        r.register(
            "lynn_handler_panics",
            "Handlers that panicked.",
            self.handler_panics.clone(),
        );
        r.register(
            "lynn_frame_bytes_held",
            "Bytes held by large frames still arriving.",
            self.frame_bytes.clone(),
        );
        r.register(
            "lynn_frame_budget_exceeded",
            "Times a connection reached the frame memory budget.",
            self.over_budget.clone(),
        );
        r.register_collector(Box::new(Collect(self.derived.clone())));
        self
    }
}
