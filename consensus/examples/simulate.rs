//! Run many seeded simulations with random faults and Byzantine members; print one JSON object.
//!
//! `cargo run --release --manifest-path consensus/Cargo.toml --example simulate -- \
//!     --validators 7 --byzantine 2 --seeds 200 --json`
//!
//! Options: `--validators N`, `--byzantine B` (random behaviours, twins favoured),
//! `--seeds S`, `--first-seed K`, `--json`, `--verbose` (one line per seed on stderr),
//! `--fault-free` (no faults, 10 s per seed: latency and messages per commit as N grows).

use banyan_consensus::sim::{make_committee, scenario, Simulation};
use banyan_core::ids::Epoch;

struct Args {
    validators: usize,
    byzantine: usize,
    seeds: u64,
    first_seed: u64,
    json: bool,
    verbose: bool,
    fault_free: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        validators: 7,
        byzantine: 2,
        seeds: 100,
        first_seed: 0,
        json: false,
        verbose: false,
        fault_free: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--validators" => a.validators = value()?.parse().map_err(|e| format!("{e}"))?,
            "--byzantine" => a.byzantine = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seeds" => a.seeds = value()?.parse().map_err(|e| format!("{e}"))?,
            "--first-seed" => a.first_seed = value()?.parse().map_err(|e| format!("{e}"))?,
            "--json" => a.json = true,
            "--verbose" => a.verbose = true,
            "--fault-free" => a.fault_free = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.validators == 0 || a.byzantine > a.validators {
        return Err("need 1 <= validators and byzantine <= validators".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simulate: {e}");
            std::process::exit(2);
        }
    };
    let committee = match make_committee(args.validators, Epoch(0)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("simulate: {e}");
            std::process::exit(1);
        }
    };
    let (mut violations, mut liveness, mut commits, mut msgs) = (0u64, 0u64, 0u64, 0u64);
    let (mut lat_sum, mut lat_n, mut rounds_sum) = (0u64, 0u64, 0u64);
    let mut double_signs = 0u64;
    let mut longest_stall = 0u64;
    for seed in args.first_seed..args.first_seed + args.seeds {
        let cfg = if args.fault_free {
            scenario::fault_free(args.validators, seed, 10_000)
        } else {
            scenario::random(args.validators, args.byzantine, seed)
        };
        let sim = match Simulation::with_committee(cfg, committee.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("simulate: seed {seed}: {e}");
                std::process::exit(1);
            }
        };
        let r = sim.run();
        if args.verbose {
            eprintln!(
                "seed {seed}: height {} commits {} violations {} double-signs {} liveness-failure {} longest-stall {} ms msgs {} end {} ms round {} evidence {:?} rejected {:?}",
                r.committed_height, r.honest_commits, r.safety_violations, r.double_signs,
                r.liveness_failure, r.max_stall_ms, r.messages, r.end_ms, r.max_round, r.evidence, r.rejected
            );
        }
        violations += r.safety_violations as u64;
        double_signs += r.double_signs as u64;
        liveness += u64::from(r.liveness_failure);
        longest_stall = longest_stall.max(r.max_stall_ms);
        commits += r.committed_height;
        msgs += r.messages;
        lat_sum += r.commit_latency_sum_ms;
        rounds_sum += r.commit_latency_sum_rounds;
        lat_n += r.honest_commits;
    }
    let mean_ms = lat_sum as f64 / lat_n.max(1) as f64;
    let mean_rounds = rounds_sum as f64 / lat_n.max(1) as f64;
    let per_commit = msgs as f64 / commits.max(1) as f64;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "seeds": args.seeds,
                "validators": args.validators,
                "byzantine": args.byzantine,
                "safety_violations": violations,
                "liveness_failures": liveness,
                "longest_stall_after_gst_ms": longest_stall,
                "commits": commits,
                "mean_commit_latency_ms": (mean_ms * 10.0).round() / 10.0,
                "messages_per_commit": (per_commit * 10.0).round() / 10.0,
                "mean_commit_latency_rounds": (mean_rounds * 100.0).round() / 100.0,
                "double_signs": double_signs,
            })
        );
    } else {
        println!(
            "seeds {} validators {} byzantine {}: safety violations {violations}, liveness failures {liveness} (longest stall after GST {longest_stall} ms), commits {commits}, mean commit latency {mean_ms:.1} ms ({mean_rounds:.2} rounds), {per_commit:.1} messages/commit, double signs {double_signs}",
            args.seeds, args.validators, args.byzantine
        );
    }
}
