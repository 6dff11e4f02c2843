//! Waiting for a partition's high watermark to move, without polling.
//!
//! Lives inside a [`super::partition::PartitionLog`], on its owning shard.
//! The appender calls [`HighWatermarkWatch::notify`] after every write; a
//! parked fetch (local, or remote through a mesh call) awaits
//! [`HighWatermarkWatch::wait`]. A waiter registers its waker when it would
//! block and removes it when dropped, so cancelled waits leave nothing
//! behind: the waiter list is bounded by the fetches parked right now.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

#[derive(Default)]
pub struct HighWatermarkWatch {
    waiters: RefCell<Vec<(u64, Waker)>>,
    next_id: Cell<u64>,
}

impl HighWatermarkWatch {
    /// Wakes every waiter; each re-checks its condition.
    pub fn notify(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for (_, waker) in waiters {
            waker.wake();
        }
    }

    /// Completes once `is_ready()` holds, re-checked after every notify.
    pub fn wait<'a, F: Fn() -> bool + 'a>(&'a self, is_ready: F) -> impl Future<Output = ()> + 'a {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        Wait {
            watch: self,
            id,
            is_ready,
        }
    }

    pub fn waiter_count(&self) -> usize {
        self.waiters.borrow().len()
    }
}

struct Wait<'a, F: Fn() -> bool> {
    watch: &'a HighWatermarkWatch,
    id: u64,
    is_ready: F,
}

impl<F: Fn() -> bool> Future for Wait<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.is_ready)() {
            return Poll::Ready(());
        }
        let mut waiters = self.watch.waiters.borrow_mut();
        match waiters.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => waiters.push((self.id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl<F: Fn() -> bool> Drop for Wait<'_, F> {
    fn drop(&mut self) {
        self.watch.waiters.borrow_mut().retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn waiters_wake_on_notify_and_leave_nothing_behind_when_dropped() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async move {
                let watch = Rc::new(HighWatermarkWatch::default());
                let level = Rc::new(Cell::new(0));
                let task = {
                    let (watch, level) = (watch.clone(), level.clone());
                    glommio::spawn_local(async move { watch.wait(|| level.get() > 0).await })
                };
                glommio::executor().yield_task_queue_now().await;
                assert_eq!(watch.waiter_count(), 1);
                watch.notify(); // condition still false: waits again
                glommio::executor().yield_task_queue_now().await;
                assert_eq!(watch.waiter_count(), 1);
                level.set(1);
                watch.notify();
                task.await;
                assert_eq!(watch.waiter_count(), 0);

                let cancelled = {
                    let watch = watch.clone();
                    glommio::spawn_local(async move { watch.wait(|| false).await })
                };
                glommio::executor().yield_task_queue_now().await;
                assert_eq!(watch.waiter_count(), 1);
                drop(cancelled);
                glommio::executor().yield_task_queue_now().await;
                assert_eq!(watch.waiter_count(), 0);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
