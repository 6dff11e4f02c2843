//! Listening socket and accept loop of one shard. Stops accepting when
//! shutdown is requested; connections already accepted keep being served
//! until the shard exits.

use std::{net::SocketAddr, os::fd::FromRawFd, os::fd::IntoRawFd, rc::Rc, time::Duration};

use glommio::net::TcpListener;

use super::connection;
use crate::shard::Shard;

/// Binds `addr` with SO_REUSEADDR, and SO_REUSEPORT when every shard listens
/// on that port (the kernel spreads connections); with `advertise_shards`
/// the port is the shard's own. glommio's own bind sets only SO_REUSEPORT,
/// so after a restart the accepted connections left in TIME_WAIT would make
/// the port unbindable for a minute.
pub fn bind(addr: SocketAddr, shared: bool) -> std::io::Result<TcpListener> {
    bind_socket(addr, shared, 1024)
}

/// Binds a listening socket with SO_REUSEADDR, and SO_REUSEPORT if
/// `reuse_port` (without it a second process on the address fails to bind).
pub fn bind_socket(addr: SocketAddr, reuse_port: bool, backlog: i32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    // SAFETY: the descriptor is a bound, listening socket we own; ownership
    // moves into the glommio listener.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Accepts until `stop_requested` turns true.
pub async fn accept_until(shard: Rc<Shard>, listener: TcpListener, stop_requested: impl Fn() -> bool) {
    let mut stop = Box::pin(async {
        while !stop_requested() {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            // Sum up log lines this shard left out (log_limit.rs), so a
            // burst that stopped is still reported.
            super::log_limit::flush_expired();
        }
    });
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            (&mut stop).await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                // Reading requests and writing small responses is latency
                // work; big responses move to the bulk queue (connection.rs).
                shard
                    .spawn(false, connection::serve(shard.clone(), stream))
                    .detach();
            }
            Some(Err(e)) => {
                // EMFILE and friends: back off instead of spinning.
                crate::warn_limited!("accept failed", "shard {}: accept failed: {e}", shard.id);
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
