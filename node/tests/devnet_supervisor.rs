//! `banyan devnet` as a supervisor of its validator processes: a validator killed with
//! SIGKILL is reported and restarted while the others keep committing, and it catches up;
//! `banyan devnet stop|status|start` act on one validator by hand; with two of four killed
//! at once (more than a committee of four tolerates) the devnet says the chain cannot commit,
//! restarts both, and the chain resumes; SIGTERM stops everything.

use banyan_node::rpc::client::RpcClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_banyan");

/// The devnet process and where its output goes.
struct Devnet {
    child: Child,
    dir: PathBuf,
    out: PathBuf,
    err: PathBuf,
}

impl Devnet {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Wait until its stderr contains `text` (counting from byte `from`).
    async fn wait_said(&self, text: &str, from: usize, timeout: Duration) {
        let started = Instant::now();
        loop {
            let said = self.stderr();
            if said.get(from..).is_some_and(|s| s.contains(text)) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "the devnet did not say {text:?} within {timeout:?}; it said:\n{said}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The JSON-RPC address of each validator, from what it printed.
    fn rpc_urls(&self) -> Vec<String> {
        self.stdout()
            .lines()
            .filter_map(|l| {
                let rest = l.trim_start().split_once(": rpc ")?.1;
                rest.split_whitespace().next().map(str::to_string)
            })
            .collect()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            banyan_node::devnet::terminate(pid);
        }
        let _ = self.child.wait();
    }
}

/// The pid of the `banyan start` process whose home is `home`.
fn pid_of(home: &Path) -> Option<i32> {
    let want = home.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "start") && args.contains(&want) {
            return Some(pid);
        }
    }
    None
}

fn kill9(pid: i32) {
    let pid = rustix::process::Pid::from_raw(pid).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill -9");
}

async fn height(url: &str) -> u64 {
    let Ok(client) = RpcClient::new(url) else {
        return 0;
    };
    match client.status().await {
        Ok(s) => s.chains.first().map(|c| c.height).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Wait until the node at `url` reports at least `h`.
async fn wait_height(url: &str, h: u64, timeout: Duration, what: &str) {
    let started = Instant::now();
    while height(url).await < h {
        assert!(
            started.elapsed() < timeout,
            "{what}: {url} not at height {h} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_restarts_killed_validators_and_reports_a_halt() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("net");
    let out = tmp.path().join("devnet.out");
    let err = tmp.path().join("devnet.err");
    let child = Command::new(EXE)
        .args(["devnet", "--no-demo", "--sidechains", "0", "--dir"])
        .arg(&dir)
        .args(["--validators", "4", "--epoch-length", "1000"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("start banyan devnet");
    let mut devnet = Devnet {
        child,
        dir: dir.clone(),
        out,
        err,
    };
    let started = Instant::now();
    while !devnet.stdout().contains("devnet running") {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the devnet did not start; it said:\n{}",
            devnet.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rpc = devnet.rpc_urls();
    assert_eq!(rpc.len(), 4, "{}", devnet.stdout());

    // One validator killed: reported, restarted; the others never stop committing.
    let v1 = pid_of(&devnet.dir.join("v1")).expect("v1 runs");
    let mark = devnet.stderr().len();
    let before = height(&rpc[0]).await;
    kill9(v1);
    devnet
        .wait_said("validator v1 exited", mark, Duration::from_secs(10))
        .await;
    devnet
        .wait_said("restarting v1 in 1 s", mark, Duration::from_secs(10))
        .await;
    wait_height(
        &rpc[0],
        before + 5,
        Duration::from_secs(30),
        "three of four commit",
    )
    .await;
    devnet
        .wait_said("validator v1 restarted", mark, Duration::from_secs(20))
        .await;
    let now = height(&rpc[0]).await;
    wait_height(&rpc[1], now, Duration::from_secs(60), "v1 catches up").await;
    assert_ne!(pid_of(&devnet.dir.join("v1")), Some(v1), "a new process");

    // By hand: `devnet stop` keeps v1 down (no restart), `devnet status` says so, the others
    // commit; `devnet start` brings it back and it catches up.
    let control = |args: &[&str]| -> String {
        let out = Command::new(EXE)
            .arg("devnet")
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .output()
            .expect("run banyan devnet <action>");
        assert!(
            out.status.success(),
            "banyan devnet {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = control(&["stop", "v1"]);
    assert!(said.contains("v1 stopped; it stays down"), "{said}");
    let before = height(&rpc[0]).await;
    wait_height(
        &rpc[0],
        before + 5,
        Duration::from_secs(30),
        "three commit, v1 held",
    )
    .await;
    assert_eq!(pid_of(&devnet.dir.join("v1")), None, "v1 stays down");
    let table = control(&["status"]);
    let v1_line = table
        .lines()
        .find(|l| l.starts_with("v1 "))
        .unwrap_or_else(|| panic!("no v1 in:\n{table}"));
    assert!(v1_line.contains("down (held)"), "{table}");
    assert!(
        table.lines().filter(|l| l.contains(" up ")).count() == 3,
        "{table}"
    );
    let said = control(&["start", "v1"]);
    assert!(said.contains("v1 started"), "{said}");
    let now = height(&rpc[0]).await;
    wait_height(
        &rpc[1],
        now,
        Duration::from_secs(60),
        "v1 catches up after start",
    )
    .await;
    // Unknown names and a stop of a stopped validator are clear errors.
    let out = Command::new(EXE)
        .args(["devnet", "stop", "v9", "--dir"])
        .arg(&dir)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no validator v9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two killed at once: more than f = 1 of 4; said so, both restarted, the chain resumes.
    let mark = devnet.stderr().len();
    kill9(pid_of(&devnet.dir.join("v2")).expect("v2 runs"));
    kill9(pid_of(&devnet.dir.join("v3")).expect("v3 runs"));
    devnet
        .wait_said(
            "2 of 4 validators are down (v2, v3), more than the 1",
            mark,
            Duration::from_secs(10),
        )
        .await;
    devnet
        .wait_said("validators are up again", mark, Duration::from_secs(30))
        .await;
    let resumed = height(&rpc[0]).await;
    wait_height(
        &rpc[0],
        resumed + 5,
        Duration::from_secs(60),
        "the chain resumes",
    )
    .await;
    for url in &rpc[2..] {
        wait_height(
            url,
            resumed,
            Duration::from_secs(60),
            "restarted nodes catch up",
        )
        .await;
    }
    assert!(
        devnet.child.try_wait().expect("wait").is_none(),
        "the devnet keeps running through both faults; it said:\n{}",
        devnet.stderr()
    );

    // SIGTERM: every validator stops with it.
    banyan_node::devnet::terminate(i32::try_from(devnet.child.id()).expect("pid"));
    let status = devnet.child.wait().expect("wait");
    assert!(status.success(), "{status}; it said:\n{}", devnet.stderr());
    for v in ["v0", "v1", "v2", "v3"] {
        assert_eq!(pid_of(&devnet.dir.join(v)), None, "{v} left running");
    }
}
