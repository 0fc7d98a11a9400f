//! Method routing: from a frame's method id to a handler value of the caller's choosing.
//!
//! The core only resolves; it never calls handlers. `H` can be anything: a boxed closure, an
//! enum, an index into the caller's own table.

use std::fmt;

/// Method ids up to this value (exclusive) are resolved through a dense index table.
const DENSE_LIMIT: usize = 4096;
/// Marks an empty slot of the dense table.
const NO_ROUTE: u32 = u32::MAX;

/// What to do with a method that has neither a route nor a fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum UnknownMethod {
    /// Ignore the message (the default). The caller counts it if it keeps counts (the
    /// adapters do, in their metrics).
    #[default]
    Ignore,
    /// Close the connection: the peer speaks a protocol we do not.
    Close,
}

/// A router that could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// Two routes were registered for the same method id.
    #[error("method {method} is routed twice")]
    DuplicateRoute {
        /// The method id registered more than once.
        method: u16,
    },
}

/// The outcome of [`Router::resolve`].
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved<'a, H> {
    /// The handler registered for this method.
    Route(&'a H),
    /// No route matched; the fallback handler.
    Fallback(&'a H),
    /// No route and no fallback; policy [`UnknownMethod::Ignore`]: drop the message.
    Ignore,
    /// No route and no fallback; policy [`UnknownMethod::Close`]: close the connection.
    Close,
}

impl<'a, H> Resolved<'a, H> {
    /// The handler to call, if any (route or fallback).
    #[must_use]
    pub fn handler(&self) -> Option<&'a H> {
        match *self {
            Resolved::Route(h) | Resolved::Fallback(h) => Some(h),
            Resolved::Ignore | Resolved::Close => None,
        }
    }
}

impl<H> Clone for Resolved<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H> Copy for Resolved<'_, H> {}

/// Collects routes for a [`Router`]. Created by [`Router::builder`].
pub struct RouterBuilder<H> {
    routes: Vec<(u16, H)>,
    fallback: Option<H>,
    unknown: UnknownMethod,
}

impl<H> Default for RouterBuilder<H> {
    fn default() -> Self {
        RouterBuilder {
            routes: Vec::new(),
            fallback: None,
            unknown: UnknownMethod::default(),
        }
    }
}

impl<H> fmt::Debug for RouterBuilder<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterBuilder")
            .field(
                "methods",
                &self.routes.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            )
            .field("fallback", &self.fallback.is_some())
            .field("unknown_method", &self.unknown)
            .finish()
    }
}

impl<H> RouterBuilder<H> {
    /// Routes `method` to `handler`. Registering a method twice makes [`build`](Self::build) fail.
    #[must_use]
    pub fn route(mut self, method: u16, handler: H) -> Self {
        self.routes.push((method, handler));
        self
    }

    /// The handler for methods without a route. Setting it again replaces the previous one.
    #[must_use]
    pub fn fallback(mut self, handler: H) -> Self {
        self.fallback = Some(handler);
        self
    }

    /// The policy for methods with neither a route nor a fallback (default: ignore and count).
    #[must_use]
    pub fn unknown_method(mut self, policy: UnknownMethod) -> Self {
        self.unknown = policy;
        self
    }

    /// Builds the router, refusing duplicate method ids.
    pub fn build(mut self) -> Result<Router<H>, RouteError> {
        self.routes.sort_by_key(|(m, _)| *m);
        if let Some(w) = self.routes.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(RouteError::DuplicateRoute { method: w[0].0 });
        }
        let (methods, handlers): (Vec<u16>, Vec<H>) = self.routes.into_iter().unzip();
        let dense = match methods.last() {
            Some(&max) if usize::from(max) < DENSE_LIMIT => {
                let mut table = vec![NO_ROUTE; usize::from(max) + 1];
                for (index, &m) in methods.iter().enumerate() {
                    // At most 65 536 routes, so the index always fits in u32.
                    table[usize::from(m)] = u32::try_from(index).unwrap_or(NO_ROUTE);
                }
                table.into_boxed_slice()
            }
            _ => Box::default(),
        };
        Ok(Router {
            methods: methods.into_boxed_slice(),
            handlers: handlers.into_boxed_slice(),
            dense,
            fallback: self.fallback,
            unknown: self.unknown,
        })
    }
}

/// An immutable map from method id (`u16`) to handler `H`, with a fallback and a policy for
/// unknown methods.
///
/// [`resolve`](Router::resolve) is on the per-message path: it is an index into a dense table
/// when every method id is below 4096, a binary search otherwise, and never allocates. A
/// router is `Sync` when `H` is, so runtimes share it behind an `Arc`; it never changes
/// after [`build`](RouterBuilder::build).
///
/// # Example
///
/// ```
/// use lynn_proto::router::{Resolved, Router, UnknownMethod};
///
/// let router = Router::builder()
///     .route(1, "login")
///     .route(2, "chat")
///     .unknown_method(UnknownMethod::Close)
///     .build()?;
///
/// assert_eq!(router.resolve(2), Resolved::Route(&"chat"));
/// assert_eq!(router.resolve(9), Resolved::Close);
/// assert_eq!(router.methods().collect::<Vec<_>>(), [1, 2]);
/// # Ok::<(), lynn_proto::router::RouteError>(())
/// ```
pub struct Router<H> {
    /// Routed method ids, ascending.
    methods: Box<[u16]>,
    /// `handlers[i]` serves `methods[i]`.
    handlers: Box<[H]>,
    /// `dense[m]` is the index of method `m`, or `NO_ROUTE`; empty when ids are too sparse.
    dense: Box<[u32]>,
    fallback: Option<H>,
    unknown: UnknownMethod,
}

impl<H> fmt::Debug for Router<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("methods", &self.methods)
            .field("fallback", &self.fallback.is_some())
            .field("unknown_method", &self.unknown)
            .finish()
    }
}

impl<H> Router<H> {
    /// Starts an empty builder.
    #[must_use]
    pub fn builder() -> RouterBuilder<H> {
        RouterBuilder::default()
    }

    /// Resolves `method`: its route, else the fallback, else the unknown-method policy.
    /// Counts nothing: `&self` only reads.
    #[must_use]
    pub fn resolve(&self, method: u16) -> Resolved<'_, H> {
        if let Some(handler) = self.get(method) {
            return Resolved::Route(handler);
        }
        if let Some(handler) = &self.fallback {
            return Resolved::Fallback(handler);
        }
        match self.unknown {
            UnknownMethod::Ignore => Resolved::Ignore,
            UnknownMethod::Close => Resolved::Close,
        }
    }

    /// The handler routed for exactly `method`, ignoring fallback and policy; counts nothing.
    #[must_use]
    pub fn get(&self, method: u16) -> Option<&H> {
        let index = if self.dense.is_empty() {
            self.methods.binary_search(&method).ok()?
        } else {
            match self.dense.get(usize::from(method)) {
                Some(&i) if i != NO_ROUTE => i as usize,
                _ => return None,
            }
        };
        self.handlers.get(index)
    }

    /// The fallback handler, if one was set.
    #[must_use]
    pub fn fallback(&self) -> Option<&H> {
        self.fallback.as_ref()
    }

    /// The policy for unknown methods.
    #[must_use]
    pub fn unknown_method(&self) -> UnknownMethod {
        self.unknown
    }

    /// Routed method ids, ascending.
    pub fn methods(&self) -> impl ExactSizeIterator<Item = u16> + '_ {
        self.methods.iter().copied()
    }

    /// Number of routes (the fallback is not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.methods.len()
    }

    /// Whether no route is registered (a fallback may still be).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fallback_and_policies() {
        let r = Router::builder()
            .route(7, 'a')
            .fallback('f')
            .build()
            .unwrap();
        assert_eq!(r.resolve(7), Resolved::Route(&'a'));
        assert_eq!(r.resolve(8), Resolved::Fallback(&'f'));
        assert_eq!(r.resolve(8).handler(), Some(&'f'));

        let ignore = Router::builder().route(1, ()).build().unwrap();
        assert_eq!(ignore.unknown_method(), UnknownMethod::Ignore);
        assert_eq!(ignore.resolve(2), Resolved::Ignore);
        assert_eq!(ignore.resolve(2).handler(), None);
        assert_eq!(ignore.resolve(1), Resolved::Route(&()));

        let close = Router::<()>::builder()
            .unknown_method(UnknownMethod::Close)
            .build()
            .unwrap();
        assert!(close.is_empty());
        assert_eq!(close.resolve(0), Resolved::Close);
    }

    #[test]
    fn duplicate_routes_are_refused() {
        let err = Router::builder()
            .route(3, 1)
            .route(9, 2)
            .route(3, 3)
            .build()
            .unwrap_err();
        assert_eq!(err, RouteError::DuplicateRoute { method: 3 });
        assert_eq!(err.to_string(), "method 3 is routed twice");
    }

    #[test]
    fn dense_and_sparse_tables_agree() {
        let ids: Vec<u16> = vec![0, 1, 5, 100, 4095];
        let sparse_ids: Vec<u16> = vec![0, 1, 5, 100, 4096, u16::MAX];
        for ids in [ids, sparse_ids] {
            let r = ids
                .iter()
                .fold(Router::builder(), |b, &m| b.route(m, u32::from(m) * 10));
            let r = r.build().unwrap();
            assert_eq!(r.dense.is_empty(), ids.last() >= Some(&4096));
            assert_eq!(r.len(), ids.len());
            assert!(r.methods().eq(ids.iter().copied()));
            for m in 0..=u16::MAX {
                let expected = ids.contains(&m).then(|| u32::from(m) * 10);
                assert_eq!(r.get(m).copied(), expected, "method {m}");
            }
        }
    }

    #[test]
    fn methods_are_sorted_whatever_the_registration_order() {
        let r = Router::builder()
            .route(30, ())
            .route(10, ())
            .route(20, ())
            .build()
            .unwrap();
        assert_eq!(r.methods().collect::<Vec<_>>(), [10, 20, 30]);
        assert_eq!(r.fallback(), None);
    }

    #[test]
    fn router_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Router<Box<dyn Fn(&[u8]) + Send + Sync>>>();
    }
}
