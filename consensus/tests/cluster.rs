//! The caller-stepped cluster (what the replica fuzz target drives): in order it commits, and
//! under random schedules with equivocating twins, losses, repeats, corruption and restarts
//! (fixed seeds; the fuzzer searches further) the honest members stay safe, and a planted
//! bug is caught.

use banyan_consensus::sim::cluster::Cluster;
use banyan_consensus::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn in_order_delivery_commits() {
    let mut c = Cluster::new(4, false).expect("cluster");
    c.start().expect("start");
    for _ in 0..5_000 {
        if c.committed_height() >= 10 {
            break;
        }
        if c.in_flight().is_empty() {
            c.advance(1_000);
        } else {
            let _ = c.deliver(0);
        }
    }
    assert!(
        c.committed_height() >= 10,
        "height {}",
        c.committed_height()
    );
    c.check().expect("safe");
}

#[test]
fn random_schedules_with_twins_stay_safe() {
    let mut heights = 0;
    for seed in 0..12u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = Cluster::new(4, true).expect("cluster");
        c.start().expect("start");
        for step in 0..1_500 {
            let slot = rng.gen::<usize>();
            match rng.gen_range(0..100) {
                0..=69 => {
                    let _ = c.deliver(slot);
                }
                70..=74 => {
                    let _ = c.duplicate(slot);
                }
                75..=79 => c.lose(slot),
                80..=91 => c.advance(rng.gen_range(0..1_500)),
                92 => {
                    let _ = c.restart(rng.gen_range(0..c.node_count()));
                }
                93..=96 => {
                    if let Some(m) = c.slot(slot).cloned() {
                        let mut bytes = m.message.encode();
                        let i = rng.gen_range(0..bytes.len());
                        bytes[i] ^= rng.gen_range(1..=255u8);
                        if let Ok(message) = Message::decode(&bytes) {
                            let _ = c.inject(m.to, m.from, message);
                        }
                    }
                }
                _ => {
                    if let Some(m) = c.slot(slot).cloned() {
                        let _ = c.inject(m.to, rng.gen_range(0..6), m.message);
                    }
                }
            }
            if let Err(e) = c.check() {
                panic!("seed {seed}, step {step}: {e}");
            }
        }
        heights += c.committed_height();
    }
    // Not a liveness claim (the schedules are adversarial), only that they reach commits, so
    // the safety checks above look at something.
    assert!(heights > 0, "no schedule committed anything");
}

#[test]
fn a_planted_lossy_disk_is_caught() {
    // Member 1 leads round 1 (round-robin) and proposes at start. Restarted a few milliseconds
    // later with a disk that kept nothing, it proposes again for round 1, a block with another
    // timestamp: the check must report the double signature. With a sound disk it must not.
    for lossy in [true, false] {
        let mut c = Cluster::new(4, false).expect("cluster");
        if lossy {
            c.set_lossy_disk(1);
        }
        c.start().expect("start");
        c.advance(5);
        c.restart(1).expect("restart");
        match (lossy, c.check()) {
            (true, Err(e)) => assert!(e.contains("double sign"), "{e}"),
            (true, Ok(())) => panic!("the checker missed a double signature"),
            (false, r) => r.expect("a sound disk never double-signs"),
        }
    }
}
