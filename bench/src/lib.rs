//! What lynn's benchmark tools share: the echo the hand-written baselines serve
//! ([`echo`]), and TLS configured the way lynn configures it ([`tls`]: rustls with the ring
//! provider, TLS 1.3 only), with the benchmark's certificates.

pub mod echo;
pub mod tls;
