//! Accept loop of one shard. Stops accepting when shutdown is requested;
//! connections already accepted keep being served until the shard exits.

use std::{rc::Rc, time::Duration};

use glommio::net::TcpListener;

use super::connection;
use crate::shard::Shard;

/// Accepts until `stop_requested` turns true.
pub async fn accept_until(shard: Rc<Shard>, listener: TcpListener, stop_requested: impl Fn() -> bool) {
    let mut stop = Box::pin(async {
        while !stop_requested() {
            glommio::timer::sleep(Duration::from_millis(50)).await;
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
                glommio::spawn_local(connection::serve(shard.clone(), stream)).detach();
            }
            Some(Err(e)) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("shard {}: accept failed: {e}", shard.id);
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
