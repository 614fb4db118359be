//! `dag-bench`: serial vs DAG-parallel execution of a block of transfers, against the ceiling
//! of this machine.
//!
//! For each account count, one block of signed and verified native transfers between
//! uniformly drawn accounts (seeded, so every run builds the same blocks) is executed, each
//! measure being the median of `--reps` runs:
//! - **serial**: [`Executor::execute_serial`] on one thread;
//! - **parallel**: [`Executor::execute`] on `--threads` threads (adaptive schedule);
//! - **ceiling**: the same transactions cut into `--threads` contiguous parts, each run by
//!   `execute_serial` on its own thread against its own copy of the state it starts from
//!   (prepared beforehand): the same work with nothing shared and no scheduling, i.e. what
//!   the cores give. Its threads are kept from run to run and part 0 runs on the calling
//!   thread, as the executor does with its own workers, so both pay the same to start.
//!
//! `speedup = parallel_tps / serial_tps`, `ceiling_speedup = ceiling_tps / serial_tps`,
//! `efficiency = speedup / ceiling_speedup`. The three runs alternate within each repetition
//! (after one untimed warm-up round), so a change of load on the machine hits all three alike.
//! Before timing, the parallel result is checked equal to the serial one. Without `--json`, a
//! table also shows the block's exact critical path (computed apart, untimed) and whether the
//! adaptive executor ran it serially or on the DAG.

use banyan_core::hash::{hash, Domain};
use banyan_core::ids::{Amount, AssetId, ChainId, Height, Nonce};
use banyan_core::keys::AccountSecretKey;
use banyan_core::state::State;
use banyan_core::tx::{StateKey, TxBody};
use banyan_core::value::StateValue;
use banyan_dag::{Executor, Vm};
use banyan_ledger::RejectAllProofs;
use banyan_ledger::{Ledger, VerifiedTx};
use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Serial vs DAG-parallel execution of transfer blocks, with the machine's ceiling.
#[derive(Parser, Debug)]
#[command(name = "dag-bench")]
struct Args {
    /// Transactions per block.
    #[arg(long, default_value_t = 10_000)]
    txs: usize,
    /// Account counts to draw senders and recipients from (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,10,100,1000,10000,100000"
    )]
    accounts: Vec<usize>,
    /// Worker threads for the parallel run and the ceiling.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed runs per measure (the median is reported).
    #[arg(long, default_value_t = 21)]
    reps: usize,
    /// Seed of the block generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Time only one of the three runs, `--reps` times back to back, and print its rate (for
    /// profilers).
    #[arg(long, value_parser = ["serial", "parallel", "ceiling"])]
    only: Option<String>,
}

/// Most accounts a run may ask for (key derivation time and memory).
const MAX_ACCOUNTS: usize = 1_000_000;
/// Most transactions per block (the block limit).
const MAX_TXS: usize = banyan_dag::MAX_BLOCK_TXS;
/// Native coins every account starts with.
const START_BALANCE: u128 = 1_000_000_000_000_000;

/// Errors as strings: the binary only reports them.
type Result<T> = std::result::Result<T, String>;

fn account_key(i: usize) -> AccountSecretKey {
    let seed = hash(
        Domain::Custom("banyan/dag-bench/account"),
        &(i as u64).to_le_bytes(),
    );
    AccountSecretKey::from_bytes(&seed.0)
}

struct Workload {
    state: State,
    txs: Vec<VerifiedTx>,
}

fn workload(accounts: usize, txs: usize, seed: u64, keys: &[AccountSecretKey]) -> Result<Workload> {
    let addresses: Vec<_> = keys[..accounts]
        .iter()
        .map(|k| k.public_key().address())
        .collect();
    let state = State::from_entries(addresses.iter().map(|a| {
        (
            StateKey::Balance(*a, AssetId::NATIVE),
            StateValue::Amount(Amount(START_BALANCE)),
        )
    }))
    .map_err(|e| e.to_string())?;
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (accounts as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut nonces = vec![0u64; accounts];
    let mut signed = Vec::with_capacity(txs);
    for _ in 0..txs {
        let from = rng.gen_range(0..accounts);
        let mut to = rng.gen_range(0..accounts);
        if accounts > 1 && to == from {
            to = (to + 1 + rng.gen_range(0..accounts - 1)) % accounts;
        }
        let body = TxBody::native_transfer(
            ChainId::MAIN,
            banyan_core::hash::Digest::ZERO,
            keys[from].public_key(),
            Nonce(nonces[from]),
            Amount(1),
            addresses[to],
            Amount(1 + rng.gen_range(0..100usize) as u128),
        );
        nonces[from] += 1;
        signed.push(body.sign(&keys[from]));
    }
    let txs = VerifiedTx::verify_batch(signed).map_err(|e| e.to_string())?;
    Ok(Workload { state, txs })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Row {
    accounts: usize,
    txs: usize,
    threads: usize,
    serial_tps: f64,
    parallel_tps: f64,
    ceiling_tps: f64,
    critical_path: Option<usize>,
    parallel_mode: bool,
}

fn measure(args: &Args, accounts: usize, keys: &[AccountSecretKey]) -> Result<Option<Row>> {
    let w = workload(accounts, args.txs, args.seed, keys)?;
    let ledger = Ledger::new(ChainId::MAIN, Height(1), RejectAllProofs);
    let threads = args.threads;
    let mut serial_exec = Executor::new(1);
    let mut parallel_exec = Executor::new(threads);

    // The result must be the same before anything is timed.
    let serial_out = serial_exec
        .execute_serial(&ledger, &w.state, &w.txs)
        .map_err(|e| e.to_string())?;
    let parallel_out = parallel_exec
        .execute(&ledger, &w.state, &w.txs)
        .map_err(|e| e.to_string())?;
    if serial_out.receipts != parallel_out.receipts
        || serial_out.write_set != parallel_out.write_set
    {
        return Err(format!(
            "accounts={accounts}: parallel result differs from serial"
        ));
    }
    if serial_out.receipts.iter().any(|r| !r.is_applied()) {
        return Err(format!("accounts={accounts}: a transfer failed"));
    }

    // The ceiling's parts, each with the state it starts from.
    let bounds: Vec<usize> = (0..=threads).map(|t| args.txs * t / threads).collect();
    let mut part_states = Vec::with_capacity(threads);
    let mut s = w.state.clone();
    for t in 0..threads {
        part_states.push(s.clone());
        let out = serial_exec
            .execute_serial(&ledger, &s, &w.txs[bounds[t]..bounds[t + 1]])
            .map_err(|e| e.to_string())?;
        s.apply(out.write_set.iter());
    }
    // The ceiling's threads are kept, as the executor keeps its own: both pay the same to
    // start a block.
    let mut ceiling_run = Ceiling {
        pool: rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ceiling-{i}"))
            .build()
            .map_err(|e| format!("cannot start the ceiling's threads: {e}"))?,
        execs: (0..threads).map(|_| Executor::new(1)).collect(),
        states: part_states,
        bounds,
    };

    if let Some(only) = &args.only {
        let t0 = Instant::now();
        for _ in 0..args.reps {
            match only.as_str() {
                "serial" => drop(serial_exec.execute_serial(&ledger, &w.state, &w.txs)),
                "parallel" => drop(parallel_exec.execute(&ledger, &w.state, &w.txs)),
                _ => drop(ceiling_run.run(&ledger, &w.txs)),
            }
        }
        let tps = (args.reps * args.txs) as f64 / t0.elapsed().as_secs_f64();
        println!("accounts={accounts} {only}: {tps:.0} tx/s");
        return Ok(None);
    }
    let mut serial = Vec::new();
    let mut parallel = Vec::new();
    let mut ceiling = Vec::new();
    let sets: Vec<_> = w.txs.iter().map(|t| ledger.access_set(t)).collect();
    let critical_path = Some(
        banyan_dag::ConflictDag::build(&sets, 1)
            .map_err(|e| e.to_string())?
            .critical_path(),
    );
    let mut parallel_mode = false;
    for rep in 0..args.reps + 1 {
        let t0 = Instant::now();
        let out = serial_exec
            .execute_serial(&ledger, &w.state, &w.txs)
            .map_err(|e| e.to_string())?;
        let d_serial = t0.elapsed();
        drop(out);

        let t0 = Instant::now();
        let out = parallel_exec
            .execute(&ledger, &w.state, &w.txs)
            .map_err(|e| e.to_string())?;
        let d_parallel = t0.elapsed();
        parallel_mode = out.stats.mode == banyan_dag::Mode::Parallel;
        drop(out);

        let t0 = Instant::now();
        let failed = ceiling_run.run(&ledger, &w.txs);
        let d_ceiling = t0.elapsed();
        if failed {
            return Err("a ceiling part failed".into());
        }
        // The first round warms caches and buffers.
        if rep > 0 {
            serial.push(d_serial);
            parallel.push(d_parallel);
            ceiling.push(d_ceiling);
        }
    }
    let tps = |d: Duration| args.txs as f64 / d.as_secs_f64();
    Ok(Some(Row {
        accounts,
        txs: args.txs,
        threads,
        serial_tps: tps(median(serial)),
        parallel_tps: tps(median(parallel)),
        ceiling_tps: tps(median(ceiling)),
        critical_path,
        parallel_mode,
    }))
}

/// The ceiling: the block cut into contiguous parts, each with the state it starts from.
struct Ceiling {
    pool: rayon::ThreadPool,
    execs: Vec<Executor>,
    states: Vec<State>,
    bounds: Vec<usize>,
}

impl Ceiling {
    /// Run part `t` on the `t`-th thread (part 0 on the calling thread, as the executor runs
    /// its first worker), each against its own state. `true` if a part failed.
    fn run(&mut self, ledger: &Ledger<RejectAllProofs>, txs: &[VerifiedTx]) -> bool {
        let failed = AtomicBool::new(false);
        let (failed_ref, states, bounds) = (&failed, &self.states, &self.bounds);
        let part = move |t: usize, ex: &mut Executor| {
            let (state, part) = (&states[t], &txs[bounds[t]..bounds[t + 1]]);
            if ex.execute_serial(ledger, state, part).is_err() {
                failed_ref.store(true, Ordering::Relaxed);
            }
        };
        self.pool.in_place_scope(|scope| {
            let mut execs = self.execs.iter_mut().enumerate();
            let first = execs.next();
            for (t, ex) in execs {
                scope.spawn(move |_| part(t, ex));
            }
            if let Some((t, ex)) = first {
                part(t, ex);
            }
        });
        failed.into_inner()
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("dag-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    if args.txs == 0 || args.txs > MAX_TXS {
        return Err(format!("--txs must be in 1..={MAX_TXS}"));
    }
    if args.threads == 0 || args.threads > banyan_dag::MAX_THREADS {
        return Err(format!(
            "--threads must be in 1..={}",
            banyan_dag::MAX_THREADS
        ));
    }
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    let most = args.accounts.iter().copied().max().unwrap_or(0);
    if args.accounts.is_empty() || args.accounts.contains(&0) || most > MAX_ACCOUNTS {
        return Err(format!("--accounts must be in 1..={MAX_ACCOUNTS}"));
    }
    let keys: Vec<AccountSecretKey> = (0..most).map(account_key).collect();
    if !args.json && args.only.is_none() {
        println!(
            "{:>9} {:>7} {:>7} {:>13} {:>13} {:>8} {:>8} {:>10} {:>9} {:>9}",
            "accounts",
            "txs",
            "threads",
            "serial tx/s",
            "parallel tx/s",
            "speedup",
            "ceiling",
            "efficiency",
            "crit.path",
            "mode"
        );
    }
    for &accounts in &args.accounts {
        let Some(row) = measure(args, accounts, &keys)? else {
            continue;
        };
        let speedup = row.parallel_tps / row.serial_tps;
        let ceiling = row.ceiling_tps / row.serial_tps;
        let efficiency = speedup / ceiling;
        if args.json {
            println!(
                "{{\"accounts\":{},\"txs\":{},\"threads\":{},\"serial_tps\":{:.1},\"parallel_tps\":{:.1},\"speedup\":{:.4},\"ceiling_speedup\":{:.4},\"efficiency\":{:.4}}}",
                row.accounts, row.txs, row.threads, row.serial_tps, row.parallel_tps, speedup,
                ceiling, efficiency
            );
        } else {
            println!(
                "{:>9} {:>7} {:>7} {:>13.0} {:>13.0} {:>8.3} {:>8.3} {:>10.3} {:>9} {:>9}",
                row.accounts,
                row.txs,
                row.threads,
                row.serial_tps,
                row.parallel_tps,
                speedup,
                ceiling,
                efficiency,
                row.critical_path
                    .map_or_else(|| "-".to_string(), |c| c.to_string()),
                if row.parallel_mode {
                    "parallel"
                } else {
                    "serial"
                }
            );
        }
    }
    Ok(())
}
