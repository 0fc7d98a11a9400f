//! [`apply_socket_options`]: the core's [`SocketOptions`] on a real socket, the same way
//! for every adapter.

use lynn_proto::{SocketOptions, SocketSetting};

/// A socket that socket2 can borrow: `AsFd` on Unix, `AsSocket` on Windows.
#[cfg(unix)]
pub trait SocketHandle: std::os::fd::AsFd {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd> SocketHandle for T {}
/// A socket that socket2 can borrow: `AsFd` on Unix, `AsSocket` on Windows.
#[cfg(windows)]
pub trait SocketHandle: std::os::windows::io::AsSocket {}
#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket> SocketHandle for T {}

/// Applies `options` to a TCP socket; a setting the OS refuses is logged and skipped (a
/// connection works without it).
pub fn apply_socket_options(socket: &impl SocketHandle, options: &SocketOptions) {
    let sock = socket2::SockRef::from(socket);
    for setting in options.settings() {
        let res = match setting {
            SocketSetting::NoDelay(on) => sock.set_tcp_nodelay(on),
            SocketSetting::KeepAlive(Some(idle)) => {
                sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))
            }
            SocketSetting::KeepAlive(None) => sock.set_keepalive(false),
            SocketSetting::RecvBufferSize(n) => sock.set_recv_buffer_size(n),
            SocketSetting::SendBufferSize(n) => sock.set_send_buffer_size(n),
        };
        if let Err(e) = res {
            tracing::debug!(option = setting.name(), error = %e, "socket option not applied");
        }
    }
}
