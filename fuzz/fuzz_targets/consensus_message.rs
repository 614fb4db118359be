//! A consensus message from a committee member: decoded (canonical encodings only), then
//! handed to a fresh replica, which checks its signatures and certificates and must refuse
//! or take it without panicking.
#![no_main]

use banyan_consensus::{Message, MAX_MESSAGE_BYTES};
use banyan_fuzz::canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(message) = canonical::<Message>(data, MAX_MESSAGE_BYTES) else {
        return;
    };
    let from = match &message {
        Message::Vote(v) => v.signer as usize,
        Message::Timeout(t) => t.signer as usize,
        _ => 1,
    };
    let mut cluster = banyan_fuzz::cluster(false);
    let _ = cluster.inject(0, from, message);
    cluster.advance(10_000);
    if let Err(e) = cluster.check() {
        panic!("{e}");
    }
});
