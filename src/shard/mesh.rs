//! Cross-shard calls over two glommio channel meshes: one carries
//! [`Envelope`]s (calls) and one [`ReplyEnvelope`]s (replies).
//!
//! A caller registers a local one-slot channel under a fresh id, sends the
//! envelope, and awaits the reply that the reply-receiver task routes back
//! by id. glommio numbers mesh peers in join order, not by shard id, so each
//! shard publishes its peer index at startup and every sender maps
//! explicitly (`call_peer_of_shard`, `reply_peer_of_shard`).
//!
//! Every envelope carries the time it was sent; the receiving shard
//! records how long delivery took (`Metrics::record_mesh_delivery`): the
//! cost of a wake-up across cores, and lost wake-ups that only the wake
//! tick ended.
//!
//! Calls to one shard are sent in the order they were made, also when the
//! channel is full (a glommio sender woken for room can be overtaken by a
//! newer send): a FIFO permit per target orders them. Idempotent produce
//! depends on it: a producer's pipelined batches for a partition on another
//! shard must reach the log in the order the connection read them.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    time::Instant,
};

use glommio::{
    channels::{
        channel_mesh::{Receivers, Senders},
        local_channel::{self, LocalSender},
    },
    sync::Semaphore,
};

use super::messages::{Envelope, ReplyEnvelope, ShardCall, ShardReply};

pub struct Mesh {
    pub shard_id: usize,
    calls: Senders<Envelope>,
    replies: Senders<ReplyEnvelope>,
    call_peer_of_shard: Vec<usize>,
    reply_peer_of_shard: Vec<usize>,
    pending: RefCell<HashMap<u64, LocalSender<ShardReply>>>,
    next_id: Cell<u64>,
    /// One FIFO permit per target shard: sends to it keep call order.
    send_order: Vec<Semaphore>,
}

impl Mesh {
    pub fn new(
        shard_id: usize,
        calls: Senders<Envelope>,
        replies: Senders<ReplyEnvelope>,
        call_peer_of_shard: Vec<usize>,
        reply_peer_of_shard: Vec<usize>,
    ) -> Mesh {
        let send_order = (0..call_peer_of_shard.len()).map(|_| Semaphore::new(1)).collect();
        Mesh {
            send_order,
            shard_id,
            calls,
            replies,
            call_peer_of_shard,
            reply_peer_of_shard,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        }
    }

    /// Sends `call` to `shard` (never this one) and waits for its reply.
    pub async fn call_remote(&self, shard: usize, call: ShardCall) -> ShardReply {
        assert_ne!(shard, self.shard_id, "local calls do not cross the mesh");
        let Some(&peer) = self.call_peer_of_shard.get(shard) else {
            return ShardReply::Unavailable;
        };
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (sender, receiver) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, sender);
        let envelope = Envelope {
            id,
            from_shard: self.shard_id,
            call,
            sent_at: Instant::now(),
        };
        let sent = match self.send_order.get(shard) {
            Some(order) => {
                let _in_order = order.acquire_permit(1).await;
                self.calls.send_to(peer, envelope).await.is_ok()
            }
            None => false,
        };
        if !sent {
            self.pending.borrow_mut().remove(&id);
            return ShardReply::Unavailable;
        }
        let reply = receiver.recv().await;
        self.pending.borrow_mut().remove(&id);
        reply.unwrap_or(ShardReply::Unavailable)
    }

    /// Sends the reply to a call that came from `shard`.
    pub async fn reply(&self, shard: usize, id: u64, reply: ShardReply) {
        let Some(&peer) = self.reply_peer_of_shard.get(shard) else {
            log::error!("reply for unknown shard {shard} dropped");
            return;
        };
        if self
            .replies
            .send_to(
                peer,
                ReplyEnvelope {
                    id,
                    reply,
                    sent_at: Instant::now(),
                },
            )
            .await
            .is_err()
        {
            log::warn!("shard {shard} is gone; reply {id} dropped");
        }
    }

    /// Routes a reply that arrived to the caller waiting for it.
    pub fn deliver(&self, envelope: ReplyEnvelope) {
        let sender = self.pending.borrow_mut().remove(&envelope.id);
        match sender {
            Some(sender) => {
                // A one-slot channel used once: it cannot be full.
                let _ = sender.try_send(envelope.reply);
            }
            None => log::debug!("reply {} has no waiting caller", envelope.id),
        }
    }
}

/// Spawns the tasks that receive calls and replies from every peer.
pub fn spawn_receivers(
    shard: Rc<super::Shard>,
    mut calls: Receivers<Envelope>,
    mut replies: Receivers<ReplyEnvelope>,
) {
    for (_, receiver) in calls.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(envelope) = receiver.recv().await {
                shard
                    .metrics
                    .borrow_mut()
                    .record_mesh_delivery(envelope.sent_at.elapsed());
                let bulk = matches!(
                    envelope.call,
                    ShardCall::Read { .. } | ShardCall::AwaitData { .. }
                );
                let call_shard = shard.clone();
                shard
                    .spawn(bulk, async move {
                        let shard = call_shard;
                        let reply = shard.handle_call(envelope.call).await;
                        shard.mesh.reply(envelope.from_shard, envelope.id, reply).await;
                    })
                    .detach();
            }
        })
        .detach();
    }
    for (_, receiver) in replies.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(envelope) = receiver.recv().await {
                shard
                    .metrics
                    .borrow_mut()
                    .record_mesh_delivery(envelope.sent_at.elapsed());
                shard.mesh.deliver(envelope);
            }
        })
        .detach();
    }
}
