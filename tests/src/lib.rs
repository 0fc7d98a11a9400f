//! Shared conformance suite (grows with the adapters).
