//! Turns: the requests of one connection that must reach their partitions
//! in the order they were read.
//!
//! A connection reads ahead and answers its requests concurrently, writing
//! the answers in request order. Kafka instead handles one request of a
//! connection at a time, and producers count on what follows from it: with
//! several produce requests in flight, batches for one partition are
//! appended in the order they were sent. Without it, an idempotent producer
//! whose second request overtook its first would be told
//! OUT_OF_ORDER_SEQUENCE while its first request succeeds, which it cannot
//! retry, and a plain producer's records would be reordered.
//!
//! So each produce request takes a turn as it is read ([`Turns::take`]),
//! waits for it ([`Turn::wait`]) just before its partitions are handed to
//! their owners, and gives it up once they are ([`Turn`] dropped). The owners
//! take appends in the order they are handed over, and the durable part of
//! each append (the fsync, the replicas) still overlaps with the next
//! request's. A request that ends before it hands anything over gives its
//! turn up when dropped, waited for or not.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// One connection's turns.
#[derive(Default)]
pub struct Turns {
    /// The next turn to give out.
    next: Cell<u64>,
    /// The turn being served: every earlier one is over.
    serving: Cell<u64>,
    /// Turns given up before they came.
    given_up: RefCell<BTreeSet<u64>>,
    /// Tasks waiting for their turn.
    waiting: RefCell<BTreeMap<u64, Waker>>,
}

impl Turns {
    /// The next turn, after every turn taken before.
    pub fn take(self: &Rc<Self>) -> Turn {
        let number = self.next.get();
        self.next.set(number + 1);
        Turn { turns: self.clone(), number }
    }

    /// Moves on from turn `number`, which is over.
    fn end(&self, number: u64) {
        if number != self.serving.get() {
            self.given_up.borrow_mut().insert(number);
            return;
        }
        let mut serving = number + 1;
        {
            let mut given_up = self.given_up.borrow_mut();
            while given_up.remove(&serving) {
                serving += 1;
            }
        }
        self.serving.set(serving);
        if let Some(waker) = self.waiting.borrow_mut().remove(&serving) {
            waker.wake();
        }
    }
}

/// A request's place in its connection's order; over when dropped.
pub struct Turn {
    turns: Rc<Turns>,
    number: u64,
}

impl Turn {
    /// Waits until every earlier turn is over.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.turns.serving.get() == self.number {
                self.turns.waiting.borrow_mut().remove(&self.number);
                Poll::Ready(())
            } else {
                self.turns.waiting.borrow_mut().insert(self.number, cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.waiting.borrow_mut().remove(&self.number);
        self.turns.end(self.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn turns_come_in_the_order_they_were_taken() {
        let turns = Rc::new(Turns::default());
        let first = turns.take();
        let second = turns.take();
        let third = turns.take();
        assert!(third.wait().now_or_never().is_none());
        assert!(second.wait().now_or_never().is_none());
        assert!(first.wait().now_or_never().is_some());
        drop(first);
        assert!(third.wait().now_or_never().is_none(), "the second turn is not over");
        assert!(second.wait().now_or_never().is_some());
        drop(second);
        assert!(third.wait().now_or_never().is_some());
    }

    #[test]
    fn a_turn_given_up_early_does_not_hold_up_later_ones() {
        let turns = Rc::new(Turns::default());
        let first = turns.take();
        let second = turns.take();
        let third = turns.take();
        drop(second);
        assert!(third.wait().now_or_never().is_none(), "the first turn is not over");
        drop(first);
        assert!(third.wait().now_or_never().is_some(), "the second was given up");
        drop(third);
        assert!(turns.take().wait().now_or_never().is_some());
    }

    #[test]
    fn the_next_turn_is_woken_when_its_time_comes() {
        let turns = Rc::new(Turns::default());
        let first = turns.take();
        let second = turns.take();
        let woken = Arc::new(Woken(AtomicBool::new(false)));
        let waker = futures::task::waker(woken.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut wait = Box::pin(second.wait());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert!(!woken.0.load(Ordering::SeqCst));
        drop(first);
        assert!(woken.0.load(Ordering::SeqCst));
        assert!(wait.as_mut().poll(&mut cx).is_ready());
    }

    /// Records that it was woken.
    struct Woken(AtomicBool);

    impl futures::task::ArcWake for Woken {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.store(true, Ordering::SeqCst);
        }
    }
}
