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

use futures::channel::oneshot;
use futures::future::join_all;

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
    pub async fn scatter<R, Op, Fut>(self, shard: &Rc<Shard>, op: Op) -> Outcomes<E, Result<R, RouteError>>
    where
        R: Send + 'static,
        Op: FnOnce(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<Result<R, RouteError>>> + 'static,
    {
        self.hand_out(shard, op).await.outcomes().await
    }

    /// The first half of [`Plan::scatter`]: returns once every owner has its
    /// items queued (see [`Shard::hand_out`]), with the outcomes still to come.
    pub async fn hand_out<R, Op, Fut>(self, shard: &Rc<Shard>, op: Op) -> HandedPlan<E, R>
    where
        R: Send + 'static,
        Op: FnOnce(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<Result<R, RouteError>>> + 'static,
    {
        let Plan { slots, sent } = self;
        let handed = shard.hand_out(sent, op).await;
        HandedPlan { plan: Plan { slots, sent: Vec::new() }, handed }
    }
}

/// One owner's job of a [`Shard::hand_out`]: which items it holds and how
/// its answer comes back (or why it could not be handed over).
pub(super) struct HandedCall<R> {
    pub(super) owner: usize,
    pub(super) positions: Vec<usize>,
    pub(super) answer: Result<oneshot::Receiver<Vec<Result<R, RouteError>>>, RouteError>,
}

/// Work queued on its owners whose answers are still to come.
pub struct HandedOut<R> {
    pub(super) total: usize,
    pub(super) calls: Vec<HandedCall<R>>,
}

impl<R> HandedOut<R> {
    /// Waits for every owner and gives the answers in item order; an item
    /// whose owner did not answer gets that owner's error.
    pub async fn answers(self) -> Vec<Result<R, RouteError>> {
        let HandedOut { total, calls } = self;
        let calls = calls.into_iter().map(|HandedCall { owner, positions, answer }| async move {
            let answer = match answer {
                Ok(receiver) => receiver.await.map_err(|_| RouteError::Unreachable(owner)),
                Err(e) => Err(e),
            };
            (positions, answer)
        });
        let mut answers: Vec<Option<Result<R, RouteError>>> = (0..total).map(|_| None).collect();
        for (positions, answer) in join_all(calls).await {
            match answer {
                Ok(results) if results.len() == positions.len() => {
                    for (position, result) in positions.into_iter().zip(results) {
                        answers[position] = Some(result);
                    }
                }
                Ok(results) => {
                    tracing::error!(
                        asked = positions.len(),
                        answered = results.len(),
                        "shard answered a different number of items"
                    );
                    for position in positions {
                        answers[position] = Some(Err(RouteError::NotOwner));
                    }
                }
                Err(e) => {
                    for position in positions {
                        answers[position] = Some(Err(e.clone()));
                    }
                }
            }
        }
        answers.into_iter().map(|a| a.unwrap_or(Err(RouteError::NotOwner))).collect()
    }
}

/// Items of a [`Plan`] queued on their owners, answers still to come.
pub struct HandedPlan<E, R> {
    plan: Plan<E, ()>,
    handed: HandedOut<R>,
}

impl<E, R> HandedPlan<E, R> {
    /// Waits for the owners and gives each item's outcome in request order.
    pub async fn outcomes(self) -> Outcomes<E, Result<R, RouteError>> {
        let answers = self.handed.answers().await;
        self.plan.finish(answers, || Err(RouteError::NotOwner))
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
