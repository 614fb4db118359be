//! The chain engine under the deterministic simulator, running the real main-chain
//! application: four validators on RocksDB stores, client load with transfers, transactions
//! that fail (at execution, paying their fee, or at admission) and a stake that changes the
//! next epoch's committee, seeded message loss and delays, one crash-and-restart or one
//! partition per seed, several epoch changes. Every seed must show no fork, no engine
//! failure, and commits after GST at the expected pace on every node. A fault-free run
//! checks what a stake change does: a validator that unstakes leaves the committee at the
//! next epoch and its node follows the chain.
//!
//! `BANYAN_SIM_SEEDS` sets how many seeds run (CI: 200); a failing seed is printed with its
//! plan, `BANYAN_SIM_SEED=N` reruns just that one, and `BANYAN_SIM_VERBOSE=1` prints every
//! seed's heights, epochs and message counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use banyan_chain::sim::{Crash, Cut, EngineSim, SimNodes, SimOutcome, SimPlan};
use banyan_chain::{
    ChainApp, ChainStore, EngineSetup, NoopObserver, Peer, PeerKey, SharedChainApp,
};
use banyan_consensus::{DirectVerifier, ReplicaConfig};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Nonce};
use banyan_core::keys::{AccountSecretKey, BlsSecretKey};
use banyan_core::tx::{SignedTx, TxKind};
use banyan_mainchain::{Genesis, OwnRegistry};
use banyan_store::{Store, StoreOptions};
use common::*;

/// Blocks per epoch: a run of a dozen seconds crosses several epochs.
const EPOCH_LENGTH: u64 = 8;
/// Simulated run length and GST.
const DURATION_MS: u64 = 14_000;
const GST_MS: u64 = 6_000;
/// A leader waits this long after its parent before proposing.
const BLOCK_INTERVAL_MS: u64 = 100;
/// The least every node must commit per second after GST (a tenth of the pace the block
/// interval allows, leaving room for timeouts while a restarted or cut-off node rejoins).
const MIN_BLOCKS_PER_SEC_AFTER_GST: u64 = 1;

struct Nodes {
    genesis: Genesis,
    validators: Vec<(BlsSecretKey, AccountSecretKey)>,
    funded: Vec<AccountSecretKey>,
    dirs: Vec<tempfile::TempDir>,
    staker: BlsSecretKey,
    staked: bool,
    sent: u64,
    /// A fixed batch sent once instead of the random load.
    script: Option<Vec<SignedTx>>,
}

fn scratch_dir() -> tempfile::TempDir {
    // RocksDB syncs every commit: on tmpfs that costs nothing, so seeds run fast.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

impl Nodes {
    fn new() -> Self {
        Self::of(fixture(4, 6, EPOCH_LENGTH))
    }

    fn of(f: Fixture) -> Self {
        Nodes {
            dirs: (0..f.validators.len()).map(|_| scratch_dir()).collect(),
            genesis: f.genesis,
            validators: f.validators,
            funded: f.funded,
            staker: BlsSecretKey::generate(&mut rng(99)),
            staked: false,
            sent: 0,
            script: None,
        }
    }
}

impl SimNodes for Nodes {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn peer_key(&self, i: usize) -> PeerKey {
        *network_key(&self.validators[i].1).public_key().as_bytes()
    }

    fn open(&mut self, i: usize) -> Result<EngineSetup, String> {
        let options = StoreOptions {
            create_if_missing: true,
            ..StoreOptions::default()
        };
        let store =
            Arc::new(Store::open(self.dirs[i].path(), &options).map_err(|e| e.to_string())?);
        let store = ChainStore::new(store, ChainId::MAIN);
        let pool = mempool_of(self.genesis.network());
        let app = ChainApp::open(
            store.clone(),
            &self.genesis,
            Box::new(OwnRegistry),
            pool.clone(),
            1,
            Box::new(NoopObserver),
        )
        .map_err(|e| e.to_string())?;
        let peers = (0..self.count())
            .filter(|&j| j != i)
            .map(|j| Peer {
                network_key: self.peer_key(j),
                validator: self.validators[j].0.public_key().validator_id(),
            })
            .collect();
        let (bls, acct) = &self.validators[i];
        Ok(EngineSetup {
            app: SharedChainApp::new(app),
            store,
            mempool: pool,
            key: BlsSecretKey::from_bytes(&*bls.to_bytes()).map_err(|e| e.to_string())?,
            reporter: AccountSecretKey::from_bytes(&acct.to_bytes()),
            peers,
            replica: ReplicaConfig {
                min_block_interval_ms: BLOCK_INTERVAL_MS,
                ..ReplicaConfig::default()
            },
            verifier: Box::new(|| Box::new(DirectVerifier)),
        })
    }

    fn load(
        &mut self,
        _now_ms: u64,
        draw: u64,
        next_nonce: &dyn Fn(&Address) -> Nonce,
    ) -> Vec<SignedTx> {
        if let Some(script) = self.script.as_mut() {
            return std::mem::take(script);
        }
        let n = self.funded.len();
        let mut txs = Vec::new();
        // Transfers around the funded accounts, each from the account's next nonce.
        for k in 0..3u64 {
            let from = &self.funded[((draw >> (8 * k)) as usize + k as usize) % n];
            let to = self.funded[((draw >> (8 * k + 4)) as usize) % n]
                .public_key()
                .address();
            let nonce = next_nonce(&from.public_key().address()).0;
            txs.push(transfer(from, nonce, to, 1 + (draw % 1_000) as u128));
        }
        self.sent += 1;
        // Every fifth round: one transfer of more than the sender holds (it fails at
        // execution and pays its fee) and one replay of a spent nonce (refused at admission).
        if self.sent.is_multiple_of(5) {
            let from = &self.funded[(draw as usize / 7) % n];
            let addr = from.public_key().address();
            let next = next_nonce(&addr).0;
            let others = self
                .funded
                .iter()
                .find(|k| k.public_key().address() != addr);
            if let Some(to) = others {
                txs.push(tx(
                    from,
                    next,
                    MIN_FEE,
                    TxKind::Transfer {
                        to: to.public_key().address(),
                        asset: AssetId::NATIVE,
                        amount: Amount(FUNDS * 10),
                    },
                ));
            }
            if next > 0 {
                txs.push(transfer(from, next - 1, addr, 1));
            }
        }
        // Once: a funded account stakes with a key no node holds, a small stake, so the
        // committee changes at the next epoch and a silent member sits in it.
        if !self.staked && self.sent >= 10 {
            self.staked = true;
            let from = &self.funded[0];
            let nonce = next_nonce(&from.public_key().address()).0;
            txs.push(tx(
                from,
                nonce,
                MIN_FEE,
                TxKind::Stake {
                    validator_key: self.staker.public_key(),
                    pop: Box::new(self.staker.prove_possession()),
                    amount: Amount(100),
                },
            ));
        }
        txs
    }
}

/// The plan of `seed`: delays and loss before GST, and one fault, both drawn from the seed.
fn plan(seed: u64) -> SimPlan {
    let node = (seed % 4) as usize;
    let a = 1_000 + (seed * 7919) % 2_000;
    let b = a + 500 + (seed * 104_729) % 2_500;
    let (crashes, cuts) = if seed.is_multiple_of(2) {
        (
            vec![Crash {
                node,
                at_ms: a,
                restart_ms: b,
            }],
            Vec::new(),
        )
    } else {
        (
            Vec::new(),
            vec![Cut {
                node,
                from_ms: a,
                to_ms: b,
            }],
        )
    };
    SimPlan {
        seed,
        start_ms: 1_700_000_100_000,
        duration_ms: DURATION_MS,
        min_delay_ms: 2,
        max_delay_ms: 40 + seed % 40,
        loss_per_mille: seed % 60,
        gst_ms: GST_MS,
        crashes,
        cuts,
        load_every_ms: 250,
        tick_ms: 20,
    }
}

fn run(seed: u64) -> (SimPlan, SimOutcome) {
    let plan = plan(seed);
    let mut nodes = Nodes::new();
    let outcome = EngineSim::new(&mut nodes, plan.clone()).run();
    (plan, outcome)
}

/// What is wrong with a run, if anything.
fn verdict(o: &SimOutcome) -> Option<String> {
    if !o.forks.is_empty() {
        return Some(format!("forks: {:?}", o.forks));
    }
    if !o.failures.is_empty() {
        return Some(format!("engines failed: {:?}", o.failures));
    }
    let need = (DURATION_MS - GST_MS) / 1_000 * MIN_BLOCKS_PER_SEC_AFTER_GST;
    for (i, (at_gst, end)) in o.height_at_gst.iter().zip(&o.heights).enumerate() {
        if end.saturating_sub(*at_gst) < need {
            return Some(format!(
                "node {i} committed {} blocks after GST (from {at_gst} to {end}), fewer than {need}",
                end.saturating_sub(*at_gst)
            ));
        }
    }
    None
}

#[test]
fn engines_with_the_real_application_stay_safe_and_live_across_seeds() {
    let seeds: Vec<u64> = match std::env::var("BANYAN_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("BANYAN_SIM_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("BANYAN_SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(200);
            (0..n).collect()
        }
    };
    // Seeds are independent: two threads share them (the machine may have two cores).
    let results: Vec<(u64, SimPlan, SimOutcome)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let mine: Vec<u64> = seeds.iter().copied().skip(w).step_by(2).collect();
                scope.spawn(move || {
                    mine.into_iter()
                        .map(|seed| {
                            let (plan, o) = run(seed);
                            (seed, plan, o)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a simulation thread panicked"))
            .collect()
    });
    let mut bad = Vec::new();
    let mut epochs_crossed = 0u64;
    let mut committed_txs = 0u64;
    for (seed, plan, o) in results {
        if std::env::var_os("BANYAN_SIM_VERBOSE").is_some() {
            eprintln!(
                "seed {seed}: heights {:?} (at GST {:?}), epochs {:?}, txs {}, delivered {}, \
                 lost {}, refused {}",
                o.heights,
                o.height_at_gst,
                o.epochs,
                o.committed_txs,
                o.delivered,
                o.lost,
                o.refused
            );
        }
        epochs_crossed = epochs_crossed.max(o.epochs.iter().copied().min().unwrap_or(0));
        committed_txs += o.committed_txs;
        if let Some(why) = verdict(&o) {
            bad.push(format!(
                "seed {seed}: {why}\n  plan: {plan:?}\n  outcome: {o:?}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} seeds failed:\n{}",
        bad.len(),
        seeds.len(),
        bad.join("\n")
    );
    // The runs did what they are for: epochs changed and transactions committed.
    assert!(epochs_crossed >= 2, "no run crossed two epochs");
    assert!(committed_txs > 0, "no transaction committed");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let (_, a) = run(3);
    let (_, b) = run(3);
    assert_eq!(a.heights, b.heights);
    assert_eq!(a.delivered, b.delivered);
    assert_eq!(a.lost, b.lost);
    assert_eq!(a.committed_txs, b.committed_txs);
}

/// A fault-free run with a fixed batch: eight transfers and the unstake of validator 3's
/// whole stake. The transfers commit on every node; validator 3 leaves the committee at the
/// next epoch and its node goes on following the chain; every node holds the same blocks.
#[test]
fn a_validator_that_unstakes_leaves_the_committee_and_follows() {
    let f = fixture(4, 1, EPOCH_LENGTH);
    let sender = &f.funded[0];
    let mut script: Vec<SignedTx> = (0..8).map(|n| transfer(sender, n, addr(6), 11)).collect();
    script.push(tx(
        &f.validators[3].1,
        0,
        MIN_FEE,
        TxKind::Unstake {
            amount: Amount(1003),
        },
    ));
    let leaving = f.validators[3].0.public_key();
    let mut nodes = Nodes::of(f);
    nodes.script = Some(script);
    let plan = SimPlan {
        seed: 1,
        start_ms: 1_700_000_100_000,
        duration_ms: 8_000,
        min_delay_ms: 2,
        max_delay_ms: 20,
        loss_per_mille: 0,
        gst_ms: 0,
        crashes: Vec::new(),
        cuts: Vec::new(),
        load_every_ms: 300,
        tick_ms: 20,
    };
    let (o, engines) = EngineSim::new(&mut nodes, plan).run_keeping_engines();
    assert!(o.forks.is_empty() && o.failures.is_empty(), "{o:?}");
    assert!(o.epochs.iter().all(|&e| e >= 2), "epochs {:?}", o.epochs);
    let top = *o.heights.iter().max().unwrap();
    // Members are within a block or two of each other; the follower catches up epoch by
    // epoch, when each end is proven.
    assert!(
        o.heights.iter().all(|&h| h + EPOCH_LENGTH + 2 >= top),
        "heights {:?}",
        o.heights
    );
    let engines: Vec<_> = engines
        .into_iter()
        .map(|e| e.expect("every node up"))
        .collect();
    for (i, e) in engines.iter().enumerate() {
        assert_eq!(e.is_member(), i != 3, "node {i}");
        let app = e.app().lock();
        assert_eq!(balance(&app, &addr(6)), Amount(88), "node {i}");
        let rec = app.store().epoch_record(Epoch(1)).unwrap().unwrap();
        assert_eq!(rec.committee.members.len(), 3);
        assert!(rec.committee.members.iter().all(|m| m.key != leaving));
        assert!(
            rec.proof.is_some(),
            "node {i} archived the proof that epoch 0 ended"
        );
    }
}
