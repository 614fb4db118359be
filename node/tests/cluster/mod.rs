//! A devnet of real `banyan` processes for the integration tests: keys, genesis and node
//! directories made by `banyan devnet --init-only` in a temp dir, RocksDB on disk, QUIC and
//! HTTP on loopback ports picked free.
#![allow(dead_code)]

use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Nonce};
use banyan_core::tx::{SignedTx, TxBody};
use banyan_node::api::{AccountView, BlockView, NodeStatus, ValidatorsView};
use banyan_node::devnet::{processes, Layout, NodeProcess, DEVNET_PASSWORD};
use banyan_node::key_dir::{KeyPaths, PublicKeys, ValidatorKeys};
use banyan_node::rpc::client::RpcClient;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub const EXE: &str = env!("CARGO_BIN_EXE_banyan");

/// Clusters of one test binary run one at a time: each is several processes, and the
/// machine may have two cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub layout: Layout,
    pub nodes: Vec<NodeProcess>,
    /// The network's id (its genesis block id), which transactions sign.
    pub network: Digest,
}

impl Cluster {
    /// Create (not start) a devnet of `validators` staked nodes plus `standby` unstaked ones.
    pub fn create(validators: u16, standby: u16, epoch_length: u64) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("net");
        let out = Command::new(EXE)
            .args(["devnet", "--init-only", "--no-demo", "--dir"])
            .arg(&root)
            .args(["--validators", &validators.to_string()])
            .args(["--standby", &standby.to_string()])
            .args(["--epoch-length", &epoch_length.to_string()])
            .output()
            .expect("run banyan devnet --init-only");
        assert!(
            out.status.success(),
            "devnet --init-only failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let layout = Layout { dir: root };
        let nodes = processes(&layout).expect("node dirs");
        assert_eq!(nodes.len(), usize::from(validators + standby));
        let network = banyan_mainchain::Genesis::from_file(&nodes[0].config.genesis)
            .expect("the devnet's genesis")
            .network();
        Cluster {
            dir,
            layout,
            nodes,
            network,
        }
    }

    pub fn start(&mut self, i: usize) {
        self.nodes[i]
            .spawn(std::path::Path::new(EXE))
            .expect("spawn node");
    }

    pub fn start_all(&mut self, n: usize) {
        for i in 0..n {
            self.start(i);
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].stop(Duration::from_secs(20));
    }

    /// `banyan load --json` against the first `nodes` nodes' RPC endpoints with the demo
    /// keys, at `rate` tx/s for `duration` over `accounts` accounts, on `chain`.
    pub fn load_command(
        &self,
        nodes: usize,
        chain: u32,
        rate: u32,
        duration: &str,
        accounts: u32,
        presign: bool,
    ) -> Command {
        let urls: Vec<String> = (0..nodes).map(|i| self.nodes[i].rpc_url()).collect();
        let mut cmd = Command::new(EXE);
        cmd.arg("load")
            .args(["--rpc", &urls.join(",")])
            .args(["--chain", &chain.to_string()])
            .arg("--keys")
            .arg(self.layout.demo())
            .arg("--password-file")
            .arg(self.layout.password())
            .args(["--rate", &rate.to_string()])
            .args(["--duration", duration])
            .args(["--accounts", &accounts.to_string()])
            .arg("--json");
        if presign {
            cmd.arg("--presign");
        }
        cmd
    }

    /// `banyan <args> --rpc <node i>`: its stdout, or its stderr when it fails.
    pub fn cli(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let out = Command::new(EXE)
            .args(args)
            .args(["--rpc", &self.nodes[i].rpc_url()])
            .output()
            .expect("run banyan");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run a command built by [`Cluster::load_command`] off the async workers and return its
    /// JSON report; panics with its stderr when it fails.
    pub async fn run_load(mut cmd: Command, what: &str) -> serde_json::Value {
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("run banyan load");
        assert!(
            out.status.success(),
            "banyan load ({what}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON report")
    }

    pub fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&self.nodes[i].rpc_url()).expect("rpc client")
    }

    pub fn metrics_url(&self, i: usize) -> String {
        format!("http://{}/metrics", self.nodes[i].config.metrics_listen)
    }

    pub fn db_path(&self, i: usize) -> PathBuf {
        self.nodes[i].home.join("data").join("db")
    }

    pub fn keys(&self, dir: PathBuf) -> (ValidatorKeys, PublicKeys) {
        KeyPaths::new(&dir)
            .open()
            .expect("key files")
            .decrypt(DEVNET_PASSWORD)
            .expect("decrypt")
    }

    pub fn demo_keys(&self) -> (ValidatorKeys, PublicKeys) {
        self.keys(self.layout.demo())
    }

    pub fn node_keys(&self, i: usize) -> (ValidatorKeys, PublicKeys) {
        self.keys(self.nodes[i].home.join("keys"))
    }

    pub fn log_tail(&self, i: usize) -> String {
        self.nodes[i].log_tail(30)
    }

    pub async fn status(&self, i: usize) -> Option<NodeStatus> {
        self.client(i).status().await.ok()
    }

    pub async fn height(&self, i: usize) -> Option<u64> {
        self.status(i)
            .await
            .and_then(|s| s.chains.first().map(|c| c.height))
    }

    /// Wait until node `i` reports at least `h`.
    pub async fn wait_height(&self, i: usize, h: u64, timeout: Duration) -> u64 {
        let start = Instant::now();
        loop {
            if let Some(now) = self.height(i).await {
                if now >= h {
                    return now;
                }
            }
            if start.elapsed() > timeout {
                panic!(
                    "node {i} did not reach height {h} in {timeout:?} (at {:?}); log:\n{}",
                    self.height(i).await,
                    self.log_tail(i)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn account(&self, i: usize, addr: Address) -> AccountView {
        self.client(i)
            .account(ChainId::MAIN, addr, AssetId::NATIVE)
            .await
            .expect("account query")
    }

    pub async fn block(&self, i: usize, h: u64) -> BlockView {
        self.client(i).block(Some(h)).await.expect("block query")
    }

    pub async fn validators(&self, i: usize) -> ValidatorsView {
        self.client(i).validators().await.expect("validators query")
    }

    /// Wait until `addr`'s nonce is at least `nonce` on node `i`.
    pub async fn wait_nonce(&self, i: usize, addr: Address, nonce: u64, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(a) = self
                .client(i)
                .account(ChainId::MAIN, addr, AssetId::NATIVE)
                .await
            {
                if a.nonce >= nonce {
                    return;
                }
                if start.elapsed() > timeout {
                    panic!(
                        "node {i}: nonce of {} is {} after {timeout:?}, want {nonce}; log:\n{}",
                        addr.to_hex(),
                        a.nonce,
                        self.log_tail(i)
                    );
                }
            } else if start.elapsed() > timeout {
                panic!("node {i} unreachable; log:\n{}", self.log_tail(i));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Scrape /metrics of node `i`.
    pub async fn metrics(&self, i: usize) -> String {
        let addr = self.nodes[i].config.metrics_listen;
        http_get(addr, "/metrics").await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.nodes.iter_mut() {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A minimal HTTP/1.1 GET over a fresh connection.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A native transfer on `network`.
pub fn transfer(
    network: Digest,
    keys: &ValidatorKeys,
    nonce: u64,
    to: Address,
    amount: u128,
) -> SignedTx {
    TxBody::native_transfer(
        ChainId::MAIN,
        network,
        keys.account.public_key(),
        Nonce(nonce),
        Amount(1),
        to,
        Amount(amount),
    )
    .sign(&keys.account)
}

/// A recipient address that no key controls.
pub fn recipient(i: u64) -> Address {
    let mut a = [0u8; 32];
    a[..8].copy_from_slice(&i.to_le_bytes());
    a[31] = 0xab;
    Address(a)
}

/// Value of an unlabelled-or-labelled sample in a text exposition, summed over label sets.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}
