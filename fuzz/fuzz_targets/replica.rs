//! The replica under schedules the fuzzer chooses: a committee of four whose last member runs
//! as twins (one key, two replicas: real equivocation), and every step picked from the input:
//! which message in flight arrives, is repeated, lost, corrupted or credited to another
//! sender, when time passes, who crashes and restarts from its durable state, and raw bytes
//! from members and non-members. After every step the honest three must agree on every
//! committed height, never sign twice in a round, prove every commit, and keep running.
#![no_main]

use banyan_consensus::Message;
use banyan_fuzz::{Bytes, COMMITTEE_SIZE};
use libfuzzer_sys::fuzz_target;

/// Most steps one input drives.
const MAX_STEPS: usize = 4_096;

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let mut cluster = banyan_fuzz::cluster(true);
    let mut steps = 0;
    while !input.is_empty() && steps < MAX_STEPS {
        steps += 1;
        // Errors below are replicas refusing what they were handed: the point of the target.
        match input.u8() % 16 {
            0..=7 => {
                let _ = cluster.deliver(usize::from(input.u8()));
            }
            8 => {
                let _ = cluster.duplicate(usize::from(input.u8()));
            }
            9 => cluster.lose(usize::from(input.u8())),
            10 | 11 => cluster.advance(u64::from(input.u8()) * 20),
            12 => {
                let _ = cluster.restart(usize::from(input.u8()));
            }
            13 => {
                let (slot, at, flip) = (usize::from(input.u8()), input.u16(), input.u8() | 1);
                if let Some(m) = cluster.slot(slot).cloned() {
                    let mut bytes = m.message.encode();
                    let i = usize::from(at) % bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(i) {
                        *b ^= flip;
                    }
                    if let Ok(message) = Message::decode(&bytes) {
                        let _ = cluster.inject(m.to, m.from, message);
                    }
                }
            }
            14 => {
                let node = usize::from(input.u8());
                let from = usize::from(input.u8() % 6);
                let len = usize::from(input.u16());
                if let Ok(message) = Message::decode(input.take(len)) {
                    let _ = cluster.inject(node, from, message);
                }
            }
            _ => {
                let (slot, from) = (
                    usize::from(input.u8()),
                    usize::from(input.u8()) % COMMITTEE_SIZE,
                );
                if let Some(m) = cluster.slot(slot).cloned() {
                    let _ = cluster.inject(m.to, from, m.message);
                }
            }
        }
        if let Err(e) = cluster.check() {
            panic!("after {steps} steps: {e}");
        }
    }
});
