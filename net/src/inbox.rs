//! The receiving side of one traffic class: a queue per peer, served in turn.
//!
//! Every stream reader of a class pushes into the class's [`Inbox`]. Each peer has its own
//! byte budget ([`NetConfig::inbox_bytes_per_peer`](crate::NetConfig)); a reader whose peer
//! has used it up waits, so QUIC flow control stops that peer's stream only, while the other
//! peers' frames keep coming. The consumer takes frames round-robin across the peers that
//! have any, one frame per peer per turn: a peer that floods a class gets its turn and no
//! more, however fast it sends.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore};

use crate::{Incoming, PeerKey};

/// What a frame is charged against its peer's budget: its length, but at least this much
/// (so a flood of tiny frames is bounded by their bookkeeping too).
const MIN_CHARGE: usize = 256;

/// Items queued per key and taken one key at a time, in turn: each key with items waiting
/// gets one item per round, however many it has queued.
#[derive(Debug)]
pub struct RoundRobin<K, T> {
    queues: HashMap<K, VecDeque<T>>,
    /// Keys with items waiting, in serving order.
    turn: VecDeque<K>,
    len: usize,
}

impl<K: Hash + Eq + Clone, T> Default for RoundRobin<K, T> {
    fn default() -> Self {
        RoundRobin {
            queues: HashMap::new(),
            turn: VecDeque::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, T> RoundRobin<K, T> {
    /// Queue `item` behind `key`'s others.
    pub fn push(&mut self, key: K, item: T) {
        let queue = self.queues.entry(key.clone()).or_default();
        if queue.is_empty() {
            self.turn.push_back(key);
        }
        queue.push_back(item);
        self.len += 1;
    }

    /// The oldest item of the key whose turn it is.
    pub fn pop(&mut self) -> Option<(K, T)> {
        while let Some(key) = self.turn.pop_front() {
            // A key is in `turn` only while its queue holds items; the loop only guards that.
            let Some(queue) = self.queues.get_mut(&key) else {
                continue;
            };
            let Some(item) = queue.pop_front() else {
                self.queues.remove(&key);
                continue;
            };
            if queue.is_empty() {
                self.queues.remove(&key);
            } else {
                self.turn.push_back(key.clone());
            }
            self.len -= 1;
            return Some((key, item));
        }
        None
    }

    /// Items waiting, over all keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Items waiting behind `key`.
    pub fn len_of(&self, key: &K) -> usize {
        self.queues.get(key).map_or(0, VecDeque::len)
    }
}

struct State {
    /// Frames waiting, per peer, with the budget each one holds.
    frames: RoundRobin<PeerKey, (Incoming, u32)>,
    /// Set when the sending side is gone: `recv` drains what is left, then ends.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Each peer's budget in charge units.
    budgets: Mutex<HashMap<PeerKey, Arc<Semaphore>>>,
    /// Wakes the consumer.
    ready: Notify,
    bytes_per_peer: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the maps consistent (single inserts and removals), so
    // a panic elsewhere cannot leave them half-changed.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The consumer's end of one class (see the module docs).
pub struct Inbox {
    shared: Arc<Shared>,
}

/// The stream readers' end; dropping it ends the inbox once drained.
pub(crate) struct InboxTx {
    shared: Arc<Shared>,
}

/// An inbox where each peer may hold `bytes_per_peer` bytes of frames (a frame larger than
/// that is still accepted, alone).
pub(crate) fn inbox(bytes_per_peer: usize) -> (InboxTx, Inbox) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            frames: RoundRobin::default(),
            closed: false,
        }),
        budgets: Mutex::new(HashMap::new()),
        ready: Notify::new(),
        bytes_per_peer: bytes_per_peer.max(MIN_CHARGE),
    });
    (
        InboxTx {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

impl Shared {
    /// Budget units a frame of `len` bytes holds: at least [`MIN_CHARGE`], at most the whole
    /// budget (so any frame fits alone). Fits a `u32`: the budget is capped there.
    fn charge(&self, len: usize) -> u32 {
        let cap = self.budget_units();
        u32::try_from(len.clamp(MIN_CHARGE, cap)).unwrap_or(u32::MAX)
    }

    fn budget_units(&self) -> usize {
        self.bytes_per_peer
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize)
    }

    fn budget(&self, peer: &PeerKey) -> Arc<Semaphore> {
        lock(&self.budgets)
            .entry(*peer)
            .or_insert_with(|| Arc::new(Semaphore::new(self.budget_units())))
            .clone()
    }
}

impl InboxTx {
    /// Queue a frame, waiting while its peer's budget is used up. `false` once the consumer
    /// is gone (the frame is dropped).
    pub(crate) async fn push(&self, incoming: Incoming) -> bool {
        let shared = &self.shared;
        let charge = shared.charge(incoming.payload.len());
        let budget = shared.budget(&incoming.from);
        match budget.acquire_many(charge).await {
            // The consumer hands the units back when it takes the frame.
            Ok(permit) => permit.forget(),
            Err(_) => return false,
        }
        {
            let mut state = lock(&shared.state);
            if Arc::strong_count(shared) == 1 {
                return false;
            }
            state.frames.push(incoming.from, (incoming, charge));
        }
        shared.ready.notify_one();
        true
    }
}

impl Drop for InboxTx {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.ready.notify_one();
    }
}

impl Inbox {
    /// The next frame, taking peers in turn; `None` once the network is gone and every queued
    /// frame has been taken.
    pub async fn recv(&mut self) -> Option<Incoming> {
        loop {
            let notified = self.shared.ready.notified();
            match self.take() {
                Taken::Frame(incoming) => return Some(incoming),
                Taken::Closed => return None,
                Taken::Empty => notified.await,
            }
        }
    }

    /// The next frame if one is waiting.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        match self.take() {
            Taken::Frame(incoming) => Some(incoming),
            Taken::Closed | Taken::Empty => None,
        }
    }

    /// Frames waiting, over all peers.
    pub fn len(&self) -> usize {
        lock(&self.shared.state).frames.len()
    }

    /// Whether no frame is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self) -> Taken {
        let (incoming, charge) = {
            let mut state = lock(&self.shared.state);
            match state.frames.pop() {
                Some((_, front)) => front,
                None if state.closed => return Taken::Closed,
                None => return Taken::Empty,
            }
        };
        self.shared
            .budget(&incoming.from)
            .add_permits(charge as usize);
        Taken::Frame(incoming)
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("waiting", &self.len())
            .finish()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Wake readers waiting for budget: their frames have nowhere to go.
        for budget in lock(&self.shared.budgets).values() {
            budget.close();
        }
    }
}

enum Taken {
    Frame(Incoming),
    Empty,
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Class;
    use bytes::Bytes;

    fn frame(from: u8, n: u8, len: usize) -> Incoming {
        Incoming {
            from: [from; 32],
            class: Class::Mempool,
            payload: Bytes::from(vec![n; len]),
        }
    }

    #[test]
    fn round_robin_serves_keys_in_turn_and_counts() {
        let mut rr = RoundRobin::default();
        for n in 0..3 {
            rr.push('a', n);
        }
        rr.push('b', 10);
        assert_eq!((rr.len(), rr.len_of(&'a'), rr.len_of(&'b')), (4, 3, 1));
        let order: Vec<(char, i32)> = std::iter::from_fn(|| rr.pop()).collect();
        assert_eq!(order, vec![('a', 0), ('b', 10), ('a', 1), ('a', 2)]);
        assert!(rr.is_empty());
        // A key that comes back after emptying goes to the back of the turn.
        rr.push('b', 11);
        rr.push('a', 3);
        assert_eq!(rr.pop(), Some(('b', 11)));
    }

    #[tokio::test]
    async fn peers_are_served_in_turn_however_much_one_sends() {
        let (tx, mut rx) = inbox(1 << 20);
        for n in 0..50 {
            assert!(tx.push(frame(1, n, 10)).await);
        }
        for n in 0..3 {
            assert!(tx.push(frame(2, n, 10)).await);
        }
        let order: Vec<(u8, u8)> = (0..8)
            .map(|_| {
                let f = rx.try_recv().expect("a frame");
                (f.from[0], f.payload[0])
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (1, 0),
                (2, 0),
                (1, 1),
                (2, 1),
                (1, 2),
                (2, 2),
                (1, 3),
                (1, 4)
            ]
        );
        assert_eq!(rx.len(), 50 + 3 - 8);
    }

    #[tokio::test]
    async fn a_peer_past_its_budget_waits_and_the_others_do_not() {
        // A budget of four minimum-charge frames.
        let (tx, mut rx) = inbox(4 * MIN_CHARGE);
        let tx = Arc::new(tx);
        for n in 0..4 {
            assert!(tx.push(frame(1, n, 1)).await);
        }
        let blocked = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.push(frame(1, 4, 1)).await })
        };
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished(), "peer 1 is over its budget");
        // Another peer is not held back by peer 1's backlog.
        tokio::time::timeout(std::time::Duration::from_secs(5), tx.push(frame(2, 0, 1)))
            .await
            .expect("peer 2 has its own budget");
        // Taking one of peer 1's frames lets its reader go on.
        assert_eq!(rx.recv().await.map(|f| f.from[0]), Some(1));
        let pushed = tokio::time::timeout(std::time::Duration::from_secs(5), blocked)
            .await
            .expect("budget handed back")
            .expect("join");
        assert!(pushed);
        assert_eq!(rx.len(), 5);
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_budget_passes_alone() {
        let (tx, mut rx) = inbox(1_000);
        assert!(tx.push(frame(1, 0, 5_000)).await);
        assert_eq!(rx.recv().await.map(|f| f.payload.len()), Some(5_000));
        assert!(tx.push(frame(1, 1, 5_000)).await);
        assert_eq!(rx.len(), 1);
    }

    #[tokio::test]
    async fn the_inbox_ends_after_the_senders_go_and_it_is_drained() {
        let (tx, mut rx) = inbox(1 << 20);
        assert!(tx.push(frame(1, 0, 10)).await);
        drop(tx);
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_reader_waiting_for_budget_gives_up_when_the_consumer_goes() {
        let (tx, rx) = inbox(MIN_CHARGE);
        let tx = Arc::new(tx);
        assert!(tx.push(frame(1, 0, 1)).await);
        let blocked = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.push(frame(1, 1, 1)).await })
        };
        tokio::task::yield_now().await;
        drop(rx);
        let pushed = tokio::time::timeout(std::time::Duration::from_secs(5), blocked)
            .await
            .expect("woken")
            .expect("join");
        assert!(!pushed);
    }
}
