//! Draw leaders and committees verifiably from unique BLS signatures.
//!
//! `banyan-vrf` decides, for every epoch, which validators serve on the main chain's committee
//! and on each sidechain's ([`sortition`](sortition::sortition)), who proposes in each round of
//! each chain ([`LeaderSchedule`]), and how the randomness behind both
//! is renewed from one epoch to the next ([`seed`]). Nobody can steer a draw beyond the bound
//! given below, and anyone holding the public inputs recomputes and checks it.
//!
//! Architecture invariant: every function here is a pure function of its arguments. No I/O, no
//! clock, no global state, no floating point and no platform-dependent integer width in a
//! draw; all randomness comes from an [`EpochSeed`] through the stream of
//! [`draw`]. Same inputs, same committees, on every machine.
//!
//! Notation: `H(domain, m)` is core's domain-separated hash ([`banyan_core::hash`]: SHA-256 over
//! `len(tag) || tag || m`).
//!
//! # 1. The VRF
//!
//! A validator's VRF is its BLS12-381 key (min-pk: keys in G1, proofs in G2) used under a domain
//! separation tag of its own, [`VRF_DST`]
//! (`BANYAN_VRF_BLS12381G2_XMD:SHA-256_SSWU_RO_`):
//!
//! - `prove(sk, x)`: `π = sk · H_G2(x)` (the BLS signature of `x` under `VRF_DST`),
//!   `output = H("banyan/vrf/output", compress(π))`.
//! - `verify(pk, x, π)`: parse `π` (96-byte compressed point, refused unless canonical, on the
//!   curve, in the prime-order subgroup and not the identity), check
//!   `e(g1, π) = e(pk, H_G2(x))`, then hash `π` as above.
//!
//! **Why this is a VRF.**
//! - *Uniqueness.* For a valid public key `pk = sk · g1` and an input `x` there is exactly one
//!   G2 point `π` with `e(g1, π) = e(pk, H_G2(x))`, namely `sk · H_G2(x)`: the pairing is
//!   non-degenerate, so `e(g1, ·)` is injective on the prime-order subgroup. Signing is
//!   deterministic and blst accepts only the canonical compressed encoding of a point (x
//!   coordinate below the field modulus, flag bits fixed), so that one point has one byte
//!   string and hence one output. A key holder therefore cannot *grind* its output: for a
//!   given input it can publish its one output or nothing.
//! - *Verifiability.* The check above is an ordinary BLS verification against the public key.
//! - *Pseudorandomness.* Without `sk`, `π` is unpredictable (computing it is forging a BLS
//!   signature, hard under co-CDH with `H_G2` a random oracle), and the output is a hash of
//!   `π`, so it is indistinguishable from random to everyone but the key holder.
//! - *Separation.* The DST differs from [`BLS_SIG_DST`](banyan_core::keys::BLS_SIG_DST) and
//!   [`BLS_POP_DST`](banyan_core::keys::BLS_POP_DST), so `H_G2` is an independent random oracle
//!   per use: a vote or a proof of possession is never a VRF proof, nor the reverse.
//! - Keys enter committees only with a checked proof of possession, and the identity key is
//!   refused when parsed, so no key has a trivially predictable output.
//!
//! The holder of `sk` knows its own outputs in advance for any input it can name; the inputs
//! below include the epoch seed, which no single validator controls.
//!
//! # 2. Draws from a seed
//!
//! A *stream* ([`DrawStream`](draw::DrawStream)) is keyed by a seed, a domain and a fixed-length
//! context: block `i` is `H(domain, seed || context || i u64 LE)` and the stream reads each
//! block as four little-endian `u64` words. On it:
//! - `below(n)`: draw words `w` until `w >= 2^64 mod n`, return `w mod n` (rejection sampling,
//!   no modulo bias); `below_u128(n)` does the same with two words, low first.
//! - `shuffle`: Fisher–Yates, `i` from `len - 1` down to 1, swap `i` with `below(i + 1)`.
//! - `choose_front(k)`: partial forward Fisher–Yates, for `i` in `0..k` swap `i` with
//!   `i + below(len - i)`; the first `k` items are a uniform `k`-subset.
//! - *stake-weighted pick*: with `cumulative[i] = stake[0] + … + stake[i]`, draw
//!   `x = below_u128(total)` and take the first `i` with `x < cumulative[i]` (binary search):
//!   item `i` is picked with probability exactly `stake[i] / total`.
//! - *proportional sample* of `m` among candidates
//!   ([`sample_proportional`](draw::sample_proportional)): candidates whose stake `s` has
//!   `m · s >= W` (remaining stake `W`) are taken with certainty, largest first; the rest are
//!   shuffled and laid end to end as intervals of length `m · s`, and a systematic sample with
//!   a uniform start `u = below_u128(W)` and step `W` picks `m` distinct candidates. Candidate
//!   `i` is included with probability exactly `min(1, λ · stake_i)`, with `λ` set so the
//!   probabilities sum to `m`: inclusion is proportional to stake, capped at one.
//!
//! # 3. Leader schedule
//!
//! The proposer of round `r` of epoch `e` on chain `k` is a stake-weighted pick over that
//! chain's committee for `e` (in its bitmap order), from the stream with seed `seed(e)`,
//! domain `banyan/vrf/leader` and context `k u32 LE || e u64 LE || r u64 LE`. Anyone with the
//! seed and the committee recomputes it ([`LeaderSchedule`]; one hash
//! and a binary search per lookup). The main chain and sidechains use the same rule, told apart
//! by the chain id.
//!
//! The proposer's header carries in `vrf_proof` its VRF proof on the *proposer input*
//! ([`Slot::vrf_input`](leader::Slot::vrf_input)):
//! `"banyan/leader" || k u32 LE || e u64 LE || r u64 LE || seed(e)` (65 bytes).
//! [`verify_proposer`] checks it against the proposer's key;
//! [`LeaderSchedule::verify_header`](leader::LeaderSchedule::verify_header) also checks that
//! the proposer is the scheduled leader. The leader is chosen by the *public* seed, not by the
//! proof: the proof's only job is to contribute unbiasable randomness to the next seed. Leaders
//! of an epoch are therefore known to everyone once its seed is fixed (as in Tendermint-style
//! and DPoS schedules); a validator that must not be predictable within the epoch needs a
//! private election, which Banyan does not use.
//!
//! # 4. Epoch seeds and how much they can be biased
//!
//! `seed(0) = H("banyan/vrf/genesis-seed", genesis id)`. For every later epoch
//! ([`SeedBuilder`], [`next_epoch_seed`]):
//!
//! ```text
//! seed(e+1) = H("banyan/vrf/epoch-seed", (e+1) u64 LE || seed(e) || out_1 || … || out_n || n u32 LE)
//! ```
//!
//! where `out_j` is the verified VRF output of the `j`-th committed **main-chain** block of
//! epoch `e` in height order, and `n = min(K, blocks committed in e)` for the parameter
//! `K = contributions_per_epoch` (the *cut-off*). Sidechain headers carry proofs too, but only
//! the main chain, whose committee is the largest and is the one that commits the
//! assignments, feeds the seed.
//!
//! - *Why a cut-off.* `seed(e+1)` is fixed as soon as the `K`-th block of `e` commits, well
//!   before `e` ends, so the committees and leaders of `e+1` are known in time for incoming
//!   members to sync their chains. The price is that lookahead: they are public from the
//!   cut-off on.
//! - *What a proposer can do.* Its contribution is unique (§1) and its slot's input is fixed
//!   by `seed(e)`, so it cannot choose *what* it contributes, only *whether*: it may withhold
//!   its block. Then its round times out, it loses the block reward, and the next round's
//!   leader — an independent stake-weighted draw — fills that position with its own output.
//!   Only the last contributions before the cut-off matter: anything revealed earlier is
//!   followed by honest contributions the withholder cannot predict.
//! - *Bound.* Let the adversary hold a fraction `α` of the main committee's stake. It can steer
//!   the seed only while it leads the rounds that fill the final positions. If it leads the
//!   last `j` rounds in a row before the first honest leader of the tail, each of those
//!   proposers reveals or withholds, so at most `2^j` seeds are reachable, and it picks among
//!   them. Leaders are independent draws, so a run of exactly `j` has probability at most
//!   `α^j (1 − α)`. For any event `E` of probability `p` under an unbiased seed (say, "the
//!   adversary holds a third of sidechain 7's committee"), the adversary makes `E` happen with
//!   probability at most `Σ_j α^j (1 − α) 2^j p = p (1 − α) / (1 − 2α)` — at most `2p` for
//!   `α ≤ 1/3`, and each bit of influence costs a forfeited block and a timeout, in public.
//!   Committee sizes are chosen so that `p` is negligible; doubling it keeps it negligible.
//!   The bound assumes honest leaders' blocks commit (synchrony after GST); an adversary that
//!   controls the network can also suppress honest blocks, which is the same one bit per
//!   suppressed block.
//! - *Freeze rule (caller's duty).* Sortition for `e+1` must use a validator set fixed
//!   before any of `seed(e+1)`'s inputs is revealed, i.e. by the end of epoch `e − 1`: a stake
//!   change committed during epoch `e` takes effect at `e + 2`. Otherwise a joiner could grind
//!   keys or stake amounts against a known seed.
//! - If epoch `e` commits fewer than `K` main-chain blocks, the seed is fixed by all of them at
//!   the epoch's end (`n` is hashed in, so "fewer" cannot be confused with "other").
//!
//! # 5. Committee sortition
//!
//! Inputs: the epoch `e`, `seed(e)`, the validator set (each key with its stake, in canonical
//! ascending key order, [`ValidatorSet`]), the sidechains, the
//! parameters (`c` = [`committee_size`](sortition::SortitionParams::committee_size), `r` =
//! [`max_rotation`](sortition::SortitionParams::max_rotation)), and optionally the assignment
//! of `e − 1`. Chain order is the main chain, then sidechains by ascending id. Let `n` be the
//! number of validators, `C` the number of chains, `S = C · c` the seats, `s = min(c, n)` the
//! seats per committee and `R = ceil(r · c)` the rotation budget. *Shared mode* is `n < S`.
//!
//! **Step 1 — keep, trim, rotate.** For each chain in chain order, take its members of the
//! previous assignment (none for a new chain or a first draw), in canonical order:
//! - a member no longer in the validator set *departs*; outside shared mode so does a member
//!   already kept by an earlier chain (possible only after a shared epoch);
//! - `excess = max(0, kept − s)` members depart if the committee shrank;
//! - `v = min(R − departed − excess (floored at 0), kept − excess, room)` members are
//!   *rotated out* by choice, where `room` is what is left of the slack `n − S` (shared mode:
//!   `n − s`), consumed in chain order, so the vacancies can always be filled by others;
//! - `choose_front(excess + v)` on the stream `banyan/vrf/sortition/rotate`, context
//!   `e u64 LE || chain u32 LE`: the first `excess` depart, the next `v` rotate out, the rest
//!   stay. Who leaves is uniform among the kept members.
//!
//! Departures are replaced whatever the budget: a committee must stay full of live validators,
//! so when more than `R` members left the set, more than `R` seats change (the stats report it
//! as `departed`). Otherwise at most `R` seats change, at least `c − R` members stay, and
//! exactly `R` rotate whenever the slack allows, so committees keep mixing.
//!
//! **Step 2 — fill (enough validators, `n ≥ S`).** The pool is every validator neither kept
//! nor rotated out this epoch (the rotated-out sit out one epoch). The vacancies, summed over
//! all chains, are filled by one proportional sample from the pool (stream
//! `banyan/vrf/sortition/draw`, context `e u64 LE`), shuffled (stream
//! `banyan/vrf/sortition/seat`) and dealt to the vacant seats in chain order. No validator
//! holds two seats. On a first draw, validator `i` serves with probability exactly
//! `min(1, λ · stake_i)` and, if it serves, on each chain equally likely.
//!
//! **Step 2′ — fill (too few validators, `n < S`).** Seats are shared and
//! [`Assignment::shared_seats`](sortition::Assignment::shared_seats) says so. Every committee
//! has `s = min(c, n)` seats (all validators, if `c ≥ n`), never the same validator twice.
//! Committees are filled in chain order, so the main chain first; each takes, among validators
//! not on it and not just rotated out of it, those serving the fewest committees so far, all
//! of a load level while they fit, then a proportional sample of the level that overflows
//! (stream `banyan/vrf/sortition/shared`, context `e u64 LE || chain u32 LE`). On a first draw
//! every validator serves `floor(C·s / n)` or `ceil(C·s / n)` committees; with kept members
//! the loads are as even as the kept seats allow and even out as committees rotate.
//! [`max_committees_per_validator`](sortition::Assignment::max_committees_per_validator)
//! reports the worst load.
//!
//! Committee members are listed in canonical key order (their certificate bitmap order), each
//! with its stake of epoch `e` as its voting weight.
//!
//! **Seats per chain.** [`sortition_by_seats`](sortition::sortition_by_seats) runs the same
//! steps with a `c` of each chain's own (`S` is then the sum of the seats, `s = min(c, n)` and
//! the rotation budget `ceil(r · c)` are per chain) and draws only the chains it is given: the
//! main chain, whose committee is its whole registry, takes no part when Banyan assigns its
//! sidechains. With one `c` for all and the main chain listed it is
//! [`sortition`](sortition::sortition), draw for draw.
//!
//! **Caveat on weights.** Selection is proportional to stake *and* a member votes with its
//! stake, so a committee's expected Byzantine vote share is `Σ_A π_i s_i / Σ π_i s_i`, which
//! favours holders who concentrate stake in few validators over many small ones; the staking
//! rules should cap stake per validator.
//!
//! # Limits
//!
//! [`MAX_VALIDATORS`](validators::MAX_VALIDATORS), [`MAX_SIDECHAINS`](sortition::MAX_SIDECHAINS),
//! committee size up to [`MAX_COMMITTEE_SIZE`](banyan_core::certificate::MAX_COMMITTEE_SIZE),
//! [`MAX_SEED_CONTRIBUTIONS`](seed::MAX_SEED_CONTRIBUTIONS),
//! [`MAX_VRF_INPUT_BYTES`](vrf::MAX_VRF_INPUT_BYTES). Stakes are `u64`; every sum is `u128`
//! (at most `2^81`), every product of a count and a stake sum stays below `2^101`.

pub mod draw;
pub mod error;
pub mod leader;
pub mod seed;
pub mod sortition;
pub mod validators;
pub mod vrf;

pub use error::VrfError;
pub use leader::{prove_proposer, verify_proposer, LeaderSchedule, Slot};
pub use seed::{next_epoch_seed, EpochSeed, SeedBuilder, SeedParams};
pub use sortition::{
    sortition, sortition_by_seats, Assignment, ChainCommittee, ChainSeats, Fraction,
    SortitionParams,
};
pub use validators::ValidatorSet;
pub use vrf::{prove, verify, VrfOutput, VrfProof, VRF_DST};
