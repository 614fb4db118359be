//! Order blocks in a Byzantine committee with BLS-aggregated votes.
//!
//! `banyan-consensus` is a 2-chain HotStuff-family protocol (Jolteon / HotStuff-2 style) run by
//! a committee of `n` validators with stake, tolerating Byzantine validators holding less than a
//! third of the stake. The same [`Replica`] state machine runs the main chain and every
//! sidechain, in the node (over QUIC, RocksDB) and in the deterministic simulator of [`sim`].
//!
//! # Rules
//!
//! **Rounds and leaders.** Time is divided into rounds `1, 2, …`; the leader of round `r` is
//! [`LeaderElection::leader`]`(r)` — in production the stake-weighted VRF schedule of
//! `banyan-vrf` ([`VrfLeaders`]); its header carries its VRF proof.
//!
//! **Quorums.** A quorum is any set of members holding strictly more than two thirds of the
//! committee's stake ([`Committee::quorum_stake`](banyan_core::certificate::Committee::quorum_stake)).
//! A *quorum certificate* (QC) for block `B` of round `r` is one BLS aggregate signature of
//! `VoteData(B)` plus a signer bitmap whose signers form a quorum; followers verify it with one
//! `fast_aggregate_verify`. Genesis (height 0, round 0) is certified by definition.
//!
//! **Propose.** On entering round `r`, its leader proposes a block extending the block of its
//! highest QC `qc`: directly if `qc.round = r - 1`, otherwise with the timeout certificate
//! (TC) of round `r - 1`. The proposal is signed over `(chain, epoch, r, block id)`.
//!
//! **Vote** ([`SafetyRules::sign_vote`]). A validator in round `r` votes for a valid proposal of
//! round `r` (leader's signature and VRF proof valid, `qc` and TC valid, parent known, payload
//! accepted by the [`Application`], timestamp above the parent's and at most
//! `max_clock_drift_ms` ahead of local time) iff `r > last_voted_round` and either
//! `qc.round + 1 = r`, or `tc.round + 1 = r` and `qc.round ≥` the highest high-QC round in
//! `tc`. It sends the vote to the leader of `r + 1`.
//!
//! **Aggregate.** The leader of `r + 1` adds up the votes for one block without checking them;
//! at a quorum it checks the aggregate once. If that fails it checks each vote, drops and bans
//! for the round the signers of bad ones, and waits for more ([`aggregate`]).
//!
//! **Advance.** A replica enters round `r + 1` on seeing a valid QC or TC of round `r` (in a
//! proposal, a timeout, or formed itself); its round timer is `base_timeout_ms` after a QC and
//! grows by `timeout_backoff_percent` with each consecutive TC, up to `max_timeout_ms`.
//!
//! **Timeout** ([`SafetyRules::sign_timeout`]). When the timer of round `r` fires, the replica
//! signs `(chain, epoch, r, high_qc.round)` — only if `r ≥ last_voted_round` and
//! `high_qc.round ≥ one_chain_round` — sets `last_voted_round := r` (no vote in `r` after a
//! timeout), and broadcasts it with its highest QC and the TC that let it into `r`. It
//! re-broadcasts the *same* timeout while in `r`. `n - f` stake of timeouts of `r` form a TC:
//! signers grouped by the high-QC round they signed, one aggregate per group, so every reported
//! round is authenticated (one pairing per distinct round, usually one or two).
//!
//! **Commit (2-chain).** When a replica sees a QC for block `B'` whose parent `B` has round
//! `B'.round - 1`, it commits `B` and all its uncommitted ancestors, in height order.
//!
//! **Why this is safe.** Suppose `B` of round `r` is committed by QC(`B'`), `B'` of round
//! `r + 1`. A quorum voted for `B'`, so each honest one of them has `last_voted_round ≥ r + 1`
//! and `one_chain_round ≥ r`. Take the lowest round `s > r + 1` with a certified block `C` not
//! extending `B`. `C`'s voters include an honest member of that quorum (quorums intersect in
//! an honest member). If `C` extends a QC of round `s - 1 > r` directly, that QC's block is
//! certified in a round in `(r, s)` and so extends `B` (minimality; `B` is the only block
//! certified in `r`, and the only one in `r + 1` extending it is `B'`), so `C` extends `B`.
//! If `C` came with a TC of `s - 1`, the TC holds a timeout of that honest member whose
//! signed high-QC round is `≥ one_chain_round ≥ r`, and `C`'s QC round is at least that; its
//! block is certified in a round `≥ r`, hence is `B` or extends it. Either way a contradiction.
//! Timeouts sign their high-QC round, so a Byzantine leader cannot under-report it.
//!
//! **Durability.** [`SafetyRules`] writes [`SafetyData`] through [`SafetyStorage`] before every
//! signature is computed; a replica restarted from its storage never signs two different
//! messages of one kind for one round. Blocks, the highest QC and the last commit go through
//! [`BlockStore`]; losing those costs only re-synchronisation.
//!
//! **Sync.** A proposal or certificate naming an unknown block makes the replica ask the sender
//! for it and up to [`MAX_SYNC_BLOCKS`] ancestors (an answer stops at
//! `max_sync_response_bytes` of blocks, below the transport's frame limit, and the asker asks
//! again from where it stopped); only blocks named by a verified QC or by
//! the parent link of a block already accepted are taken, so the hash chain authenticates them.
//! Proposals wait (at most [`MAX_PENDING_PROPOSALS`]) until their parent arrives; commits wait
//! until the chain down to the last committed block is complete.
//!
//! **Evidence.** Two validly signed proposals, or two votes, of one round by one member for
//! different blocks become an [`Evidence`] output that the application may slash on. A vote
//! forwards the proposer's signature of the block it is for, so a leader that sends each half
//! of the committee a different block is caught by the next leader, which receives votes for
//! both.
//!
//! **Untrusted input.** Every message is checked before it changes state: unknown signers,
//! other chains or epochs, stale rounds, rounds more than `max_round_lookahead` ahead, bad
//! signatures and inconsistent certificates are typed [`ConsensusError`]s and the message is
//! dropped. Wire decoding ([`Message::decode`]) is bounded by [`MAX_MESSAGE_BYTES`].
//!
//! # Architecture
//!
//! No I/O, no clock, no randomness, no threads: the driver passes `now` and inputs to
//! [`Replica::handle`] and carries out the returned [`Output`]s. Everything outside the protocol
//! is a trait: [`Application`], [`LeaderElection`], [`SignatureVerifier`], [`SafetyStorage`],
//! [`BlockStore`]. The [`sim`] module drives many replicas under seeded simulated time, with
//! faults and Byzantine mocks, and checks safety, liveness and double signing.
//!
//! **Epoch change.** The [`Application`] says which blocks end their epoch
//! ([`Application::ends_epoch`], from the header alone). Blocks built on an uncommitted
//! epoch-ending block `B` in the same epoch carry nothing (no transactions, `B`'s state root).
//! When `B` commits, the replica stops and emits [`Output::EpochChange`] with an
//! [`EpochChangeProof`]: the headers from `B` to the block whose QC committed it, and that QC —
//! signed by the *old* committee, it certifies `B` and so the next committee `B`'s state
//! names. A replica that commits `B` from a QC it formed or received in a message of its own
//! epoch also broadcasts that proof ([`Message::EpochProof`]): the other members would
//! otherwise learn of the commit only from the next proposal, which belongs to the next epoch
//! they have not entered, and would wait out a round timeout first. The driver starts the next epoch's replica with `B` as its round-0 base and the proof
//! attached ([`Replica::with_entry_proof`]); messages of the next epoch that arrived early are
//! handed over ([`Replica::take_next_epoch_messages`]). Rounds and safety data restart per
//! epoch (safety data of an older epoch is discarded, never reused). A validator still in an
//! old epoch that hears from a newer one asks that peer for the proof of its epoch's end
//! ([`Message::EpochProofRequest`]), verifies it against its own committee, syncs the blocks
//! up to `B`, commits them and moves on, one epoch at a time.
//!
//! # Limits and gaps
//!
//! Timeouts per round, messages buffered per future round, blocks per sync response
//! ([`MAX_SYNC_BLOCKS`]), proposals waiting for ancestors ([`MAX_PENDING_PROPOSALS`]), blocks
//! being fetched, next-epoch messages kept, cached signature checks and encoded message size
//! are all bounded. Not implemented: leader reputation (a crashed leader costs its round and
//! the previous one until it returns), metrics, and a proof archive inside the replica (a
//! replica serves only the proof of the epoch it entered by; the simulator's driver serves
//! older ones from the node's archive, as the node's storage should).

pub mod aggregate;
pub mod app;
pub mod contract;
pub mod crypto;
pub mod error;
pub mod leader;
pub mod replica;
pub mod safety;
pub mod sim;
pub mod store;
pub mod types;

pub use app::{AppError, Application, EmptyBlocks, Payload};
pub use crypto::{CachingVerifier, DirectVerifier, SharedVerifier, SignatureVerifier};
pub use error::{ConsensusError, StorageError};
pub use leader::{LeaderElection, RoundRobin, VrfLeaders};
pub use replica::{
    AggregationMode, Environment, Input, Output, Replica, ReplicaConfig, Status,
    MAX_PENDING_PROPOSALS,
};
pub use safety::{MemorySafetyStorage, SafetyData, SafetyRules, SafetyStorage};
pub use store::{BlockStore, MemoryBlockStore};
pub use types::{
    EpochChangeProof, Evidence, Message, Millis, Proposal, ProposalStub, SyncRequest, SyncResponse,
    Timeout, TimeoutCertificate, TimeoutData, Vote, DEFAULT_SYNC_RESPONSE_BYTES, MAX_MESSAGE_BYTES,
    MAX_SYNC_BLOCKS,
};
