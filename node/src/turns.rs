//! Incoming frames of one class, queued per chain and handled one chain at a time, in turn.
//!
//! The transport already serves peers in turn within a class (`banyan_net::Inbox`). Frames
//! of every chain share those streams, so without a second level one busy chain (a flood of
//! gossip, a long catch-up) would hold the class's worker while another chain's frames wait.
//! Here each chain has its own queue with a byte share: the worker takes one frame per chain
//! per round, and a frame whose chain has used up its share is dropped and counted
//! (`banyan_net_frames_shed_total{chain,class}`); gossip is best effort and block requests
//! are asked again, so the busy chain loses only its own excess.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use banyan_core::ids::ChainId;
use banyan_net::{Incoming, RoundRobin};

/// The chain's share of the queue is used up; the frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareFull;

#[derive(Default)]
struct State {
    frames: RoundRobin<ChainId, Incoming>,
    bytes: HashMap<ChainId, usize>,
    closed: bool,
}

/// Frames of one class, per chain (see the module docs).
pub struct ChainTurns {
    state: Mutex<State>,
    ready: Condvar,
    bytes_per_chain: usize,
}

impl ChainTurns {
    /// Queues where each chain may hold `bytes_per_chain` bytes of frames (a larger frame is
    /// accepted when its chain has nothing queued).
    pub fn new(bytes_per_chain: usize) -> Self {
        ChainTurns {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            bytes_per_chain,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section is a few map updates that cannot panic half-way.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queue a frame for `chain`, or refuse it when the chain's share is used up.
    pub fn push(&self, chain: ChainId, frame: Incoming) -> Result<(), ShareFull> {
        let len = frame.payload.len();
        {
            let mut state = self.lock();
            let held = state.bytes.get(&chain).copied().unwrap_or(0);
            if held > 0 && held.saturating_add(len) > self.bytes_per_chain {
                return Err(ShareFull);
            }
            state.bytes.insert(chain, held.saturating_add(len));
            state.frames.push(chain, frame);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next frame, one chain at a time; waits for one. `None` once closed and drained.
    pub fn pop(&self) -> Option<(ChainId, Incoming)> {
        let mut state = self.lock();
        loop {
            if let Some((chain, frame)) = state.frames.pop() {
                let len = frame.payload.len();
                if let Some(held) = state.bytes.get_mut(&chain) {
                    *held = held.saturating_sub(len);
                    if *held == 0 {
                        state.bytes.remove(&chain);
                    }
                }
                return Some((chain, frame));
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// No more frames will come: `pop` returns what is queued, then `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Frames queued for `chain`.
    pub fn queued(&self, chain: ChainId) -> usize {
        self.lock().frames.len_of(&chain)
    }
}

/// The feeding end: closes the queues when dropped, so the worker ends (after draining) when
/// the task that feeds it ends or is cancelled.
pub struct Feeder(pub Arc<ChainTurns>);

impl Drop for Feeder {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banyan_net::Class;
    use bytes::Bytes;

    fn frame(n: u8, len: usize) -> Incoming {
        Incoming {
            from: [1; 32],
            class: Class::Mempool,
            payload: Bytes::from(vec![n; len]),
        }
    }

    #[test]
    fn a_busy_chain_sheds_its_own_excess_and_the_other_keeps_its_turns() {
        let turns = ChainTurns::new(1_000);
        let busy = ChainId(0);
        let quiet = ChainId(1);
        let mut shed = 0;
        for n in 0..100 {
            if turns.push(busy, frame(n, 100)).is_err() {
                shed += 1;
            }
        }
        assert_eq!(shed, 90, "the busy chain holds its share and no more");
        for n in 0..3 {
            turns
                .push(quiet, frame(n, 100))
                .expect("the quiet chain has its own share");
        }
        let order: Vec<u32> = (0..6)
            .filter_map(|_| turns.pop())
            .map(|(c, _)| c.0)
            .collect();
        assert_eq!(order, vec![0, 1, 0, 1, 0, 1]);
        assert_eq!((turns.queued(busy), turns.queued(quiet)), (7, 0));
        // Taking frames gives the share back.
        turns.push(busy, frame(0, 100)).expect("room again");
    }

    #[test]
    fn a_frame_larger_than_the_share_passes_when_its_chain_has_nothing_queued() {
        let turns = ChainTurns::new(1_000);
        turns.push(ChainId(0), frame(0, 5_000)).expect("alone");
        assert_eq!(turns.push(ChainId(0), frame(1, 1)), Err(ShareFull));
        assert_eq!(turns.pop().map(|(_, f)| f.payload.len()), Some(5_000));
        turns.push(ChainId(0), frame(1, 1)).expect("drained");
    }

    #[test]
    fn pop_waits_for_a_frame_and_ends_once_the_feeder_is_gone() {
        let turns = std::sync::Arc::new(ChainTurns::new(1_000));
        let worker = {
            let turns = turns.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while let Some((chain, _)) = turns.pop() {
                    seen.push(chain.0);
                }
                seen
            })
        };
        let feeder = Feeder(turns.clone());
        feeder.0.push(ChainId(3), frame(0, 10)).expect("queued");
        feeder.0.push(ChainId(4), frame(0, 10)).expect("queued");
        drop(feeder);
        let mut seen = worker.join().expect("worker");
        seen.sort_unstable();
        assert_eq!(seen, vec![3, 4]);
    }
}
