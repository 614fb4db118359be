//! One chain's data in a shared RocksDB store.
//!
//! Several chains live in one [`Store`]; every key of a chain starts with its id (4 bytes,
//! big endian), then a one-byte tag, so chains never see each other's keys:
//!
//! | column | key after the chain id | value |
//! |---|---|---|
//! | `Meta` | `T` | [`CommittedTip`] |
//! | `Meta` | `G` | genesis block id |
//! | `Meta` | `L` | latest [`Epoch`] with a record |
//! | `Meta` | `E` epoch (8, BE) | [`EpochRecord`] (without its proof) |
//! | `Meta` | `X` epoch (8, BE) | [`EpochChangeProof`] that the epoch ended |
//! | `Meta` | `P` BLS key (48) | its [`ProofOfPossession`] |
//! | `Blocks` | `B` block id (32) | [`Block`] (committed or not) |
//! | `Blocks` | `R` height (8, BE) | receipt summaries of the committed block |
//! | `Headers` | `H` height (8, BE) | id of the committed block at that height |
//! | `Headers` | `K` height (8, BE) | [`CertifiedHeader`]: the commit proof of the block at that height (kept for the last block of each commit) |
//! | `State` | `S` encoded [`StateKey`] | committed [`StateValue`] (absent = default) |
//! | `Outbox` | `O` height (8, BE) | packets sent by the committed block |
//! | `Consensus` | `F` | [`SafetyData`] |
//! | `Consensus` | `Q` | highest [`QuorumCertificate`] |
//! | `Consensus` | `C` | the replica's last committed block id |
//!
//! The vote log sits beside these in the `Consensus` column under its own prefix (no chain id
//! in front, for compatibility with stores written before this layout): `votelog/` | chain id
//! (4, BE) | epoch (8, BE) | round (8, BE) | block id (32), empty value — every vote this node
//! signed, so an audit can prove it never signed two blocks in one round.
//!
//! Every value goes through the canonical codec and is decoded with a size limit fit for its
//! type. A committed block, its receipts, packets, state writes, new proofs of possession, the
//! tip and — at an epoch's end — the next epoch's record are written in **one** batch with
//! [`Durability::Sync`] ([`ChainStore::write_commit`]): after a crash the chain is at some whole
//! committed block, never between two.

use std::sync::Arc;

use banyan_consensus::{
    BlockStore, EpochChangeProof, SafetyData, SafetyStorage, StorageError, MAX_MESSAGE_BYTES,
};
use banyan_core::certificate::{Committee, QuorumCertificate};
use banyan_core::codec::{self, BoundedVec, Bytes, Decode, Encode};
use banyan_core::hash::Digest;
use banyan_core::header::{
    Block, BlockHeader, CertifiedHeader, MAX_BLOCK_BYTES, MAX_CERTIFIED_HEADERS, MAX_TXS_PER_BLOCK,
};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Round};
use banyan_core::keys::{BlsPublicKey, KeyError, ProofOfPossession};
use banyan_core::state::State;
use banyan_core::tx::{Outbox, Packet, StateKey};
use banyan_core::value::{SidechainRecord, StateValue};
use banyan_store::{Column, Durability, Store, StoreError, WriteBatch};
use banyan_vrf::EpochSeed;

use crate::committee::{CommitteeRecord, KeyBook};
use crate::error::ChainError;

const TAG_TIP: u8 = b'T';
const TAG_GENESIS: u8 = b'G';
const TAG_LATEST_EPOCH: u8 = b'L';
const TAG_EPOCH: u8 = b'E';
const TAG_EPOCH_PROOF: u8 = b'X';
const TAG_POP: u8 = b'P';
const TAG_BLOCK: u8 = b'B';
const TAG_RECEIPTS: u8 = b'R';
const TAG_HEIGHT: u8 = b'H';
const TAG_STATE: u8 = b'S';
const TAG_OUTBOX: u8 = b'O';
const TAG_SAFETY: u8 = b'F';
const TAG_HIGH_QC: u8 = b'Q';
const TAG_COMMITTED: u8 = b'C';
const TAG_COMMIT_PROOF: u8 = b'K';

/// Most bytes of a receipt failure message kept.
pub const MAX_FAILURE_BYTES: usize = 512;

const SMALL_LIMIT: usize = 4 << 10;
const QC_LIMIT: usize = 64 << 10;
const EPOCH_LIMIT: usize = 1 << 20;
const RECEIPTS_LIMIT: usize = MAX_TXS_PER_BLOCK * (MAX_FAILURE_BYTES + 16) + 16;

/// The last committed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct CommittedTip {
    /// Its height.
    pub height: Height,
    /// Its id.
    pub id: Digest,
    /// The state root after it.
    pub state_root: Digest,
}

/// What became of one transaction of a committed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptSummary {
    /// Whether its effect was applied.
    pub applied: bool,
    /// Why not, if it was not.
    pub failure: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
struct StoredReceipt {
    applied: bool,
    failure: Option<Bytes<MAX_FAILURE_BYTES>>,
}

impl StoredReceipt {
    fn from_summary(r: &ReceiptSummary) -> Self {
        let failure = r.failure.as_ref().map(|f| {
            let mut end = f.len().min(MAX_FAILURE_BYTES);
            while !f.is_char_boundary(end) {
                end -= 1;
            }
            Bytes::new(f.as_bytes()[..end].to_vec()).unwrap_or_default()
        });
        StoredReceipt {
            applied: r.applied,
            failure,
        }
    }

    fn into_summary(self) -> ReceiptSummary {
        ReceiptSummary {
            applied: self.applied,
            failure: self
                .failure
                .map(|b| String::from_utf8_lossy(b.as_slice()).into_owned()),
        }
    }
}

/// One epoch of a chain: where it starts, who certifies it, its seed, and the proof that the
/// previous epoch ended (none for epoch 0, and none until the driver stores it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRecord {
    /// The epoch.
    pub epoch: Epoch,
    /// The block it starts from (genesis, or the previous epoch's ending block).
    pub base: Digest,
    /// That block's height.
    pub base_height: Height,
    /// Its committee, with the members' proofs of possession.
    pub committee: CommitteeRecord,
    /// Its seed.
    pub seed: EpochSeed,
    /// Proof that the previous epoch ended at `base`.
    pub proof: Option<EpochChangeProof>,
}

impl EpochRecord {
    /// The epoch's committee, every member's proof of possession checked again (one pairing
    /// check per member: call it once per epoch, or use
    /// [`ChainApp::committee`](crate::ChainApp::committee)).
    pub fn committee(&self) -> Result<Committee, KeyError> {
        self.committee.to_committee(self.epoch, &mut KeyBook::new())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
struct StoredEpoch {
    epoch: Epoch,
    base: Digest,
    base_height: Height,
    committee: CommitteeRecord,
    seed: [u8; 32],
}

/// Everything one committed block writes, in one batch.
#[derive(Debug)]
pub struct BlockCommit<'a> {
    /// The block.
    pub block: &'a Block,
    /// One summary per transaction.
    pub receipts: &'a [ReceiptSummary],
    /// Packets it sends, in order.
    pub packets: &'a [Packet],
    /// Its state writes (a default value deletes the key).
    pub writes: &'a [(StateKey, StateValue)],
    /// Proofs of possession of keys first staked in it.
    pub new_keys: &'a [(BlsPublicKey, ProofOfPossession)],
    /// The next epoch's record, when the block ends its epoch.
    pub next_epoch: Option<&'a EpochRecord>,
}

/// One chain's view of a shared store. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct ChainStore {
    store: Arc<Store>,
    chain: ChainId,
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStore")
            .field("path", &self.store.path())
            .field("chain", &self.chain)
            .finish()
    }
}

fn corrupt(what: impl Into<String>, e: impl std::fmt::Display) -> ChainError {
    ChainError::Corrupt {
        what: what.into(),
        detail: e.to_string(),
    }
}

impl ChainStore {
    /// The data of `chain` in `store`.
    pub fn new(store: Arc<Store>, chain: ChainId) -> Self {
        ChainStore { store, chain }
    }

    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn key(&self, tag: u8, rest: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(5 + rest.len());
        k.extend_from_slice(&self.chain.0.to_be_bytes());
        k.push(tag);
        k.extend_from_slice(rest);
        k
    }

    fn get<V: Decode<()>>(
        &self,
        column: Column,
        tag: u8,
        rest: &[u8],
        limit: usize,
        what: &str,
    ) -> Result<Option<V>, ChainError> {
        match self.store.get_raw(column, &self.key(tag, rest))? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes, limit)
                .map(Some)
                .map_err(|e| corrupt(format!("chain {} {what}", self.chain), e)),
        }
    }

    /// The committed tip (`None` before genesis is written).
    pub fn committed(&self) -> Result<Option<CommittedTip>, ChainError> {
        self.get(Column::Meta, TAG_TIP, &[], SMALL_LIMIT, "tip")
    }

    /// The id of the genesis block this store was created with.
    pub fn genesis_id(&self) -> Result<Option<Digest>, ChainError> {
        self.get(Column::Meta, TAG_GENESIS, &[], SMALL_LIMIT, "genesis id")
    }

    /// A block by id (committed or not).
    pub fn block_by_id(&self, id: &Digest) -> Result<Option<Block>, ChainError> {
        self.get(Column::Blocks, TAG_BLOCK, &id.0, MAX_BLOCK_BYTES, "block")
    }

    /// The committed block at `height`.
    pub fn block_by_height(&self, height: Height) -> Result<Option<Block>, ChainError> {
        let id: Option<Digest> = self.get(
            Column::Headers,
            TAG_HEIGHT,
            &height.0.to_be_bytes(),
            SMALL_LIMIT,
            "height index",
        )?;
        match id {
            None => Ok(None),
            Some(id) => match self.block_by_id(&id)? {
                Some(b) => Ok(Some(b)),
                None => Err(corrupt(
                    format!("chain {} block at height {height}", self.chain),
                    format!("indexed as {id} but missing"),
                )),
            },
        }
    }

    /// The receipt summaries of the committed block at `height`.
    pub fn receipts(&self, height: Height) -> Result<Option<Vec<ReceiptSummary>>, ChainError> {
        let stored: Option<BoundedVec<StoredReceipt, MAX_TXS_PER_BLOCK>> = self.get(
            Column::Blocks,
            TAG_RECEIPTS,
            &height.0.to_be_bytes(),
            RECEIPTS_LIMIT,
            "receipts",
        )?;
        Ok(stored.map(|v| {
            v.into_inner()
                .into_iter()
                .map(StoredReceipt::into_summary)
                .collect()
        }))
    }

    /// The packets sent by the committed block at `height`.
    pub fn outbox(&self, height: Height) -> Result<Option<Vec<Packet>>, ChainError> {
        let stored: Option<Outbox> = self.get(
            Column::Outbox,
            TAG_OUTBOX,
            &height.0.to_be_bytes(),
            MAX_BLOCK_BYTES,
            "outbox",
        )?;
        Ok(stored.map(BoundedVec::into_inner))
    }

    /// The committed value under `key` (its default when absent).
    pub fn state_value(&self, key: &StateKey) -> Result<StateValue, ChainError> {
        let v: Option<StateValue> = self.get(
            Column::State,
            TAG_STATE,
            &codec::encode(key),
            SMALL_LIMIT,
            "state value",
        )?;
        Ok(v.unwrap_or_else(|| StateValue::default_for(key)))
    }

    /// An account's committed nonce.
    pub fn nonce(&self, addr: &Address) -> Result<Nonce, ChainError> {
        match self.state_value(&StateKey::Account(*addr))? {
            StateValue::Nonce(n) => Ok(n),
            other => Err(corrupt("nonce", format!("holds {other:?}"))),
        }
    }

    /// An account's committed balance of `asset`.
    pub fn balance(&self, addr: &Address, asset: &AssetId) -> Result<Amount, ChainError> {
        match self.state_value(&StateKey::Balance(*addr, *asset))? {
            StateValue::Amount(a) => Ok(a),
            other => Err(corrupt("balance", format!("holds {other:?}"))),
        }
    }

    /// The committed entries whose encoded key starts with `key_prefix` (all of them for an
    /// empty prefix).
    fn state_entries(&self, key_prefix: &[u8]) -> Result<Vec<(StateKey, StateValue)>, ChainError> {
        let base = self.key(TAG_STATE, &[]).len();
        let prefix = self.key(TAG_STATE, key_prefix);
        let mut entries = Vec::new();
        for entry in self.store.iter_prefix(Column::State, &prefix) {
            let (k, v) = entry?;
            let key: StateKey =
                codec::decode(&k[base..], SMALL_LIMIT).map_err(|e| corrupt("state key", e))?;
            let value: StateValue =
                codec::decode(&v, SMALL_LIMIT).map_err(|e| corrupt("state value", e))?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    /// Every sidechain record in the committed state, by id (a main-chain store holds them).
    pub fn sidechains(&self) -> Result<Vec<(ChainId, SidechainRecord)>, ChainError> {
        // A key's encoding starts with its variant's tag, so every sidechain record is under
        // the prefix the encoding of any one of them starts with.
        let probe = codec::encode(&StateKey::Sidechain(ChainId::MAIN));
        let tag_len = probe.len() - codec::encode(&ChainId::MAIN).len();
        let mut out = Vec::new();
        for entry in self.state_entries(&probe[..tag_len])? {
            match entry {
                (StateKey::Sidechain(id), StateValue::Sidechain(Some(record))) => {
                    out.push((id, record))
                }
                (StateKey::Sidechain(_), StateValue::Sidechain(None)) => {}
                other => return Err(corrupt("sidechain record", format!("{other:?}"))),
            }
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// The whole committed state.
    pub fn load_state(&self) -> Result<State, ChainError> {
        // One bottom-up build of the tree; blocks then hash only the paths they change.
        State::from_entries(self.state_entries(&[])?).map_err(|e| corrupt("state entry", e))
    }

    /// Every stored proof of possession, checked again, as a key book.
    pub fn load_keys(&self) -> Result<KeyBook, ChainError> {
        let prefix = self.key(TAG_POP, &[]);
        let mut book = KeyBook::new();
        for entry in self.store.iter_prefix(Column::Meta, &prefix) {
            let (k, v) = entry?;
            let key = BlsPublicKey::from_bytes(&k[prefix.len()..])
                .map_err(|e| corrupt("stored BLS key", e))?;
            let pop: ProofOfPossession =
                codec::decode(&v, SMALL_LIMIT).map_err(|e| corrupt("proof of possession", e))?;
            book.verify_and_insert(&key, &pop)
                .map_err(|e| corrupt("proof of possession", e))?;
        }
        Ok(book)
    }

    /// The record of `epoch`, with the proof that the previous epoch ended if stored.
    pub fn epoch_record(&self, epoch: Epoch) -> Result<Option<EpochRecord>, ChainError> {
        let stored: Option<StoredEpoch> = self.get(
            Column::Meta,
            TAG_EPOCH,
            &epoch.0.to_be_bytes(),
            EPOCH_LIMIT,
            "epoch record",
        )?;
        let Some(s) = stored else {
            return Ok(None);
        };
        let proof = match epoch.0.checked_sub(1) {
            Some(prev) => self.epoch_proof(Epoch(prev))?,
            None => None,
        };
        Ok(Some(EpochRecord {
            epoch: s.epoch,
            base: s.base,
            base_height: s.base_height,
            committee: s.committee,
            seed: EpochSeed(s.seed),
            proof,
        }))
    }

    /// The latest epoch's record.
    pub fn epoch(&self) -> Result<Option<EpochRecord>, ChainError> {
        let latest: Option<Epoch> = self.get(
            Column::Meta,
            TAG_LATEST_EPOCH,
            &[],
            SMALL_LIMIT,
            "latest epoch",
        )?;
        match latest {
            None => Ok(None),
            Some(e) => self.epoch_record(e),
        }
    }

    /// The proof that `epoch` ended (archive served to validators still in it).
    pub fn epoch_proof(&self, epoch: Epoch) -> Result<Option<EpochChangeProof>, ChainError> {
        self.get(
            Column::Meta,
            TAG_EPOCH_PROOF,
            &epoch.0.to_be_bytes(),
            MAX_MESSAGE_BYTES,
            "epoch proof",
        )
    }

    /// Store the proof that `epoch` ended (the replica emits it after the ending block
    /// commits).
    pub fn put_epoch_proof(
        &self,
        epoch: Epoch,
        proof: &EpochChangeProof,
    ) -> Result<(), ChainError> {
        if proof.epoch() != epoch {
            return Err(ChainError::Invalid(format!(
                "the proof is for epoch {}, not epoch {epoch}",
                proof.epoch()
            )));
        }
        if proof.commit_qc.data.chain != self.chain {
            return Err(ChainError::Invalid(format!(
                "the proof is for chain {}, not chain {}",
                proof.commit_qc.data.chain, self.chain
            )));
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Column::Meta,
            &self.key(TAG_EPOCH_PROOF, &epoch.0.to_be_bytes()),
            proof,
        );
        // The epoch's last block is committed by this proof: keep it as that block's too.
        self.put_commit_proof_into(&mut batch, proof)?;
        self.store.write(batch, Durability::Sync)?;
        Ok(())
    }

    fn put_commit_proof_into(
        &self,
        batch: &mut WriteBatch,
        proof: &CertifiedHeader,
    ) -> Result<(), ChainError> {
        let Some(header) = proof.header() else {
            return Err(ChainError::Invalid("a commit proof without headers".into()));
        };
        if header.chain != self.chain {
            return Err(ChainError::Invalid(format!(
                "the commit proof is for chain {}, not chain {}",
                header.chain, self.chain
            )));
        }
        batch.put(
            Column::Headers,
            &self.key(TAG_COMMIT_PROOF, &header.height.0.to_be_bytes()),
            proof,
        );
        Ok(())
    }

    /// The committed blocks at heights `lo ..= hi` (from height 1 up), in height order, at
    /// most `max_blocks` of them and, past the first, within `max_bytes` encoded: what a
    /// follower's block request is answered with. Stops early at the committed tip.
    pub fn committed_blocks(
        &self,
        lo: u64,
        hi: u64,
        max_blocks: usize,
        max_bytes: usize,
    ) -> Result<Vec<Block>, ChainError> {
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        let mut h = lo.max(1);
        while h <= hi && blocks.len() < max_blocks {
            let Some(b) = self.block_by_height(Height(h))? else {
                break;
            };
            bytes = bytes.saturating_add(codec::encoded_len(&b));
            if !blocks.is_empty() && bytes > max_bytes {
                break;
            }
            blocks.push(b);
            h += 1;
        }
        Ok(blocks)
    }

    /// Record a vote this node signed, before it leaves (see the module docs).
    pub fn log_vote(&self, epoch: Epoch, round: Round, block: &Digest) -> Result<(), ChainError> {
        let mut b = WriteBatch::new();
        let key = vote_log_key(self.chain, epoch.0, round.0, block.as_bytes());
        b.put_raw(Column::Consensus, &key, Vec::new());
        self.store.write(b, Durability::Buffered)?;
        Ok(())
    }

    /// Every vote this node's log holds for its chain: (epoch, round, block id).
    pub fn signed_votes(&self) -> Result<Vec<(Epoch, Round, Digest)>, ChainError> {
        let mut prefix = VOTE_LOG_PREFIX.to_vec();
        prefix.extend_from_slice(&self.chain.0.to_be_bytes());
        let mut out = Vec::new();
        for item in self.store.iter_prefix(Column::Consensus, &prefix) {
            let (k, _) = item?;
            // A key of another length is not a vote record: skipped.
            let Some(rest) = k.get(prefix.len()..).filter(|r| r.len() == 48) else {
                continue;
            };
            let (Ok(epoch), Ok(round), Ok(block)) = (
                <[u8; 8]>::try_from(&rest[0..8]),
                <[u8; 8]>::try_from(&rest[8..16]),
                <[u8; 32]>::try_from(&rest[16..48]),
            ) else {
                continue;
            };
            out.push((
                Epoch(u64::from_be_bytes(epoch)),
                Round(u64::from_be_bytes(round)),
                Digest(block),
            ));
        }
        Ok(out)
    }

    /// Keep the commit proof of a committed block (the consensus gives one with every commit,
    /// for its last block). Losing it in a crash costs nothing but a longer proof: the next
    /// one proves this block too.
    pub fn put_commit_proof(&self, proof: &CertifiedHeader) -> Result<(), ChainError> {
        let mut batch = WriteBatch::new();
        self.put_commit_proof_into(&mut batch, proof)?;
        self.store.write(batch, Durability::Buffered)?;
        Ok(())
    }

    /// The commit proof of the committed block at `height`: the nearest stored proof at or
    /// above it, with the headers between prepended. `Ok(None)` when nothing at or above that
    /// height has a proof yet (genesis never has one: nothing certifies it); an error when the
    /// nearest proof is too far up to carry the headers between (more than
    /// [`MAX_CERTIFIED_HEADERS`] in all).
    pub fn certified_header(&self, height: Height) -> Result<Option<CertifiedHeader>, ChainError> {
        if height.0 == 0 {
            return Ok(None);
        }
        let prefix = self.key(TAG_COMMIT_PROOF, &[]);
        let Some(entry) = self
            .store
            .iter_prefix_from(Column::Headers, &prefix, &height.0.to_be_bytes())
            .next()
        else {
            return Ok(None);
        };
        let (key, bytes) = entry?;
        let proof: CertifiedHeader = codec::decode(&bytes, MAX_MESSAGE_BYTES)
            .map_err(|e| corrupt(format!("chain {} commit proof", self.chain), e))?;
        let at = key
            .get(prefix.len()..)
            .and_then(|k| <[u8; 8]>::try_from(k).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt(format!("chain {} commit proof", self.chain), "bad key"))?;
        if at == height.0 {
            return Ok(Some(proof));
        }
        let between = at - height.0;
        let total = between as usize + proof.headers.len();
        if between > MAX_CERTIFIED_HEADERS as u64 || total > MAX_CERTIFIED_HEADERS {
            return Err(ChainError::Invalid(format!(
                "block {height} is {between} blocks below its nearest commit proof (height {at}); a \
                 certified header carries at most {MAX_CERTIFIED_HEADERS} headers: ask for a height \
                 nearer to it"
            )));
        }
        let mut headers: Vec<BlockHeader> = Vec::with_capacity(total);
        for h in height.0..at {
            let block = self.block_by_height(Height(h))?.ok_or_else(|| {
                corrupt(
                    format!("chain {} block at height {h}", self.chain),
                    "below a commit proof but not committed",
                )
            })?;
            headers.push(block.header);
        }
        headers.extend(proof.headers.iter().cloned());
        Ok(Some(CertifiedHeader {
            // At most MAX_CERTIFIED_HEADERS, checked above.
            headers: BoundedVec::new(headers).map_err(|_| {
                ChainError::Invalid("too many headers for a certified header".into())
            })?,
            commit_qc: proof.commit_qc,
        }))
    }

    fn put_epoch(&self, batch: &mut WriteBatch, record: &EpochRecord) {
        let stored = StoredEpoch {
            epoch: record.epoch,
            base: record.base,
            base_height: record.base_height,
            committee: record.committee.clone(),
            seed: record.seed.0,
        };
        batch.put(
            Column::Meta,
            &self.key(TAG_EPOCH, &record.epoch.0.to_be_bytes()),
            &stored,
        );
        batch.put(
            Column::Meta,
            &self.key(TAG_LATEST_EPOCH, &[]),
            &record.epoch,
        );
    }

    fn put_state(&self, batch: &mut WriteBatch, key: &StateKey, value: &StateValue) {
        self.put_state_raw(batch, &self.key(TAG_STATE, &codec::encode(key)), value);
    }

    /// Store `value` under an already built state key (a default value deletes it).
    fn put_state_raw(&self, batch: &mut WriteBatch, key: &[u8], value: &StateValue) {
        if value.is_default() {
            batch.delete(Column::State, key);
        } else {
            batch.put(Column::State, key, value);
        }
    }

    fn put_pop(&self, batch: &mut WriteBatch, key: &BlsPublicKey, pop: &ProofOfPossession) {
        batch.put(Column::Meta, &self.key(TAG_POP, key.as_bytes()), pop);
    }

    fn put_committed_block(
        &self,
        batch: &mut WriteBatch,
        block: &Block,
        receipts: &[ReceiptSummary],
        packets: &[Packet],
    ) -> Result<(), ChainError> {
        let id = block.header.id();
        let h = block.header.height.0.to_be_bytes();
        batch.put(Column::Blocks, &self.key(TAG_BLOCK, &id.0), block);
        batch.put(Column::Headers, &self.key(TAG_HEIGHT, &h), &id);
        let stored = BoundedVec::<StoredReceipt, MAX_TXS_PER_BLOCK>::new(
            receipts.iter().map(StoredReceipt::from_summary).collect(),
        )
        .map_err(|r| ChainError::Invalid(format!("{} receipts in one block", r.len())))?;
        batch.put(Column::Blocks, &self.key(TAG_RECEIPTS, &h), &stored);
        if !packets.is_empty() {
            let outbox = Outbox::new(packets.to_vec())
                .map_err(|p| ChainError::Invalid(format!("{} packets in one block", p.len())))?;
            batch.put(Column::Outbox, &self.key(TAG_OUTBOX, &h), &outbox);
        }
        batch.put(
            Column::Meta,
            &self.key(TAG_TIP, &[]),
            &CommittedTip {
                height: block.header.height,
                id,
                state_root: block.header.state_root,
            },
        );
        Ok(())
    }

    /// Write the genesis of a fresh chain: its state, block, tip, genesis id, the proofs of
    /// possession of its validators and the epoch-0 record, in one synced batch.
    pub fn write_genesis(
        &self,
        block: &Block,
        state: &State,
        keys: &[(BlsPublicKey, ProofOfPossession)],
        epoch0: &EpochRecord,
    ) -> Result<(), ChainError> {
        let mut batch = WriteBatch::new();
        for (k, v) in state.sorted_entries() {
            self.put_state(&mut batch, &k, &v);
        }
        for (k, p) in keys {
            self.put_pop(&mut batch, k, p);
        }
        self.put_committed_block(&mut batch, block, &[], &[])?;
        batch.put(
            Column::Meta,
            &self.key(TAG_GENESIS, &[]),
            &block.header.id(),
        );
        self.put_epoch(&mut batch, epoch0);
        self.store.write(batch, Durability::Sync)?;
        Ok(())
    }

    /// Write everything a committed block changes, in one synced batch.
    pub fn write_commit(&self, c: &BlockCommit<'_>) -> Result<(), ChainError> {
        let mut batch = WriteBatch::new();
        self.put_committed_block(&mut batch, c.block, c.receipts, c.packets)?;
        // In key order: each memtable insert then starts next to the previous one, where
        // keys in block order would each search the skiplist from the top.
        let mut writes: Vec<(Vec<u8>, &StateValue)> = c
            .writes
            .iter()
            .map(|(k, v)| (self.key(TAG_STATE, &codec::encode(k)), v))
            .collect();
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in writes {
            self.put_state_raw(&mut batch, &k, v);
        }
        for (k, p) in c.new_keys {
            self.put_pop(&mut batch, k, p);
        }
        if let Some(record) = c.next_epoch {
            self.put_epoch(&mut batch, record);
        }
        self.store.write(batch, Durability::Sync)?;
        Ok(())
    }

    fn storage_error(&self, what: &str, e: impl std::fmt::Display) -> StorageError {
        StorageError(format!(
            "chain {} store {}: {what}: {e}",
            self.chain,
            self.store.path().display()
        ))
    }
}

impl BlockStore for ChainStore {
    fn get(&self, id: &Digest) -> Result<Option<Block>, StorageError> {
        self.block_by_id(id)
            .map_err(|e| self.storage_error(&format!("read block {id}"), e))
    }

    fn contains(&self, id: &Digest) -> Result<bool, StorageError> {
        self.store
            .get_raw(Column::Blocks, &self.key(TAG_BLOCK, &id.0))
            .map(|v| v.is_some())
            .map_err(|e| self.storage_error(&format!("read block {id}"), e))
    }

    fn insert(&mut self, block: Block) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        batch.put(
            Column::Blocks,
            &self.key(TAG_BLOCK, &block.header.id().0),
            &block,
        );
        self.store
            .write(batch, self.store.default_durability())
            .map_err(|e| self.storage_error("insert block", e))
    }

    fn committed(&self) -> Option<Digest> {
        match self.get::<Digest>(
            Column::Consensus,
            TAG_COMMITTED,
            &[],
            SMALL_LIMIT,
            "committed",
        ) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(chain = %self.chain, error = %e, "cannot read the committed pointer");
                None
            }
        }
    }

    fn set_committed(&mut self, id: Digest) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        batch.put(Column::Consensus, &self.key(TAG_COMMITTED, &[]), &id);
        self.store
            .write(batch, self.store.default_durability())
            .map_err(|e| self.storage_error("set committed", e))
    }

    fn high_qc(&self) -> Option<QuorumCertificate> {
        match self.get(Column::Consensus, TAG_HIGH_QC, &[], QC_LIMIT, "high QC") {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(chain = %self.chain, error = %e, "cannot read the highest QC");
                None
            }
        }
    }

    fn set_high_qc(&mut self, qc: &QuorumCertificate) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        batch.put(Column::Consensus, &self.key(TAG_HIGH_QC, &[]), qc);
        self.store
            .write(batch, self.store.default_durability())
            .map_err(|e| self.storage_error("set high QC", e))
    }
}

impl SafetyStorage for ChainStore {
    fn load(&self) -> Result<Option<SafetyData>, StorageError> {
        self.get(Column::Consensus, TAG_SAFETY, &[], QC_LIMIT, "safety data")
            .map_err(|e| self.storage_error("load safety data", e))
    }

    fn store(&mut self, data: &SafetyData) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        batch.put(Column::Consensus, &self.key(TAG_SAFETY, &[]), data);
        self.store
            .write(batch, Durability::Sync)
            .map_err(|e| self.storage_error("store safety data", e))
    }
}

impl From<StoreError> for ChainError {
    fn from(e: StoreError) -> Self {
        ChainError::Store(e.to_string())
    }
}

/// Prefix of the vote log in the consensus column (see the module docs).
pub const VOTE_LOG_PREFIX: &[u8] = b"votelog/";

/// Key of one signed vote in the vote log: prefix | chain | epoch | round | block.
fn vote_log_key(chain: ChainId, epoch: u64, round: u64, block: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(VOTE_LOG_PREFIX.len() + 4 + 16 + 32);
    k.extend_from_slice(VOTE_LOG_PREFIX);
    k.extend_from_slice(&chain.0.to_be_bytes());
    k.extend_from_slice(&epoch.to_be_bytes());
    k.extend_from_slice(&round.to_be_bytes());
    k.extend_from_slice(block);
    k
}
