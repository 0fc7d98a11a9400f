//! reconnect (in progress)
