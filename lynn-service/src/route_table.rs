//! [`RouteTable`]: what a server builder collects (routes, a fallback, an event stream) and
//! the rules every runtime's builder follows when it becomes a [`Router`].
//!
//! - Shared state is set first: [`RouteTable::with_state`] on a table that already holds
//!   anything makes [`build`](RouteTable::build) fail with [`ServerError::Config`]
//!   (field `"state"`), because handlers are typed by the state.
//! - An event stream receives every message for a method without a route, and replaces
//!   any fallback, whether the fallback was given before or after it.
//! - A method routed twice makes `build` fail with [`ServerError::Route`].
//!
//! ```
//! use lynn_service::route_table::RouteTable;
//! use lynn_proto::router::Resolved;
//! use lynn_proto::ServerConfig;
//!
//! let mut table = RouteTable::new();
//! table.route(1, "echo");
//! table.event_stream("events");
//! table.fallback("fallback"); // the event stream still wins
//! let router = table.build(&ServerConfig::default()).unwrap();
//! assert_eq!(router.resolve(7), Resolved::Fallback(&"events"));
//! ```

use lynn_proto::ConfigError;
use lynn_proto::ServerConfig;
use lynn_proto::ServerError;
use lynn_proto::router::Router;

/// Routes, fallback and event stream of a server being built.
#[derive(Debug)]
pub struct RouteTable<H> {
    routes: Vec<(u16, H)>,
    fallback: Option<H>,
    events: Option<H>,
    misuse: Option<ConfigError>,
}

impl<H> Default for RouteTable<H> {
    fn default() -> Self {
        RouteTable {
            routes: Vec::new(),
            fallback: None,
            events: None,
            misuse: None,
        }
    }
}

impl<H> RouteTable<H> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `method` to `handler`.
    pub fn route(&mut self, method: u16, handler: H) {
        self.routes.push((method, handler));
    }

    /// The handler for methods without a route (unless an event stream is set).
    pub fn fallback(&mut self, handler: H) {
        self.fallback = Some(handler);
    }

    /// Sends messages for methods without a route to the event stream, through
    /// `forwarder`; replaces any fallback.
    pub fn event_stream(&mut self, forwarder: H) {
        self.events = Some(forwarder);
    }

    /// Whether an event stream is set.
    pub fn has_event_stream(&self) -> bool {
        self.events.is_some()
    }

    /// Methods routed so far.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether nothing was registered (no route, fallback or event stream).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.fallback.is_none() && self.events.is_none()
    }

    /// The table for handlers of another state type: empty, and remembering the misuse
    /// when this one was not (state must come before routes, fallback and event stream).
    pub fn with_state<H2>(self) -> RouteTable<H2> {
        let used = !self.is_empty();
        let misuse = self.misuse.or_else(|| {
            used.then(|| ConfigError {
                field: "state",
                problem: "must be set before routes, fallback and event_stream".into(),
            })
        });
        RouteTable {
            misuse,
            ..RouteTable::default()
        }
    }

    /// Checks `config` and the builder's use, and builds the router.
    pub fn build(self, config: &ServerConfig) -> Result<Router<H>, ServerError> {
        if let Some(e) = self.misuse {
            return Err(e.into());
        }
        config.validate()?;
        let mut router = Router::builder().unknown_method(config.unknown_method);
        for (method, h) in self.routes {
            router = router.route(method, h);
        }
        if let Some(h) = self.events.or(self.fallback) {
            router = router.fallback(h);
        }
        Ok(router.build()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lynn_proto::router::Resolved;

    #[test]
    fn state_after_routes_is_refused() {
        let mut table = RouteTable::new();
        table.route(1, ());
        let retyped: RouteTable<u8> = table.with_state();
        let e = retyped.build(&ServerConfig::default()).unwrap_err();
        assert!(matches!(
            e,
            ServerError::Config(ConfigError { field: "state", .. })
        ));
        let fresh: RouteTable<u8> = RouteTable::<()>::new().with_state();
        assert!(fresh.build(&ServerConfig::default()).is_ok());
    }

    #[test]
    fn event_stream_replaces_fallback_either_order() {
        let mut table = RouteTable::new();
        table.fallback('f');
        table.event_stream('e');
        let router = table.build(&ServerConfig::default()).unwrap();
        assert_eq!(router.resolve(3), Resolved::Fallback(&'e'));
    }

    #[test]
    fn duplicate_routes_and_bad_config_fail() {
        let mut table = RouteTable::new();
        table.route(1, ());
        table.route(1, ());
        let e = table.build(&ServerConfig::default()).unwrap_err();
        assert!(matches!(e, ServerError::Route(_)));
        let mut bad = ServerConfig::default();
        bad.connection.max_in_flight = 0;
        let e = RouteTable::<()>::new().build(&bad).unwrap_err();
        assert!(matches!(e, ServerError::Config(_)));
    }
}
