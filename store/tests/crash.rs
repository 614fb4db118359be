//! `kill -9` in the middle of committing: the store reopens at a whole batch, and no batch the
//! writer saw committed is lost.
//!
//! The writer is this test binary re-executed with `CHILD_DIR_ENV` set, running only
//! `crash_child_writer`; it prints `committed N` after each `Store::write` returns. The parent
//! waits for a given number of those lines — progress, not time — then kills it with SIGKILL.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use banyan_store::Durability;

const CHILD_DIR_ENV: &str = "BANYAN_STORE_CRASH_CHILD_DIR";
const CHILD_SYNC_ENV: &str = "BANYAN_STORE_CRASH_CHILD_SYNC";
const KEYS: u32 = 16;
/// The writer stops here if nobody kills it (it should never get this far).
const MAX_BATCHES: u64 = 1_000_000;

/// The writer half, run only as the child of `kill_9_*` below (ignored in a normal run, so it
/// never passes without checking anything).
#[test]
#[ignore = "the writer half of the kill -9 tests; they run it in a child process"]
fn crash_child_writer() {
    let dir = std::env::var_os(CHILD_DIR_ENV).unwrap_or_else(|| {
        panic!("{CHILD_DIR_ENV} is not set: this writer runs only as a child of the kill -9 tests")
    });
    let durability = match std::env::var(CHILD_SYNC_ENV).as_deref() {
        Ok("1") => Durability::Sync,
        _ => Durability::Buffered,
    };
    let store = common::open(std::path::Path::new(&dir));
    for batch in 1..=MAX_BATCHES {
        common::write_numbered_batch(&store, batch, KEYS, durability);
        // Panics (ending the child) once the parent has gone.
        println!("committed {batch}");
    }
}

/// Run the writer, kill it with SIGKILL once it has reported `kill_after` commits, reopen,
/// and check the recovered state.
fn kill_9_after(kill_after: u64, sync: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .env(CHILD_SYNC_ENV, if sync { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("piped stdout");

    let mut reported = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read writer output");
        // libtest prints `test crash_child_writer ... ` without a newline first, so the first
        // report shares its line.
        if let Some((_, n)) = line.split_once("committed ") {
            reported = n.parse().expect("batch number");
            if reported >= kill_after {
                break;
            }
        }
    }
    // `Child::kill` sends SIGKILL on Unix: no destructors, no flush, like `kill -9`.
    child.kill().expect("kill writer");
    let status = child.wait().expect("reap writer");
    assert_eq!(reported, kill_after, "writer stopped early: {status:?}");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "writer was not killed: {status:?}"
    );

    let store = common::open(dir.path());
    let last = common::assert_whole_batch_prefix(&store, KEYS);
    assert!(
        last >= reported,
        "lost committed batches: recovered {last}, writer had committed {reported}"
    );
}

#[test]
fn kill_9_with_buffered_writes_leaves_whole_batches() {
    for kill_after in [1, 5, 13, 40, 120, 250, 600] {
        kill_9_after(kill_after, false);
    }
}

#[test]
fn kill_9_with_synced_writes_leaves_whole_batches() {
    for kill_after in [2, 17, 90, 300] {
        kill_9_after(kill_after, true);
    }
}
