//! Transport counters.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Class;

/// One counter per traffic class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerClass {
    /// Consensus frames.
    pub consensus: u64,
    /// Sync frames.
    pub sync: u64,
    /// Mempool frames.
    pub mempool: u64,
}

impl PerClass {
    /// The counter of one class.
    pub fn get(&self, class: Class) -> u64 {
        match class {
            Class::Consensus => self.consensus,
            Class::Sync => self.sync,
            Class::Mempool => self.mempool,
        }
    }

    /// The sum over all classes.
    pub fn total(&self) -> u64 {
        self.consensus + self.sync + self.mempool
    }
}

/// A snapshot of the transport's counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames written to a peer's stream.
    pub frames_sent: PerClass,
    /// Frames read from peers and handed to the receivers.
    pub frames_received: PerClass,
    /// Frames refused by `try_send`/`broadcast` because the peer's queue was full.
    pub dropped_full: PerClass,
    /// Frames dropped by injected loss (tests only; see `Faults`).
    pub dropped_faults: u64,
    /// Incoming frames whose length prefix exceeded `max_frame_bytes` (each closed a connection).
    pub rejected_oversized: u64,
    /// Peers refused during the TLS handshake (unknown key, not ed25519, bad certificate or
    /// signature).
    pub rejected_handshakes: u64,
    /// Authenticated connections established (dialed or accepted).
    pub connections: u64,
}

/// A per-class array of atomic counters.
#[derive(Default)]
struct AtomicPerClass([AtomicU64; 3]);

impl AtomicPerClass {
    fn add(&self, class: Class, n: u64) {
        self.0[class.index()].fetch_add(n, Ordering::Relaxed);
    }

    fn load(&self) -> PerClass {
        PerClass {
            consensus: self.0[Class::Consensus.index()].load(Ordering::Relaxed),
            sync: self.0[Class::Sync.index()].load(Ordering::Relaxed),
            mempool: self.0[Class::Mempool.index()].load(Ordering::Relaxed),
        }
    }
}

/// The live counters shared by the transport's tasks.
#[derive(Default)]
pub(crate) struct Stats {
    frames_sent: AtomicPerClass,
    frames_received: AtomicPerClass,
    dropped_full: AtomicPerClass,
    dropped_faults: AtomicU64,
    rejected_oversized: AtomicU64,
    rejected_handshakes: AtomicU64,
    connections: AtomicU64,
}

impl Stats {
    pub fn count_sent(&self, class: Class, n: u64) {
        self.frames_sent.add(class, n);
    }
    pub fn count_received(&self, class: Class) {
        self.frames_received.add(class, 1);
    }
    pub fn count_dropped_full(&self, class: Class) {
        self.dropped_full.add(class, 1);
    }
    pub fn count_dropped_fault(&self) {
        self.dropped_faults.fetch_add(1, Ordering::Relaxed);
    }
    pub fn count_oversized(&self) {
        self.rejected_oversized.fetch_add(1, Ordering::Relaxed);
    }
    pub fn count_rejected_handshake(&self) {
        self.rejected_handshakes.fetch_add(1, Ordering::Relaxed);
    }
    pub fn count_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> NetStats {
        NetStats {
            frames_sent: self.frames_sent.load(),
            frames_received: self.frames_received.load(),
            dropped_full: self.dropped_full.load(),
            dropped_faults: self.dropped_faults.load(Ordering::Relaxed),
            rejected_oversized: self.rejected_oversized.load(Ordering::Relaxed),
            rejected_handshakes: self.rejected_handshakes.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }
}
