//! Committee sortition: which validators serve the main chain and each sidechain in an epoch,
//! and how much of each committee is replaced from one epoch to the next.
//!
//! The rules are in the crate docs (section *Committee sortition*); this module implements
//! them step for step.

use crate::draw::{sample_proportional, DrawStream};
use crate::error::VrfError;
use crate::seed::EpochSeed;
use crate::validators::ValidatorSet;
use banyan_core::certificate::{Committee, CommitteeMember, MAX_COMMITTEE_SIZE};
use banyan_core::hash::{Digest, Domain, Hasher};
use banyan_core::ids::{ChainId, Epoch};
use banyan_core::keys::PopVerifiedKey;

/// Most sidechains one sortition serves.
pub const MAX_SIDECHAINS: usize = 1024;

/// Stream domain choosing who leaves a committee (trim and rotation).
const ROTATE_DOMAIN: Domain = Domain::Custom("banyan/vrf/sortition/rotate");
/// Stream domain drawing newcomers when every seat can go to a distinct validator.
const DRAW_DOMAIN: Domain = Domain::Custom("banyan/vrf/sortition/draw");
/// Stream domain dealing the newcomers to the vacant seats.
const SEAT_DOMAIN: Domain = Domain::Custom("banyan/vrf/sortition/seat");
/// Stream domain filling one committee when validators are too few.
const SHARED_DOMAIN: Domain = Domain::Custom("banyan/vrf/sortition/shared");
/// Hash domain of [`Assignment::digest`].
const ASSIGNMENT_DOMAIN: Domain = Domain::Custom("banyan/vrf/assignment");

/// A fraction `num / den` in `[0, 1]`, kept as integers so no draw depends on float rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    num: u32,
    den: u32,
}

impl Fraction {
    /// Nothing.
    pub const ZERO: Fraction = Fraction { num: 0, den: 1 };
    /// Everything.
    pub const ONE: Fraction = Fraction { num: 1, den: 1 };

    /// `num / den`, refused unless `den > 0` and `num <= den`.
    pub fn new(num: u32, den: u32) -> Result<Self, VrfError> {
        if den == 0 || num > den {
            return Err(VrfError::BadRotationFraction { num, den });
        }
        Ok(Fraction { num, den })
    }

    /// `num / den` clamped into `[0, 1]` (a zero `den` reads as 1), for constants.
    pub const fn clamped(num: u32, den: u32) -> Self {
        let den = if den == 0 { 1 } else { den };
        let num = if num > den { den } else { num };
        Fraction { num, den }
    }

    /// Numerator.
    pub fn num(&self) -> u32 {
        self.num
    }

    /// Denominator.
    pub fn den(&self) -> u32 {
        self.den
    }

    /// `ceil(n * num / den)`, exactly.
    pub fn ceil_of(&self, n: usize) -> usize {
        let den = self.den.max(1) as u128;
        // n <= usize::MAX and num <= den, so the result is at most n.
        ((n as u128 * self.num as u128).div_ceil(den)) as usize
    }
}

/// The knobs of a sortition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortitionParams {
    /// Seats of every committee, main chain and sidechains alike (`c`), in
    /// `1..=MAX_COMMITTEE_SIZE`.
    pub committee_size: usize,
    /// Largest fraction `r` of a committee replaced by choice from one epoch to the next: at
    /// most `ceil(r * c)` members are rotated out, unless more than that left the validator set
    /// (see the crate docs).
    pub max_rotation: Fraction,
}

impl SortitionParams {
    /// Check the parameters.
    pub fn validate(&self) -> Result<(), VrfError> {
        if self.committee_size == 0 || self.committee_size > MAX_COMMITTEE_SIZE {
            return Err(VrfError::BadCommitteeSize {
                got: self.committee_size,
                max: MAX_COMMITTEE_SIZE,
            });
        }
        Fraction::new(self.max_rotation.num, self.max_rotation.den)?;
        Ok(())
    }

    /// `ceil(r * c)`: the most members of one committee replaced by choice per epoch.
    pub fn rotation_budget(&self) -> usize {
        self.max_rotation.ceil_of(self.committee_size)
    }
}

/// How one committee changed from the previous epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationStats {
    /// Members of the previous epoch's committee still serving.
    pub kept: usize,
    /// Previous members removed by force: they left the validator set, already serve another
    /// committee (after an epoch with shared seats), or the committee shrank.
    pub departed: usize,
    /// Previous members rotated out by choice (at most the rotation budget minus `departed`).
    pub rotated_out: usize,
    /// Members new to this committee.
    pub joined: usize,
}

/// One chain's committee for an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCommittee {
    chain: ChainId,
    members: Vec<CommitteeMember>,
    stats: RotationStats,
}

impl ChainCommittee {
    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// Members in canonical (ascending key) order, with their stake in this epoch.
    pub fn members(&self) -> &[CommitteeMember] {
        &self.members
    }

    /// How it changed since the previous epoch (all `joined` for a first draw).
    pub fn stats(&self) -> RotationStats {
        self.stats
    }

    /// Whether `key` serves on it.
    pub fn contains(&self, key: &PopVerifiedKey) -> bool {
        self.members.binary_search_by(|m| m.key.cmp(key)).is_ok()
    }
}

/// Who serves where in one epoch: the result of [`sortition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    epoch: Epoch,
    committees: Vec<ChainCommittee>,
    shared_seats: bool,
    max_committees_per_validator: usize,
}

impl Assignment {
    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Committees in chain order: the main chain first, then sidechains by ascending id.
    pub fn committees(&self) -> &[ChainCommittee] {
        &self.committees
    }

    /// The committee of `chain`, if it has one.
    pub fn committee(&self, chain: ChainId) -> Option<&ChainCommittee> {
        // Chain order is ascending ids: ChainId::MAIN is 0.
        self.committees
            .binary_search_by(|c| c.chain.cmp(&chain))
            .ok()
            .map(|i| &self.committees[i])
    }

    /// The certificate committee of `chain` (bitmap order = canonical key order).
    pub fn certificate_committee(&self, chain: ChainId) -> Result<Committee, VrfError> {
        let c = self.committee(chain).ok_or(VrfError::UnknownChain(chain))?;
        Ok(Committee::new(self.epoch, c.members.clone())?)
    }

    /// Whether some validator holds seats on two or more committees: there were fewer
    /// validators than seats (see the crate docs).
    pub fn shared_seats(&self) -> bool {
        self.shared_seats
    }

    /// The most committees any one validator serves on (1 unless seats are shared).
    pub fn max_committees_per_validator(&self) -> usize {
        self.max_committees_per_validator
    }

    /// The chains `key` serves, in chain order.
    pub fn chains_of(&self, key: &PopVerifiedKey) -> Vec<ChainId> {
        self.committees
            .iter()
            .filter(|c| c.contains(key))
            .map(|c| c.chain)
            .collect()
    }

    /// A commitment to the assignment: `H("banyan/vrf/assignment", epoch u64 LE ||
    /// shared_seats u8 || per committee in order: chain u32 LE || members u32 LE || per member
    /// in order: key (48 bytes) || stake u64 LE)`.
    pub fn digest(&self) -> Digest {
        let mut h = Hasher::new(ASSIGNMENT_DOMAIN);
        h.update(&self.epoch.0.to_le_bytes())
            .update(&[self.shared_seats as u8]);
        for c in &self.committees {
            // Committees have at most MAX_COMMITTEE_SIZE members.
            h.update(&c.chain.0.to_le_bytes())
                .update(&(c.members.len() as u32).to_le_bytes());
            for m in &c.members {
                h.update(m.key.key().as_bytes())
                    .update(&m.stake.to_le_bytes());
            }
        }
        h.finalize()
    }
}

/// The chain order of an epoch: the main chain, then the sidechains ascending.
fn chain_order(sidechains: &[ChainId]) -> Result<Vec<ChainId>, VrfError> {
    if sidechains.len() > MAX_SIDECHAINS {
        return Err(VrfError::TooManySidechains {
            got: sidechains.len(),
            max: MAX_SIDECHAINS,
        });
    }
    let mut chains = Vec::with_capacity(sidechains.len() + 1);
    chains.push(ChainId::MAIN);
    let mut sorted = sidechains.to_vec();
    sorted.sort();
    for (i, &chain) in sorted.iter().enumerate() {
        if chain.is_main() {
            return Err(VrfError::MainChainAsSidechain);
        }
        if i > 0 && sorted[i - 1] == chain {
            return Err(VrfError::DuplicateSidechain(chain));
        }
        chains.push(chain);
    }
    Ok(chains)
}

/// `epoch u64 LE || chain u32 LE`: the context of per-chain streams.
fn chain_context(epoch: Epoch, chain: ChainId) -> [u8; 12] {
    let mut ctx = [0u8; 12];
    ctx[..8].copy_from_slice(&epoch.0.to_le_bytes());
    ctx[8..].copy_from_slice(&chain.0.to_le_bytes());
    ctx
}

/// One committee while it is being drawn: canonical positions of its members.
struct Draft {
    chain: ChainId,
    seats: usize,
    kept: Vec<usize>,
    rotated_out: Vec<usize>,
    joined: Vec<usize>,
    departed: usize,
}

/// Draw the committees of `epoch`: one for the main chain and one per sidechain, each of
/// `params.committee_size` seats, from `validators` under the epoch `seed`. With `previous`
/// (the assignment of `epoch - 1`) committees rotate by at most the configured fraction;
/// without it every seat is drawn afresh. The result is a pure function of the arguments,
/// whatever the order of `sidechains`.
pub fn sortition(
    epoch: Epoch,
    seed: &EpochSeed,
    validators: &ValidatorSet,
    sidechains: &[ChainId],
    params: &SortitionParams,
    previous: Option<&Assignment>,
) -> Result<Assignment, VrfError> {
    params.validate()?;
    let chains: Vec<ChainSeats> = chain_order(sidechains)?
        .into_iter()
        .map(|chain| ChainSeats {
            chain,
            seats: params.committee_size,
        })
        .collect();
    sortition_by_seats(
        epoch,
        seed,
        validators,
        &chains,
        params.max_rotation,
        previous,
    )
}

/// One chain to draw a committee for, and its number of seats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainSeats {
    /// The chain.
    pub chain: ChainId,
    /// Its seats (`c` of that chain), in `1..=MAX_COMMITTEE_SIZE`.
    pub seats: usize,
}

/// [`sortition`] where each chain has its own number of seats and the main chain takes part
/// only if it is listed: the same rules with `c` per chain (seats `S` the sum, rotation
/// budget `ceil(r * c)` of each chain, `s = min(c, n)` per committee). A chain whose
/// committee is not drawn here (the main chain, when its committee is its whole registry) is
/// left out of `chains`. With one `c` for every chain and the main chain listed, this is
/// [`sortition`].
pub fn sortition_by_seats(
    epoch: Epoch,
    seed: &EpochSeed,
    validators: &ValidatorSet,
    chains: &[ChainSeats],
    max_rotation: Fraction,
    previous: Option<&Assignment>,
) -> Result<Assignment, VrfError> {
    Fraction::new(max_rotation.num, max_rotation.den)?;
    if chains.len() > MAX_SIDECHAINS + 1 {
        return Err(VrfError::TooManySidechains {
            got: chains.len(),
            max: MAX_SIDECHAINS,
        });
    }
    let mut chains = chains.to_vec();
    chains.sort_by_key(|c| c.chain);
    for (i, c) in chains.iter().enumerate() {
        if c.seats == 0 || c.seats > MAX_COMMITTEE_SIZE {
            return Err(VrfError::BadCommitteeSize {
                got: c.seats,
                max: MAX_COMMITTEE_SIZE,
            });
        }
        if i > 0 && chains[i - 1].chain == c.chain {
            return Err(VrfError::DuplicateSidechain(c.chain));
        }
    }
    if let Some(prev) = previous {
        if prev.epoch.checked_next() != Some(epoch) {
            return Err(VrfError::PreviousEpoch {
                epoch,
                previous: prev.epoch,
            });
        }
    }
    let n = validators.len();
    // chains <= MAX_SIDECHAINS + 1 and each c <= MAX_COMMITTEE_SIZE: no overflow.
    let total_seats: usize = chains.iter().map(|c| c.seats).sum();
    let shared = n < total_seats;

    // Step 1: keep, trim and rotate the previous members.
    let mut serving = vec![false; n];
    let mut sitting_out = vec![false; n];
    let mut load = vec![0usize; n];
    let mut slack = n.saturating_sub(total_seats);
    let mut drafts = Vec::with_capacity(chains.len());
    for &ChainSeats { chain, seats: c } in &chains {
        // Seats of this committee: a committee never holds one validator twice.
        let seats = c.min(n);
        let budget = max_rotation.ceil_of(c);
        let mut kept = Vec::new();
        let mut departed = 0;
        if let Some(prev) = previous.and_then(|p| p.committee(chain)) {
            for m in &prev.members {
                match validators.position(&m.key) {
                    // With enough validators nobody keeps two seats (possible only after an
                    // epoch with shared seats): the first committee in chain order keeps it.
                    Some(pos) if shared || !serving[pos] => kept.push(pos),
                    _ => departed += 1,
                }
            }
        }
        let excess = kept.len().saturating_sub(seats);
        let room = if shared { n - seats } else { slack };
        let voluntary = budget
            .saturating_sub(departed + excess)
            .min(kept.len() - excess)
            .min(room);
        if !shared {
            slack -= voluntary;
        }
        let mut stream = DrawStream::new(seed, ROTATE_DOMAIN, &chain_context(epoch, chain));
        stream.choose_front(&mut kept, excess + voluntary);
        let rotated_out = kept[excess..excess + voluntary].to_vec();
        let kept = kept.split_off(excess + voluntary);
        for &pos in &kept {
            serving[pos] = true;
            load[pos] += 1;
        }
        if !shared {
            for &pos in &rotated_out {
                sitting_out[pos] = true;
            }
        }
        drafts.push(Draft {
            chain,
            seats,
            kept,
            rotated_out,
            joined: Vec::new(),
            departed: departed + excess,
        });
    }

    // Step 2: fill the vacant seats.
    let members = validators.members();
    if shared {
        for draft in &mut drafts {
            fill_shared(seed, epoch, validators, &mut load, draft);
        }
    } else {
        let pool: Vec<(usize, u64)> = (0..n)
            .filter(|&pos| !serving[pos] && !sitting_out[pos])
            .map(|pos| (pos, members[pos].stake))
            .collect();
        let vacancies: usize = drafts.iter().map(|d| d.seats - d.kept.len()).sum();
        let epoch_ctx = epoch.0.to_le_bytes();
        let mut draw = DrawStream::new(seed, DRAW_DOMAIN, &epoch_ctx);
        let mut newcomers = sample_proportional(&mut draw, &pool, vacancies);
        let mut deal = DrawStream::new(seed, SEAT_DOMAIN, &epoch_ctx);
        deal.shuffle(&mut newcomers);
        let mut next = newcomers.into_iter();
        for draft in &mut drafts {
            let want = draft.seats - draft.kept.len();
            draft.joined.extend(next.by_ref().take(want));
            for &pos in &draft.joined {
                load[pos] += 1;
            }
        }
    }

    let committees = drafts
        .into_iter()
        .map(|d| {
            let mut positions = d.kept.clone();
            positions.extend_from_slice(&d.joined);
            positions.sort_unstable();
            ChainCommittee {
                chain: d.chain,
                members: positions.iter().map(|&p| members[p].clone()).collect(),
                stats: RotationStats {
                    kept: d.kept.len(),
                    departed: d.departed,
                    rotated_out: d.rotated_out.len(),
                    joined: d.joined.len(),
                },
            }
        })
        .collect();
    Ok(Assignment {
        epoch,
        committees,
        shared_seats: shared,
        max_committees_per_validator: load.iter().copied().max().unwrap_or(0),
    })
}

/// Fill one committee's vacancies when validators are fewer than seats: take candidates (not
/// on this committee, not just rotated out of it) by increasing load, all of a load level while
/// they fit, then a stake-proportional sample of the level that overflows.
fn fill_shared(
    seed: &EpochSeed,
    epoch: Epoch,
    validators: &ValidatorSet,
    load: &mut [usize],
    draft: &mut Draft,
) {
    let seats = draft.seats;
    let members = validators.members();
    let mut excluded = vec![false; members.len()];
    for &pos in draft.kept.iter().chain(&draft.rotated_out) {
        excluded[pos] = true;
    }
    let mut need = seats - draft.kept.len();
    let mut stream = DrawStream::new(seed, SHARED_DOMAIN, &chain_context(epoch, draft.chain));
    // Start at the lowest load among the candidates.
    let mut level = (0..members.len())
        .filter(|&pos| !excluded[pos])
        .map(|pos| load[pos])
        .min()
        .unwrap_or(0);
    let top = load.iter().copied().max().unwrap_or(0);
    while need > 0 && level <= top {
        let group: Vec<(usize, u64)> = (0..members.len())
            .filter(|&pos| !excluded[pos] && load[pos] == level)
            .map(|pos| (pos, members[pos].stake))
            .collect();
        let picked = if group.len() <= need {
            group.iter().map(|&(pos, _)| pos).collect()
        } else {
            sample_proportional(&mut stream, &group, need)
        };
        need -= picked.len();
        for &pos in &picked {
            excluded[pos] = true;
        }
        draft.joined.extend(picked);
        // Candidates outnumber vacancies and none has a load above `top`, so the vacancies
        // are filled by the time `level` passes `top`.
        level += 1;
    }
    for &pos in &draft.joined {
        load[pos] += 1;
    }
}
