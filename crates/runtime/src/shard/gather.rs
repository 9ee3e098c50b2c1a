//! "Answer some items at once, send the rest to their owners, and put the
//! answers back in request order": the one way every handler does it.
//!
//! A handler walks its request in order and, per item (a partition, usually),
//! either answers it at once ([`Plan::answer`]) or sends it on
//! ([`Plan::send`]). [`Plan::scatter`] routes the sent items to their owner
//! shards; [`Plan::finish`] pairs the answers of one coordinator call with the
//! items sent. Both give one [`Outcome`] per item, in the order the items
//! were planned, so the handler builds its response by walking the request in
//! the same order again.

use std::future::Future;
use std::rc::Rc;

use super::Shard;
use crate::router::RouteError;

/// How one item of a request was answered.
#[derive(Debug)]
pub enum Outcome<E, R> {
    /// Answered at once, without leaving the handler.
    Early(E),
    /// Answered by whoever the item was sent to.
    Sent(R),
}

enum Slot<E> {
    Early(E),
    Sent,
}

/// The items of one request, in request order.
pub struct Plan<E, W> {
    slots: Vec<Slot<E>>,
    sent: Vec<W>,
}

impl<E, W> Default for Plan<E, W> {
    fn default() -> Self {
        Plan { slots: Vec::new(), sent: Vec::new() }
    }
}

impl<E, W> Plan<E, W> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next item is answered at once with `early`.
    pub fn answer(&mut self, early: E) {
        self.slots.push(Slot::Early(early));
    }

    /// The next item is sent on as `work`.
    pub fn send(&mut self, work: W) {
        self.slots.push(Slot::Sent);
        self.sent.push(work);
    }

    /// The items sent on, in order.
    pub fn sent(&self) -> &[W] {
        &self.sent
    }

    /// Pairs `answers` (one per item sent, in order) with the items; an item
    /// whose answer is missing gets `missing()`.
    pub fn finish<R>(self, answers: Vec<R>, missing: fn() -> R) -> Outcomes<E, R> {
        Outcomes { slots: self.slots.into_iter(), answers: answers.into_iter(), missing }
    }
}

/// Each item's outcome, in request order.
pub struct Outcomes<E, R> {
    slots: std::vec::IntoIter<Slot<E>>,
    answers: std::vec::IntoIter<R>,
    missing: fn() -> R,
}

impl<E, R> Outcomes<E, R> {
    /// The next item's outcome. Walking the request again in planning order
    /// never asks for more than were planned; if it did, the extra item reads
    /// as unanswered (`missing`).
    pub fn take(&mut self) -> Outcome<E, R> {
        match self.slots.next() {
            Some(Slot::Early(e)) => Outcome::Early(e),
            Some(Slot::Sent) | None => Outcome::Sent(self.answers.next().unwrap_or_else(self.missing)),
        }
    }
}

impl<E, I: Send + 'static> Plan<E, (usize, I)> {
    /// Sends every `(owner shard, item)` to its owner, where `op` handles that
    /// shard's items, and gives each item's outcome in request order.
    pub async fn scatter<R, Op, Fut>(mut self, shard: &Rc<Shard>, op: Op) -> Outcomes<E, Result<R, RouteError>>
    where
        R: Send + 'static,
        Op: FnOnce(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<Result<R, RouteError>>> + 'static,
    {
        let work = std::mem::take(&mut self.sent);
        let answers = shard.scatter(work, op).await;
        self.finish(answers, || Err(RouteError::NotOwner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_come_back_in_request_order() {
        let mut plan: Plan<&str, u32> = Plan::new();
        plan.send(10);
        plan.answer("early");
        plan.send(20);
        assert_eq!(plan.sent(), &[10, 20]);
        let mut outcomes = plan.finish(vec![11, 21], || 0);
        assert!(matches!(outcomes.take(), Outcome::Sent(11)));
        assert!(matches!(outcomes.take(), Outcome::Early("early")));
        assert!(matches!(outcomes.take(), Outcome::Sent(21)));
    }

    #[test]
    fn a_missing_answer_is_filled_in() {
        let mut plan: Plan<(), u32> = Plan::new();
        plan.send(1);
        plan.send(2);
        let mut outcomes = plan.finish(vec![5], || 99);
        assert!(matches!(outcomes.take(), Outcome::Sent(5)));
        assert!(matches!(outcomes.take(), Outcome::Sent(99)));
        assert!(matches!(outcomes.take(), Outcome::Sent(99)), "asking past the plan reads as unanswered");
    }
}
