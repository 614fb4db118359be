//! Epoch seeds: the genesis seed and the chain of seeds fed by proposers' VRF outputs.

use crate::error::VrfError;
use crate::vrf::VrfOutput;
use banyan_core::hash::{hash, Digest, Domain, Hasher};
use banyan_core::ids::{Epoch, Height};

/// Most VRF outputs that may feed one epoch seed.
pub const MAX_SEED_CONTRIBUTIONS: u32 = 4096;

/// Hash domain of the genesis seed.
const GENESIS_DOMAIN: Domain = Domain::Custom("banyan/vrf/genesis-seed");
/// Hash domain of every later seed.
const SEED_DOMAIN: Domain = Domain::Custom("banyan/vrf/epoch-seed");

/// The randomness every draw of one epoch is made from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EpochSeed(pub [u8; 32]);

impl EpochSeed {
    /// The seed of epoch 0: `H("banyan/vrf/genesis-seed", genesis)`, where `genesis` is the
    /// id of the main chain's genesis block (or of its genesis configuration).
    pub fn genesis(genesis: &Digest) -> Self {
        EpochSeed(hash(GENESIS_DOMAIN, genesis.as_bytes()).0)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for EpochSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EpochSeed({}..)", &self.to_hex()[..16])
    }
}

/// How an epoch's seed is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedParams {
    /// The seed of epoch `e + 1` is fixed by the VRF outputs of the first this-many committed
    /// main-chain blocks of epoch `e` (the cut-off); later blocks do not count.
    pub contributions_per_epoch: u32,
}

impl SeedParams {
    /// Check the parameters.
    pub fn validate(&self) -> Result<(), VrfError> {
        if self.contributions_per_epoch == 0
            || self.contributions_per_epoch > MAX_SEED_CONTRIBUTIONS
        {
            return Err(VrfError::BadSeedContributions {
                got: self.contributions_per_epoch,
                max: MAX_SEED_CONTRIBUTIONS,
            });
        }
        Ok(())
    }
}

/// Builds the seed of epoch `e + 1` from the blocks of epoch `e` as they commit (sans-I/O:
/// the caller feeds each committed main-chain block's verified VRF output, in height order).
///
/// `seed(e + 1) = H("banyan/vrf/epoch-seed", (e + 1) as u64 LE || seed(e) || out_1 || ... ||
/// out_n || n as u32 LE)`, where `out_1..out_n` are the outputs of the first
/// `n = min(contributions_per_epoch, blocks committed in e)` blocks of epoch `e`.
#[derive(Clone, Debug)]
pub struct SeedBuilder {
    next_epoch: Epoch,
    seed: EpochSeed,
    limit: u32,
    outputs: Vec<VrfOutput>,
    last_height: Option<Height>,
}

impl SeedBuilder {
    /// Start collecting the contributions of `epoch`, whose seed is `seed`.
    pub fn new(epoch: Epoch, seed: EpochSeed, params: SeedParams) -> Result<Self, VrfError> {
        params.validate()?;
        Ok(SeedBuilder {
            // At u64::MAX there is no next epoch; saturating keeps this total, and such an
            // epoch number is never reached.
            next_epoch: Epoch(epoch.0.saturating_add(1)),
            seed,
            limit: params.contributions_per_epoch,
            outputs: Vec::with_capacity(params.contributions_per_epoch as usize),
            last_height: None,
        })
    }

    /// Feed the verified VRF output of the committed block at `height`. Returns whether it
    /// counted: `false` once the cut-off is reached. Heights must strictly increase.
    pub fn push(&mut self, height: Height, output: VrfOutput) -> Result<bool, VrfError> {
        if let Some(last) = self.last_height {
            if height <= last {
                return Err(VrfError::SeedHeightOrder { last, got: height });
            }
        }
        self.last_height = Some(height);
        if self.is_complete() {
            return Ok(false);
        }
        self.outputs.push(output);
        Ok(true)
    }

    /// Whether the cut-off is reached: the next seed is fixed and can be computed now.
    pub fn is_complete(&self) -> bool {
        self.outputs.len() >= self.limit as usize
    }

    /// Contributions counted so far.
    pub fn contributions(&self) -> usize {
        self.outputs.len()
    }

    /// The seed of the next epoch from the contributions counted (all of them if the epoch
    /// ended before the cut-off).
    pub fn finish(&self) -> EpochSeed {
        derive(self.next_epoch, &self.seed, &self.outputs)
    }
}

/// The seed of `epoch + 1` from the seed of `epoch` and the VRF outputs of its committed
/// main-chain blocks in height order (only the first `contributions_per_epoch` count).
pub fn next_epoch_seed(
    epoch: Epoch,
    seed: &EpochSeed,
    outputs: &[VrfOutput],
    params: SeedParams,
) -> Result<EpochSeed, VrfError> {
    params.validate()?;
    let n = outputs.len().min(params.contributions_per_epoch as usize);
    Ok(derive(
        Epoch(epoch.0.saturating_add(1)),
        seed,
        &outputs[..n],
    ))
}

fn derive(next_epoch: Epoch, seed: &EpochSeed, outputs: &[VrfOutput]) -> EpochSeed {
    let mut h = Hasher::new(SEED_DOMAIN);
    h.update(&next_epoch.0.to_le_bytes()).update(&seed.0);
    for out in outputs {
        h.update(&out.0);
    }
    // At most MAX_SEED_CONTRIBUTIONS outputs, so the count fits a u32.
    h.update(&(outputs.len() as u32).to_le_bytes());
    EpochSeed(h.finalize().0)
}
