//! Carry framed messages between validators over mutually authenticated QUIC.
//!
//! # Identity
//! A node's network identity is an ed25519 key pair (a 32-byte seed, [`NetConfig::secret`]).
//! Each node presents a self-signed X.509 certificate for that key (server name
//! [`SERVER_NAME`], ALPN `banyan/1`, TLS 1.3 only, ed25519 signatures only). Both sides
//! authenticate: the server requires a client certificate. A peer is accepted iff the
//! certificate's `SubjectPublicKeyInfo` is an ed25519 key in the allowed set (the keys of
//! [`NetConfig::peers`]) and the TLS 1.3 handshake signature verifies under that key. A dialer
//! accepts only the key it meant to reach. Anything else (unknown key, another algorithm, no or
//! malformed certificate, bad signature) fails the handshake, is logged with `tracing` and counted
//! in [`NetStats::rejected_handshakes`]. Binding these keys to validators' BLS keys is the node's
//! job; this crate only knows the allowed ed25519 keys.
//!
//! # Topology and reconnection
//! There is one connection per pair of nodes: the node with the lexicographically smaller key
//! dials, the other accepts. A connection from a peer that should have accepted is closed
//! ([`codes::WRONG_DIRECTION`]); a second connection from the same dialer replaces the first
//! (the dialer only redials once it considers the old one dead) and the old one is closed
//! ([`codes::REPLACED`]). The dialer redials for ever with exponential backoff from
//! [`NetConfig::reconnect_min`] to [`NetConfig::reconnect_max`] until [`Network::shutdown`].
//! Keep-alives every [`KEEP_ALIVE`] and an idle timeout of [`IDLE_TIMEOUT`] make a dead peer
//! noticed and redialed.
//!
//! # Classes and framing
//! Traffic has three [`Class`]es. Per connection, class and direction there is one long-lived
//! unidirectional QUIC stream. Its first byte names the class (0 consensus, 1 sync, 2 mempool);
//! then come frames, each a `u32` little-endian length followed by that many payload bytes.
//! Because QUIC multiplexes streams with separate flow control, a flood of sync frames cannot
//! block consensus frames; the consensus stream is also sent at a higher priority
//! (consensus > mempool > sync). Frames of one class from one peer arrive in order.
//!
//! # Limits
//! A frame longer than [`NetConfig::max_frame_bytes`] (default 16 MiB) is refused by the sender
//! ([`SendError::TooLarge`]). On receipt the length prefix is checked before anything is
//! allocated: a larger one is counted ([`NetStats::rejected_oversized`]), logged, and the
//! connection is closed with [`codes::OVERSIZED`]; the dialer then reconnects. A peer may open
//! at most three streams, and an unknown class byte closes the connection
//! ([`codes::PROTOCOL`]).
//!
//! # Backpressure
//! Outgoing frames wait in a queue per peer and class bounded in frames
//! ([`NetConfig::queue_frames`]) and in payload bytes ([`NetConfig::queue_bytes`]), so a peer
//! that stops reading parks a bounded amount of memory whatever the frames' sizes.
//! The queues outlive connections: frames queued while a peer is unreachable are sent once it is
//! reconnected. When a queue is full, [`Network::try_send`] returns [`SendError::Full`] (counted
//! in [`NetStats::dropped_full`]) and [`Network::send`] waits. Incoming frames go to bounded
//! queues per class ([`Receivers`]); a slow consumer stops the stream reader, whose QUIC flow
//! control then stops the sender's stream of that class only.
//!
//! Receiving is fair between peers: each class's [`Inbox`] keeps a queue per peer with its
//! own byte budget ([`NetConfig::inbox_bytes_per_peer`]) and hands frames out one peer at a
//! time, in turn. A peer past its budget waits (its stream stops, by flow control) while the
//! others' frames keep arriving, so one peer flooding a class cannot starve the rest.
//!
//! Delivery is at most once: a frame already taken from the queue when its connection fails is
//! lost, and callers that need reliability retransmit at their layer.
//!
//! # Fault injection
//! [`NetConfig::faults`] (for tests) drops frames on the sender with a seeded probability and
//! delays the others by a latency plus uniform jitter, keeping each stream's order.

mod der;
mod inbox;
mod network;
mod stats;
mod tls;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use zeroize::Zeroizing;

pub use der::CertError;
pub use inbox::{Inbox, RoundRobin};
pub use network::Network;
pub use stats::{NetStats, PerClass};
pub use tls::SERVER_NAME;

/// An ed25519 public key: the network identity of a peer.
pub type PeerKey = [u8; 32];

/// Keep-alive interval of every connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// A connection with no traffic (keep-alives included) for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`NetConfig::max_frame_bytes`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Default [`NetConfig::queue_frames`].
pub const DEFAULT_QUEUE_FRAMES: usize = 1024;
/// Default bound of each outgoing queue in bytes (per peer and class): a peer that stops
/// reading parks at most this much per class, whatever the frames' sizes.
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Default [`NetConfig::inbox_bytes_per_peer`]: 32 MiB (two of the largest frames).
pub const DEFAULT_INBOX_BYTES_PER_PEER: usize = 2 * DEFAULT_MAX_FRAME_BYTES;

/// QUIC application error codes with which this transport closes connections.
pub mod codes {
    /// The node is shutting down.
    pub const SHUTDOWN: u32 = 0;
    /// The peer sent a frame longer than `max_frame_bytes`.
    pub const OVERSIZED: u32 = 1;
    /// The peer broke the framing protocol (unknown class byte).
    pub const PROTOCOL: u32 = 2;
    /// A newer connection from the same peer replaced this one.
    pub const REPLACED: u32 = 3;
    /// The peer dialed although it has the larger key and should accept.
    pub const WRONG_DIRECTION: u32 = 4;
    /// Sending on a stream failed locally; the connection is dropped and redialed.
    pub const STREAM_FAILED: u32 = 5;
}

/// A traffic class; each has its own stream, queue and receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Proposals, votes, timeouts: small and urgent.
    Consensus,
    /// Block sync: large and bulk.
    Sync,
    /// Transaction gossip.
    Mempool,
}

impl Class {
    /// Every class, in wire-byte order.
    pub const ALL: [Class; 3] = [Class::Consensus, Class::Sync, Class::Mempool];

    /// The byte that opens a stream of this class.
    pub fn wire(self) -> u8 {
        match self {
            Class::Consensus => 0,
            Class::Sync => 1,
            Class::Mempool => 2,
        }
    }

    /// The class a stream's first byte names, if any.
    pub fn from_wire(byte: u8) -> Option<Class> {
        match byte {
            0 => Some(Class::Consensus),
            1 => Some(Class::Sync),
            2 => Some(Class::Mempool),
            _ => None,
        }
    }

    /// Index into per-class arrays.
    pub(crate) fn index(self) -> usize {
        usize::from(self.wire())
    }

    /// QUIC send priority of the class's stream (higher goes first).
    pub(crate) fn priority(self) -> i32 {
        match self {
            Class::Consensus => 2,
            Class::Mempool => 1,
            Class::Sync => 0,
        }
    }
}

/// A peer this node talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's ed25519 network key.
    pub key: PeerKey,
    /// Where the peer listens (dialed only if this node's key is the smaller one).
    pub addr: SocketAddr,
}

/// Injected faults, applied by the sender to every frame (for tests).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// Fixed delay added to every frame.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per frame.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a frame is dropped.
    pub loss: f64,
    /// Seed of the random draws.
    pub seed: u64,
}

/// Configuration of a [`Network`].
#[derive(Clone)]
pub struct NetConfig {
    /// UDP address to listen on (port 0 picks a free port; see [`Network::local_addr`]).
    pub listen: SocketAddr,
    /// The 32-byte ed25519 seed of this node's network key (wiped on drop).
    pub secret: Zeroizing<[u8; 32]>,
    /// The peers this node talks to and accepts; an entry with this node's own key is ignored.
    pub peers: Vec<PeerConfig>,
    /// Largest frame payload sent or accepted, in bytes (at most `u32::MAX`).
    pub max_frame_bytes: usize,
    /// Bound of each outgoing queue (per peer and class), in frames.
    pub queue_frames: usize,
    /// Bound of each outgoing queue (per peer and class), in payload bytes (at least
    /// `max_frame_bytes`): `try_send` refuses a frame that would pass it (`Full`).
    pub queue_bytes: usize,
    /// First redial delay after a failed dial or a lost connection.
    pub reconnect_min: Duration,
    /// Largest redial delay; the delay doubles up to it.
    pub reconnect_max: Duration,
    /// Bytes of received frames each peer may have waiting per class before its stream is
    /// paused (a frame larger than this is still taken, alone).
    pub inbox_bytes_per_peer: usize,
    /// Injected faults (tests only).
    pub faults: Option<Faults>,
}

impl NetConfig {
    /// A configuration with default limits: 16 MiB frames, queues of 1024 frames and 64 MiB,
    /// redial backoff
    /// from 100 ms to 10 s, no faults.
    pub fn new(
        listen: SocketAddr,
        secret: impl Into<Zeroizing<[u8; 32]>>,
        peers: Vec<PeerConfig>,
    ) -> Self {
        NetConfig {
            listen,
            secret: secret.into(),
            peers,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            inbox_bytes_per_peer: DEFAULT_INBOX_BYTES_PER_PEER,
            faults: None,
        }
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("listen", &self.listen)
            .field("secret", &"<redacted>")
            .field("peers", &self.peers)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("queue_frames", &self.queue_frames)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("inbox_bytes_per_peer", &self.inbox_bytes_per_peer)
            .field("faults", &self.faults)
            .finish()
    }
}

/// A frame received from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The authenticated sender.
    pub from: PeerKey,
    /// The class it was sent on.
    pub class: Class,
    /// The frame's payload.
    pub payload: Bytes,
}

/// The receiving ends of the per-class inboxes.
#[derive(Debug)]
pub struct Receivers {
    /// Consensus frames.
    pub consensus: Inbox,
    /// Sync frames.
    pub sync: Inbox,
    /// Mempool frames.
    pub mempool: Inbox,
}

impl Receivers {
    /// The inbox of one class.
    pub fn get_mut(&mut self, class: Class) -> &mut Inbox {
        match class {
            Class::Consensus => &mut self.consensus,
            Class::Sync => &mut self.sync,
            Class::Mempool => &mut self.mempool,
        }
    }
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The listen port is taken.
    #[error("port {port} in use: pick another --p2p-port or stop the other process")]
    AddrInUse {
        /// The port that was asked for.
        port: u16,
    },
    /// The listen socket could not be opened for another reason.
    #[error("cannot listen on {addr}: {source}; check that the address belongs to this machine")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// The TLS identity or configuration could not be built.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The QUIC endpoint could not be created.
    #[error("cannot start the QUIC endpoint: {0}")]
    Endpoint(std::io::Error),
}

/// Why a frame was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The key is not one of the configured peers.
    #[error("unknown peer: the key is not in the configured peer list (sending to self is not supported)")]
    UnknownPeer,
    /// The peer's queue for this class is full.
    #[error("queue full: the peer is slow or unreachable; retry later or use send() to wait")]
    Full,
    /// The payload exceeds the frame limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit; split the message")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The configured `max_frame_bytes`.
        max: usize,
    },
    /// The network has been shut down.
    #[error("network is shut down")]
    Closed,
}

/// The ed25519 public key of a 32-byte network secret.
pub fn public_key(secret: &[u8; 32]) -> Result<PeerKey, NetError> {
    tls::Identity::from_secret(secret).map(|identity| identity.key)
}

/// A short printable form of a key (first 8 bytes, hex) for logs.
pub(crate) fn short(key: &PeerKey) -> String {
    hex::encode(&key[..8])
}
