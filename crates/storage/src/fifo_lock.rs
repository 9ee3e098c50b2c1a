//! A lock that is handed to its waiters strictly in the order they asked.
//!
//! Appends to one partition must take offsets in the order their requests
//! arrived: a client with several produce requests in flight (librdkafka's
//! default without idempotence) relies on it, as Kafka keeps it by serving one
//! request of a connection at a time. glommio's `Semaphore` does not promise
//! that order: a released unit goes to whichever task polls first, so a newly
//! arrived task can overtake a woken waiter. Here the holder hands the lock
//! directly to the oldest waiter still waiting.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use futures::channel::oneshot;

/// A first-come, first-served lock for one shard's tasks.
#[derive(Debug, Default)]
pub struct FifoLock {
    locked: Cell<bool>,
    waiters: RefCell<VecDeque<oneshot::Sender<()>>>,
}

/// Holds the lock; dropping it hands the lock to the next waiter.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct FifoGuard<'a> {
    lock: &'a FifoLock,
}

impl FifoLock {
    pub fn new() -> FifoLock {
        FifoLock::default()
    }

    /// Waits for the lock, behind every task that asked before.
    pub async fn lock(&self) -> FifoGuard<'_> {
        if !self.locked.get() {
            self.locked.set(true);
            return FifoGuard { lock: self };
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push_back(tx);
        // The holder hands the lock over by sending; the lock stays locked meanwhile.
        if rx.await.is_err() {
            // Only the lock drops a sender unsent, and only when it is dropped itself.
            unreachable!("a FifoLock waiter outlived its lock");
        }
        FifoGuard { lock: self }
    }

    fn release(&self) {
        loop {
            let next = self.waiters.borrow_mut().pop_front();
            match next {
                // A waiter that gave up (its task was dropped) is skipped.
                Some(waiter) => {
                    if waiter.send(()).is_ok() {
                        return;
                    }
                }
                None => {
                    self.locked.set(false);
                    return;
                }
            }
        }
    }
}

impl Drop for FifoGuard<'_> {
    fn drop(&mut self) {
        self.lock.release();
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    #[test]
    fn waiters_get_the_lock_in_the_order_they_asked() {
        glommio::LocalExecutor::default().run(async {
            let lock = Rc::new(FifoLock::new());
            let order = Rc::new(RefCell::new(Vec::new()));
            let first = lock.lock().await;
            let mut tasks = Vec::new();
            for i in 0..5 {
                let (lock, order) = (lock.clone(), order.clone());
                tasks.push(glommio::spawn_local(async move {
                    let _guard = lock.lock().await;
                    order.borrow_mut().push(i);
                    glommio::yield_if_needed().await;
                }));
                // Let each task queue up before the next is spawned.
                glommio::executor().yield_now().await;
            }
            drop(first);
            // A newcomer after the release still waits behind every earlier waiter.
            let late = {
                let (lock, order) = (lock.clone(), order.clone());
                glommio::spawn_local(async move {
                    let _guard = lock.lock().await;
                    order.borrow_mut().push(99);
                })
            };
            for t in tasks {
                t.await;
            }
            late.await;
            assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4, 99]);
        });
    }

    #[test]
    fn a_waiter_that_gives_up_is_skipped() {
        glommio::LocalExecutor::default().run(async {
            let lock = Rc::new(FifoLock::new());
            let held = lock.lock().await;
            let gave_up = {
                let lock = lock.clone();
                glommio::spawn_local(async move {
                    let _guard = lock.lock().await;
                })
            };
            glommio::executor().yield_now().await;
            drop(gave_up); // cancels the waiting task
            let next = {
                let lock = lock.clone();
                glommio::spawn_local(async move {
                    let _guard = lock.lock().await;
                    true
                })
            };
            glommio::executor().yield_now().await;
            drop(held);
            assert!(next.await);
            assert!(!lock.locked.get(), "released once the last holder is done");
        });
    }
}
