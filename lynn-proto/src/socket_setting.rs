//! [`SocketSetting`]: what [`SocketOptions`] asks of a socket, one setting at a time, so
//! every runtime makes the same decisions (keep-alive `None` turns keep-alive off; an
//! unset buffer size keeps the OS default, which auto-tunes) and only maps each setting to
//! its socket call.
//!
//! ```
//! use lynn_proto::{SocketOptions, SocketSetting};
//!
//! let settings: Vec<_> = SocketOptions::default().settings().collect();
//! assert!(settings.contains(&SocketSetting::NoDelay(true)));
//! assert_eq!(settings.len(), 2, "buffer sizes stay the OS's");
//! ```

use std::time::Duration;

use crate::SocketOptions;

/// One socket option to apply to a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketSetting {
    /// `TCP_NODELAY` on or off.
    NoDelay(bool),
    /// Keep-alive probes after this much idle time; `None` turns keep-alive off.
    KeepAlive(Option<Duration>),
    /// `SO_RCVBUF`, in bytes.
    RecvBufferSize(usize),
    /// `SO_SNDBUF`, in bytes.
    SendBufferSize(usize),
}

impl SocketSetting {
    /// The option's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            SocketSetting::NoDelay(_) => "nodelay",
            SocketSetting::KeepAlive(_) => "keepalive",
            SocketSetting::RecvBufferSize(_) => "recv_buffer_size",
            SocketSetting::SendBufferSize(_) => "send_buffer_size",
        }
    }
}

impl SocketOptions {
    /// The settings to apply to a TCP socket, in order. Unix sockets take none of them.
    pub fn settings(&self) -> impl Iterator<Item = SocketSetting> + use<> {
        [
            Some(SocketSetting::NoDelay(self.nodelay)),
            Some(SocketSetting::KeepAlive(self.keepalive)),
            self.recv_buffer_size.map(SocketSetting::RecvBufferSize),
            self.send_buffer_size.map(SocketSetting::SendBufferSize),
        ]
        .into_iter()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_maps_to_one_setting() {
        let opts = SocketOptions {
            nodelay: false,
            keepalive: None,
            recv_buffer_size: Some(1 << 20),
            send_buffer_size: Some(1 << 19),
        };
        let got: Vec<_> = opts.settings().collect();
        assert_eq!(
            got,
            [
                SocketSetting::NoDelay(false),
                SocketSetting::KeepAlive(None),
                SocketSetting::RecvBufferSize(1 << 20),
                SocketSetting::SendBufferSize(1 << 19),
            ]
        );
        assert_eq!(got[2].name(), "recv_buffer_size");
    }
}
