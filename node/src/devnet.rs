//! `banyan devnet`: a local network of validator processes on loopback.
//!
//! It generates keys for N validators and a funded demo account, writes a genesis and one
//! node directory per validator (free loopback ports, picked below the kernel's range for
//! outgoing connections so that no client socket can take one later), starts every validator
//! as a separate `banyan start` process, waits for the first commits, sends a few demo
//! transfers, prints the endpoints and runs until Ctrl-C, SIGTERM or `--duration`, then stops the children with
//! SIGTERM (SIGKILL after 10 s). Everything lives under one directory; running it again restarts the
//! same network with its data, `--reset` starts over.

use crate::api::NodeStatus;
use crate::config::{Identity, NodeConfig};
use crate::init::{self, NodeDir, CONFIG_FILE};
use crate::key_dir::{KeyPaths, ValidatorKeys};
use crate::keystore::KdfPreset;
use crate::rpc::client::RpcClient;
use anyhow::{anyhow, bail, Context, Result};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Nonce};
use banyan_core::tx::TxBody;
use banyan_mainchain::genesis::{GenesisAccount, GenesisFile, GenesisValidator};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Password of every devnet keystore (written to `<dir>/password`). Devnet keys are
/// throwaway: they use the fast, insecure KDF.
pub const DEVNET_PASSWORD: &str = "banyan-devnet";
/// Balance of the demo account at genesis.
pub const DEMO_BALANCE: u128 = 1_000_000_000_000_000;
/// Balance of each validator's account at genesis (pays staking fees).
pub const VALIDATOR_BALANCE: u128 = 1_000_000_000;
/// Stake of each genesis validator.
pub const VALIDATOR_STAKE: u128 = 1_000_000;
/// Epochs unstaked coins wait on a devnet (short, so that a demo sees them paid).
pub const DEVNET_UNBONDING_EPOCHS: u64 = 1;

/// Arguments of `banyan devnet`.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Act on one validator of a running devnet, or show each validator's state; without
    /// one, create (or restart) the devnet and run it.
    #[command(subcommand)]
    pub action: Option<DevnetAction>,
    /// Directory holding the whole devnet (keys, genesis, node directories, logs).
    #[arg(long, default_value = "./devnet", global = true)]
    pub dir: PathBuf,
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub validators: u16,
    /// Delete the directory first and start a new chain.
    #[arg(long)]
    pub reset: bool,
    /// Stop after this long (e.g. `90s`, `5m`); default: run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Blocks per epoch.
    #[arg(long, default_value_t = 100)]
    pub epoch_length: u64,
    /// Most transactions per block.
    #[arg(long, default_value_t = 5_000)]
    pub max_block_txs: usize,
    /// Round timeout after a certified round, ms.
    #[arg(long, default_value_t = 1_000)]
    pub base_timeout_ms: u64,
    /// Extra validators with keys and node directories but no stake at genesis (they can
    /// join with `banyan validator stake`).
    #[arg(long, default_value_t = 0)]
    pub standby: u16,
    /// Only create the directory (keys, genesis, configs); do not start anything.
    #[arg(long)]
    pub init_only: bool,
    /// Skip the demo transfers.
    #[arg(long)]
    pub no_demo: bool,
    /// Also run these chains in every node, each derived from the main chain's genesis (same
    /// validators and funded accounts, its own chain id and state), e.g. `--test-chains 1,2`;
    /// load one with `banyan load --chain 1`.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub test_chains: Vec<u32>,
    /// Sidechains the demo account spawns on a new devnet (committees of up to 4 validators
    /// drawn by the main chain, 500 ms blocks); the devnet waits for each to commit its first
    /// block. 0 for none.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=16))]
    pub sidechains: u16,
    /// Leave a validator that exits down instead of restarting it (with a backoff of 1 s,
    /// doubling to 30 s).
    #[arg(long)]
    pub no_restart: bool,
}

/// What `banyan devnet <action>` does to a running devnet (its supervisor carries it out).
#[derive(Debug, Clone, Subcommand)]
pub enum DevnetAction {
    /// Stop one validator (SIGTERM) and keep it down until `banyan devnet start`.
    #[command(after_help = "Examples:
  banyan devnet stop v1 --dir ./devnet")]
    Stop {
        /// The validator's name, as the devnet printed it (v0, v1, ...).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Start a validator that is down (stopped, or left down by --no-restart).
    #[command(after_help = "Examples:
  banyan devnet start v1 --dir ./devnet")]
    Start {
        /// The validator's name (v0, v1, ...).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Restart one validator: SIGTERM, then started again at once.
    #[command(after_help = "Examples:
  banyan devnet restart v1 --dir ./devnet")]
    Restart {
        /// The validator's name (v0, v1, ...).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Each validator's state: up or down, restarts, and its main chain's height, epoch,
    /// round and peers. Run it again to refresh.
    #[command(after_help = "Examples:
  banyan devnet status --dir ./devnet")]
    Status,
}

/// Files in a validator's directory through which `banyan devnet <action>` and the running
/// devnet's supervisor talk: the process id, a hold (do not restart), a start request and the
/// restart count.
const PID_FILE: &str = "pid";
const HOLD_FILE: &str = "hold";
const START_FILE: &str = "start-request";
const RESTARTS_FILE: &str = "restarts";
/// The running devnet's own process id, in the devnet directory.
const DEVNET_PID_FILE: &str = "devnet.pid";

/// Whether process `pid` is alive and its command line holds `needle`.
fn process_alive(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .any(|a| String::from_utf8_lossy(a) == needle)
        })
        .unwrap_or(false)
}

/// The pid in `path`, if the process is alive and its command line holds `needle`.
fn live_pid(path: &Path, needle: &str) -> Option<u32> {
    let pid = std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse::<u32>()
        .ok()?;
    process_alive(pid, needle).then_some(pid)
}

/// Carry out `banyan devnet <action>` on the devnet in `dir`.
pub fn control(dir: &Path, action: DevnetAction, out: &mut dyn std::io::Write) -> Result<()> {
    let layout = Layout {
        dir: dir.to_path_buf(),
    };
    let nodes = processes(&layout)?;
    if nodes.is_empty() {
        bail!(
            "{} is not a devnet directory; create one with `banyan devnet --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    let supervisor = live_pid(&dir.join(DEVNET_PID_FILE), "devnet");
    let node = |name: &str| -> Result<&NodeProcess> {
        nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            anyhow!(
                "no validator {name} in {}; it has {}",
                dir.display(),
                names.join(", ")
            )
        })
    };
    // The pid file is the supervisor's; the process must still be a `banyan start`.
    let pid_of = |n: &NodeProcess| live_pid(&n.home.join(PID_FILE), "start");
    let running = |n: &NodeProcess| -> Result<u32> {
        pid_of(n).ok_or_else(|| {
            anyhow!(
                "{} is not running; `banyan devnet start {}` starts it",
                n.name,
                n.name
            )
        })
    };
    // Lift a hold and ask the supervisor to start the validator as soon as it is down.
    let request_start = |n: &NodeProcess| -> Result<()> {
        let _ = std::fs::remove_file(n.home.join(HOLD_FILE));
        std::fs::write(n.home.join(START_FILE), b"")
            .with_context(|| format!("cannot write {}", n.home.display()))
    };
    let need_supervisor = || -> Result<()> {
        if supervisor.is_none() {
            bail!(
                "no devnet is running in {}; start it with `banyan devnet --dir {}`",
                dir.display(),
                dir.display()
            );
        }
        Ok(())
    };
    match action {
        DevnetAction::Status => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            writeln!(
                out,
                "devnet {}: {}",
                dir.display(),
                if supervisor.is_some() {
                    "running"
                } else {
                    "not running"
                }
            )?;
            writeln!(
                out,
                "{:<6} {:<12} {:>8} {:>8} {:>6} {:>8} {:>6}",
                "name", "state", "restarts", "height", "epoch", "round", "peers"
            )?;
            for n in &nodes {
                let restarts = std::fs::read_to_string(n.home.join(RESTARTS_FILE))
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .unwrap_or(0);
                let state = match (pid_of(n), n.home.join(HOLD_FILE).exists()) {
                    (Some(_), _) => "up",
                    (None, true) => "down (held)",
                    (None, false) => "down",
                };
                let status = rt.block_on(async {
                    let client = RpcClient::new(&n.rpc_url()).ok()?;
                    client.status().await.ok()
                });
                let (height, epoch, round, peers) = match status.as_ref() {
                    Some(s) => {
                        let main = s.chains.first();
                        (
                            main.map(|c| c.height.to_string()).unwrap_or_default(),
                            main.map(|c| c.epoch.to_string()).unwrap_or_default(),
                            main.map(|c| c.round.to_string()).unwrap_or_default(),
                            format!("{}/{}", s.peers_connected, s.peers_configured),
                        )
                    }
                    None => ("-".into(), "-".into(), "-".into(), "-".into()),
                };
                writeln!(
                    out,
                    "{:<6} {:<12} {:>8} {:>8} {:>6} {:>8} {:>6}",
                    n.name, state, restarts, height, epoch, round, peers
                )?;
            }
            Ok(())
        }
        DevnetAction::Stop { name } => {
            need_supervisor()?;
            let n = node(&name)?;
            let pid = running(n)?;
            std::fs::write(n.home.join(HOLD_FILE), b"held by banyan devnet stop\n")
                .with_context(|| format!("cannot write {}", n.home.display()))?;
            terminate(pid as i32);
            wait_for(Duration::from_secs(20), || pid_of(n).is_none())
                .with_context(|| format!("{name} did not stop within 20 s"))?;
            writeln!(
                out,
                "{name} stopped; it stays down until `banyan devnet start {name} --dir {}`",
                dir.display()
            )?;
            Ok(())
        }
        DevnetAction::Start { name } => {
            need_supervisor()?;
            let n = node(&name)?;
            if let Some(pid) = pid_of(n) {
                bail!("{name} is already running (pid {pid})");
            }
            request_start(n)?;
            wait_for(Duration::from_secs(20), || pid_of(n).is_some()).with_context(|| {
                format!(
                    "{name} did not start within 20 s; see {}/node.log",
                    n.home.display()
                )
            })?;
            writeln!(out, "{name} started")?;
            Ok(())
        }
        DevnetAction::Restart { name } => {
            need_supervisor()?;
            let n = node(&name)?;
            let pid = running(n)?;
            request_start(n)?;
            terminate(pid as i32);
            wait_for(Duration::from_secs(30), || {
                pid_of(n).is_some_and(|p| p != pid)
            })
            .with_context(|| {
                format!(
                    "{name} did not come back within 30 s; see {}/node.log",
                    n.home.display()
                )
            })?;
            writeln!(out, "{name} restarted")?;
            Ok(())
        }
    }
}

/// Poll `done` every 100 ms until it holds, or fail after `timeout`.
fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            bail!("timed out");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Where a devnet's pieces are.
pub struct Layout {
    /// Root.
    pub dir: PathBuf,
}

impl Layout {
    /// Password file.
    pub fn password(&self) -> PathBuf {
        self.dir.join("password")
    }
    /// Genesis file.
    pub fn genesis(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }
    /// Demo account key dir.
    pub fn demo(&self) -> PathBuf {
        self.dir.join("demo")
    }
    /// Node directory of validator `i`.
    pub fn node(&self, i: usize) -> PathBuf {
        self.dir.join(format!("v{i}"))
    }
    /// Node directories present, in order.
    pub fn nodes(&self) -> Vec<PathBuf> {
        (0..)
            .map(|i| self.node(i))
            .take_while(|p| p.join(CONFIG_FILE).exists())
            .collect()
    }
}

/// Lowest port a devnet picks.
pub const MIN_DEVNET_PORT: u16 = 20_000;

/// The ports the kernel hands to outgoing connections (Linux `ip_local_port_range`; the
/// kernel's default where that file cannot be read).
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

/// Bind `addr` for UDP (`udp`) or TCP, then let it go: the address it got.
fn bind_loopback(addr: SocketAddr, udp: bool) -> std::io::Result<SocketAddr> {
    if udp {
        std::net::UdpSocket::bind(addr)?.local_addr()
    } else {
        std::net::TcpListener::bind(addr)?.local_addr()
    }
}

/// Picks the devnet's loopback ports. A port is only free when picked; the node binds it
/// later (and again at every restart). Ports from the kernel's ephemeral range could be
/// taken meanwhile by any outgoing connection (an RPC client, another node), so ports come
/// from below that range when there is room, each checked free and never given twice.
struct PortPicker {
    range: Option<(u16, u16)>,
    taken: std::collections::HashSet<u16>,
    rng: rand::rngs::StdRng,
}

impl PortPicker {
    fn new() -> Self {
        use rand::SeedableRng;
        let (low, _) = ephemeral_ports();
        PortPicker {
            range: (low > MIN_DEVNET_PORT.saturating_add(1_000)).then_some((MIN_DEVNET_PORT, low)),
            taken: std::collections::HashSet::new(),
            rng: rand::rngs::StdRng::from_entropy(),
        }
    }

    /// A free loopback port for a UDP (`udp`) or TCP listener.
    fn pick(&mut self, udp: bool) -> Result<SocketAddr> {
        use rand::Rng;
        if let Some((low, high)) = self.range {
            for _ in 0..1_000 {
                let addr = SocketAddr::from(([127, 0, 0, 1], self.rng.gen_range(low..high)));
                if self.taken.contains(&addr.port()) {
                    continue;
                }
                if bind_loopback(addr, udp).is_ok() {
                    self.taken.insert(addr.port());
                    return Ok(addr);
                }
            }
        }
        // No room below the ephemeral range (or all tried ports busy): let the kernel choose.
        let addr =
            bind_loopback(SocketAddr::from(([127, 0, 0, 1], 0)), udp).with_context(|| {
                format!(
                    "cannot bind a loopback {} port",
                    if udp { "UDP" } else { "TCP" }
                )
            })?;
        self.taken.insert(addr.port());
        Ok(addr)
    }

    /// QUIC (UDP), JSON-RPC and metrics addresses of one node.
    fn node(&mut self) -> Result<(SocketAddr, SocketAddr, SocketAddr)> {
        Ok((self.pick(true)?, self.pick(false)?, self.pick(false)?))
    }
}

/// Create the devnet directory: keys, genesis, node directories. Returns the node dirs.
pub fn create(args: &DevnetArgs, layout: &Layout) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&layout.dir)
        .with_context(|| format!("cannot create {}", layout.dir.display()))?;
    write_private(&layout.password(), DEVNET_PASSWORD)?;
    let demo_keys = ValidatorKeys::generate();
    let demo = KeyPaths::new(&layout.demo()).write(
        &demo_keys,
        DEVNET_PASSWORD,
        KdfPreset::InsecureFastForTestsOnly,
        false,
    )?;
    let n = usize::from(args.validators) + usize::from(args.standby);
    let mut all = Vec::new();
    let mut ports = PortPicker::new();
    for i in 0..n {
        let keys = ValidatorKeys::generate();
        let home = layout.node(i);
        let public = KeyPaths::new(&home.join("keys")).write(
            &keys,
            DEVNET_PASSWORD,
            KdfPreset::InsecureFastForTestsOnly,
            false,
        )?;
        let addrs = ports.node()?;
        let id = init::identity(&format!("v{i}"), addrs.0, &keys);
        all.push((home, public, id, addrs));
    }
    let mut accounts = vec![GenesisAccount {
        address: demo.account_address.to_hex(),
        balance: DEMO_BALANCE.to_string(),
    }];
    let mut validators = Vec::new();
    for (i, (_, public, id, _)) in all.iter().enumerate() {
        accounts.push(GenesisAccount {
            address: public.account_address.to_hex(),
            balance: VALIDATOR_BALANCE.to_string(),
        });
        if i < usize::from(args.validators) {
            validators.push(GenesisValidator {
                name: id.name.clone(),
                account_key: hex::encode(public.account_pubkey.as_bytes()),
                network_key: hex::encode(public.network_pubkey.as_bytes()),
                bls_key: public.bls_pubkey.to_hex(),
                pop: hex::encode(public.bls_pop.0.as_bytes()),
                network_binding: id.binding.clone(),
                stake: VALIDATOR_STAKE.to_string(),
            });
        }
    }
    let genesis = GenesisFile {
        chain_id: ChainId::MAIN.0,
        genesis_time_ms: crate::chain::now_ms(),
        epoch_length: args.epoch_length,
        min_fee: "1".to_string(),
        max_block_txs: args.max_block_txs,
        unbonding_epochs: DEVNET_UNBONDING_EPOCHS,
        slash_fraction_percent: banyan_ledger::DEFAULT_SLASH_FRACTION_PERCENT,
        min_sidechain_deposit: banyan_ledger::DEFAULT_MIN_SIDECHAIN_DEPOSIT.0.to_string(),
        accounts,
        validators,
    };
    let text = serde_json::to_string_pretty(&genesis).context("genesis to JSON")?;
    std::fs::write(layout.genesis(), text + "\n")
        .with_context(|| format!("cannot write {}", layout.genesis().display()))?;
    banyan_mainchain::Genesis::from_file(layout.genesis())
        .map_err(|e| anyhow!("the generated genesis does not validate: {e}"))?;
    let ids: Vec<Identity> = all.iter().map(|a| a.2.clone()).collect();
    let mut homes = Vec::new();
    for (home, _, id, addrs) in all {
        let peers = ids.iter().filter(|p| **p != id).cloned().collect();
        let mut cfg = init::config(
            &id.name,
            PathBuf::from("keys"),
            Some(PathBuf::from("../password")),
            PathBuf::from("../genesis.json"),
            addrs,
            peers,
        );
        cfg.consensus.base_timeout_ms = args.base_timeout_ms;
        cfg.test_chains = args.test_chains.clone();
        // A devnet is a playground on loopback: chains may be started and stopped by RPC.
        cfg.rpc.admin = true;
        NodeDir {
            home: &home,
            config: cfg,
            identity: id,
        }
        .write(false)?;
        homes.push(home);
    }
    Ok(homes)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// A validator process of the devnet.
pub struct NodeProcess {
    /// Name.
    pub name: String,
    /// Node directory.
    pub home: PathBuf,
    /// Its config.
    pub config: NodeConfig,
    /// The child.
    pub child: Option<Child>,
}

impl NodeProcess {
    /// RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.config.rpc_listen)
    }

    /// Start `banyan start --home <home>` with output to `<home>/node.log`.
    pub fn spawn(&mut self, exe: &Path) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("node.log"))
            .with_context(|| format!("cannot open {}/node.log", self.home.display()))?;
        let err = log.try_clone()?;
        let child = Command::new(exe)
            .args(["start", "--home"])
            .arg(&self.home)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        // `banyan devnet stop|restart` find the process by this file.
        let _ = std::fs::write(self.home.join(PID_FILE), child.id().to_string());
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            terminate(pid);
        }
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.home.join("node.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Send SIGTERM to `pid` (a child of ours; an already finished one is ignored).
pub fn terminate(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// Load the node processes of a devnet directory (not started).
pub fn processes(layout: &Layout) -> Result<Vec<NodeProcess>> {
    layout
        .nodes()
        .into_iter()
        .map(|home| {
            let config = NodeConfig::load(&home.join(CONFIG_FILE))?;
            Ok(NodeProcess {
                name: config.name.clone(),
                home,
                config,
                child: None,
            })
        })
        .collect()
}

/// Poll every node's status until each reports at least `height` (or time out).
pub async fn wait_for_height(
    nodes: &[NodeProcess],
    height: u64,
    timeout: Duration,
) -> Result<Vec<NodeStatus>> {
    let start = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for n in nodes {
            let client = RpcClient::new(&n.rpc_url())?;
            if let Ok(s) = client.status().await {
                statuses.push(s);
            }
        }
        let ok = statuses.len() == nodes.len()
            && statuses
                .iter()
                .all(|s| s.chains.first().is_some_and(|c| c.height >= height));
        if ok {
            return Ok(statuses);
        }
        if start.elapsed() > timeout {
            let heights: Vec<String> = statuses
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}",
                        s.name,
                        s.chains.first().map(|c| c.height).unwrap_or(0)
                    )
                })
                .collect();
            bail!(
                "the devnet did not reach height {height} within {}s (heights: {}); see the \
                 node.log files",
                timeout.as_secs(),
                heights.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Run `banyan devnet`.
pub fn run(args: DevnetArgs) -> Result<()> {
    if let Some(action) = args.action.clone() {
        return control(&args.dir, action, &mut std::io::stdout());
    }
    let layout = Layout {
        dir: args.dir.clone(),
    };
    if args.reset && layout.dir.exists() {
        std::fs::remove_dir_all(&layout.dir)
            .with_context(|| format!("cannot remove {}", layout.dir.display()))?;
    }
    let fresh = layout.nodes().is_empty();
    if fresh {
        if layout.dir.exists()
            && std::fs::read_dir(&layout.dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        {
            bail!(
                "{} exists and is not a devnet directory; pass --reset to delete it or choose \
                 another --dir",
                layout.dir.display()
            );
        }
        eprintln!(
            "creating a devnet of {} validators in {}",
            args.validators,
            layout.dir.display()
        );
        create(&args, &layout)?;
    } else {
        eprintln!(
            "restarting the devnet in {} with its data (pass --reset to start over)",
            layout.dir.display()
        );
    }
    if args.init_only {
        eprintln!("devnet directory ready: {}", layout.dir.display());
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the banyan executable")?;
    let mut nodes = processes(&layout)?;
    let staked = usize::from(args.validators).min(nodes.len());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async {
        for n in nodes.iter_mut() {
            n.spawn(&exe)?;
        }
        eprintln!(
            "started {} validator processes; waiting for the first commits",
            nodes.len()
        );
        wait_for_height(&nodes[..staked], 2, Duration::from_secs(90)).await?;
        let mut sidechains = Vec::new();
        if fresh && !args.no_demo {
            demo_transfers(&layout, &nodes[0]).await?;
            let seats = staked.clamp(1, 4) as u16;
            for _ in 0..args.sidechains {
                let chain = spawn_sidechain(&layout, &nodes[0], seats).await?;
                sidechains.push((chain, String::new()));
            }
            for chain in sidechains.iter_mut() {
                chain.1 =
                    wait_for_sidechain(&nodes[..staked], chain.0, Duration::from_secs(180)).await?;
            }
        }
        print_endpoints(&exe, &layout, &nodes, &sidechains);
        let policy = Supervision {
            exe: exe.clone(),
            staked,
            restart: !args.no_restart,
            dir: layout.dir.clone(),
        };
        supervise(&mut nodes, &policy, args.duration).await
    });
    // SIGTERM to all first, so they shut down in parallel, then wait for each.
    for n in nodes.iter() {
        if let Some(pid) = n.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()) {
            terminate(pid);
        }
    }
    for n in nodes.iter_mut() {
        n.stop(Duration::from_secs(10));
    }
    eprintln!("devnet stopped; its data stays in {}", layout.dir.display());
    result
}

/// How the devnet looks after its validator processes.
struct Supervision {
    exe: PathBuf,
    /// The first `staked` processes are the validators with stake; the rest are standby.
    staked: usize,
    /// Restart a validator that exits.
    restart: bool,
    dir: PathBuf,
}

/// First wait before restarting a validator that exited; it doubles with each restart that
/// does not stay up for [`STABLE_AFTER`], up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A restarted validator up this long gets the first backoff again next time.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// The devnet stops on its own when more validators than BFT tolerates stay down this long.
const HALT_GRACE: Duration = Duration::from_secs(60);

/// What the supervisor knows of one process.
struct Watch {
    restarts: u32,
    backoff: Duration,
    /// When it went down (None while up).
    down_since: Option<Instant>,
    /// When to start it again, if it is to be restarted.
    restart_at: Option<Instant>,
    up_since: Instant,
}

/// Keep the devnet running until Ctrl-C, SIGTERM or `duration`: a validator that exits is
/// reported with its log tail and restarted with a backoff (unless `--no-restart`); the
/// devnet stops on its own only when more validators than a BFT committee tolerates
/// (`f = (n - 1) / 3` of the `n` staked) stay down past [`HALT_GRACE`], saying why.
async fn supervise(
    nodes: &mut [NodeProcess],
    policy: &Supervision,
    duration: Option<Duration>,
) -> Result<()> {
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // SIGTERM stops the children too, as Ctrl-C does (no validator is left running).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut watch: Vec<Watch> = nodes
        .iter()
        .map(|_| Watch {
            restarts: 0,
            backoff: FIRST_BACKOFF,
            down_since: None,
            restart_at: None,
            up_since: Instant::now(),
        })
        .collect();
    let tolerated = policy.staked.saturating_sub(1) / 3;
    let mut halted_since: Option<Instant> = None;
    // `banyan devnet <action>` checks that a devnet runs here by this file.
    let _ = std::fs::write(
        policy.dir.join(DEVNET_PID_FILE),
        std::process::id().to_string(),
    );
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping the devnet");
                return Ok(());
            }
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {
                eprintln!("stopping the devnet (SIGTERM)");
                return Ok(());
            }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                return Ok(());
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for (n, w) in nodes.iter_mut().zip(watch.iter_mut()) {
                    watch_one(n, w, policy, now);
                }
                let down: Vec<&str> = nodes
                    .iter()
                    .zip(&watch)
                    .take(policy.staked)
                    .filter(|(_, w)| w.down_since.is_some())
                    .map(|(n, _)| n.name.as_str())
                    .collect();
                if down.len() > tolerated {
                    let since = *halted_since.get_or_insert_with(|| {
                        eprintln!(
                            "{} of {} validators are down ({}), more than the {tolerated} a \
                             committee of {} tolerates: the chain cannot commit until enough \
                             are back{}",
                            down.len(),
                            policy.staked,
                            down.join(", "),
                            policy.staked,
                            if policy.restart { " (restarting them)" } else { "" }
                        );
                        now
                    });
                    if now.duration_since(since) > HALT_GRACE {
                        bail!(
                            "{} of {} validators stayed down for {} s ({}): the chain has \
                             halted, so the devnet stops. Its data is intact: see the \
                             node.log files, then run `banyan devnet --dir {}` to restart it",
                            down.len(),
                            policy.staked,
                            HALT_GRACE.as_secs(),
                            down.join(", "),
                            policy.dir.display()
                        );
                    }
                } else if halted_since.take().is_some() {
                    eprintln!(
                        "{} of {} validators are up again: the chain can commit",
                        policy.staked - down.len(),
                        policy.staked
                    );
                }
            }
        }
    }
}

/// One look at one process: notice an exit, restart when due.
fn watch_one(n: &mut NodeProcess, w: &mut Watch, policy: &Supervision, now: Instant) {
    if let Some(child) = n.child.as_mut() {
        match child.try_wait() {
            Ok(Some(status)) => {
                n.child = None;
                w.down_since = Some(now);
                if n.home.join(HOLD_FILE).exists() {
                    eprintln!(
                        "validator {} stopped by `banyan devnet stop`; it stays down until \
                         `banyan devnet start {}`",
                        n.name, n.name
                    );
                    w.restart_at = None;
                    return;
                }
                if n.home.join(START_FILE).exists() {
                    // `banyan devnet restart`: started again below, at once.
                    eprintln!("validator {} stopped by `banyan devnet restart`", n.name);
                    return;
                }
                eprintln!(
                    "validator {} exited ({status}); last lines of {}:\n{}",
                    n.name,
                    n.home.join("node.log").display(),
                    n.log_tail(20)
                );
                if policy.restart {
                    if now.duration_since(w.up_since) > STABLE_AFTER {
                        w.backoff = FIRST_BACKOFF;
                    }
                    w.restart_at = Some(now + w.backoff);
                    eprintln!(
                        "restarting {} in {} s (restart {})",
                        n.name,
                        w.backoff.as_secs(),
                        w.restarts + 1
                    );
                } else {
                    eprintln!("{} stays down (--no-restart)", n.name);
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("cannot check on validator {}: {e}", n.name),
        }
        return;
    }
    let requested = n.home.join(START_FILE).exists();
    if requested {
        let _ = std::fs::remove_file(n.home.join(START_FILE));
    } else {
        let Some(at) = w.restart_at else {
            return;
        };
        if now < at || n.home.join(HOLD_FILE).exists() {
            return;
        }
    }
    w.restarts += 1;
    let _ = std::fs::write(n.home.join(RESTARTS_FILE), w.restarts.to_string());
    match n.spawn(&policy.exe) {
        Ok(()) => {
            eprintln!("validator {} restarted (restart {})", n.name, w.restarts);
            w.down_since = None;
            w.restart_at = None;
            w.up_since = now;
        }
        Err(e) => {
            eprintln!("cannot restart validator {}: {e:#}", n.name);
            w.restart_at = Some(now + w.backoff);
        }
    }
    w.backoff = (w.backoff * 2).min(MAX_BACKOFF);
}

/// The demo account as a client of `node` sees it: keys, the network it signs for and its
/// next main-chain nonce.
struct Demo {
    keys: ValidatorKeys,
    public: crate::key_dir::PublicKeys,
    client: RpcClient,
    network: banyan_core::hash::Digest,
    nonce: u64,
}

async fn demo(layout: &Layout, node: &NodeProcess) -> Result<Demo> {
    let (keys, public) = KeyPaths::new(&layout.demo())
        .open()?
        .decrypt(DEVNET_PASSWORD)?;
    let client = RpcClient::new(&node.rpc_url())?;
    let network = client
        .status()
        .await
        .map_err(|e| anyhow!("status: {e}"))?
        .network_id()?;
    let nonce = client
        .account(ChainId::MAIN, public.account_address, AssetId::NATIVE)
        .await
        .map_err(|e| anyhow!("demo account: {e}"))?
        .nonce;
    Ok(Demo {
        keys,
        public,
        client,
        network,
        nonce,
    })
}

async fn demo_transfers(layout: &Layout, node: &NodeProcess) -> Result<()> {
    let Demo {
        keys,
        public,
        client,
        network,
        nonce,
    } = demo(layout, node).await?;
    let mut last = Address::default();
    for i in 0..3u64 {
        let mut to = [0u8; 32];
        to[0] = 0xde;
        to[31] = i as u8 + 1;
        last = Address(to);
        let tx = TxBody::native_transfer(
            ChainId::MAIN,
            network,
            public.account_pubkey,
            Nonce(nonce + i),
            Amount(1),
            last,
            Amount(1_000 * (i as u128 + 1)),
        )
        .sign(&keys.account);
        let r = client
            .submit_tx(&tx)
            .await
            .map_err(|e| anyhow!("demo transfer: {e}"))?;
        eprintln!("demo transfer {} -> {}: tx {}", i + 1, last.to_hex(), r.id);
    }
    let begin = Instant::now();
    loop {
        let acct = client
            .account(ChainId::MAIN, last, AssetId::NATIVE)
            .await
            .map_err(|e| anyhow!("query: {e}"))?;
        if acct.balance != "0" {
            eprintln!(
                "committed: {} holds {} at height {}",
                last.to_hex(),
                acct.balance,
                acct.height
            );
            return Ok(());
        }
        if begin.elapsed() > Duration::from_secs(30) {
            bail!("the demo transfers did not commit within 30 s; see the node.log files");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Spawn a sidechain of `seats` seats from the demo account with the genesis's minimum deposit;
/// its id once the spawn is committed.
async fn spawn_sidechain(layout: &Layout, node: &NodeProcess, seats: u16) -> Result<ChainId> {
    let genesis = banyan_mainchain::Genesis::from_file(&node.config.genesis)
        .map_err(|e| anyhow!("genesis: {e}"))?;
    let Demo {
        keys,
        public,
        client,
        network,
        nonce,
    } = demo(layout, node).await?;
    let params = banyan_core::tx::SidechainParams {
        committee_size: seats,
        block_time_ms: 500,
        epoch_length: 100,
        deposit: genesis.params().staking.min_sidechain_deposit,
    };
    let chain = banyan_core::tx::sidechain_id(&public.account_address, Nonce(nonce));
    let tx = TxBody {
        chain: ChainId::MAIN,
        network,
        sender: public.account_pubkey,
        nonce: Nonce(nonce),
        fee: Amount(1),
        kind: banyan_core::tx::TxKind::SpawnSidechain { params },
    }
    .sign(&keys.account);
    client
        .submit_tx(&tx)
        .await
        .map_err(|e| anyhow!("spawning a sidechain: {e}"))?;
    let begin = Instant::now();
    loop {
        let listed = client
            .sidechains()
            .await
            .map_err(|e| anyhow!("listing sidechains: {e}"))?;
        if let Some(s) = listed.sidechains.iter().find(|s| s.chain == chain.0) {
            eprintln!(
                "spawned sidechain {} ({} seats, 500 ms blocks); it starts at main-chain epoch {}",
                chain.0, seats, s.activation_epoch
            );
            return Ok(chain);
        }
        if begin.elapsed() > Duration::from_secs(30) {
            bail!("the sidechain spawn did not commit within 30 s; see the node.log files");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until sidechain `chain` has committed a block on one of `nodes`, saying what it waits
/// for; the JSON-RPC address of a node hosting it.
async fn wait_for_sidechain(
    nodes: &[NodeProcess],
    chain: ChainId,
    timeout: Duration,
) -> Result<String> {
    let begin = Instant::now();
    let mut said = Instant::now();
    loop {
        for n in nodes {
            let Ok(client) = RpcClient::new(&n.rpc_url()) else {
                continue;
            };
            let Ok(status) = client.status().await else {
                continue;
            };
            if status
                .chains
                .iter()
                .any(|c| c.chain == chain.0 && c.height >= 1)
            {
                let s = client
                    .sidechain(chain)
                    .await
                    .map_err(|e| anyhow!("sidechain {}: {e}", chain.0))?;
                eprintln!(
                    "sidechain {} is running: committee of {} drawn at main-chain epoch {}",
                    chain.0,
                    s.committee.len(),
                    s.main_epoch
                );
                return Ok(n.rpc_url());
            }
        }
        if begin.elapsed() > timeout {
            bail!(
                "sidechain {} committed no block within {}s; see the node.log files",
                chain.0,
                timeout.as_secs()
            );
        }
        if said.elapsed() > Duration::from_secs(5) {
            said = Instant::now();
            eprintln!(
                "waiting for sidechain {} to start at the next main-chain epoch...",
                chain.0
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The devnet's addresses and commands to try, each runnable as printed; `sidechains` are the
/// spawned sidechains with the JSON-RPC address of a node hosting each.
fn print_endpoints(
    exe: &Path,
    layout: &Layout,
    nodes: &[NodeProcess],
    sidechains: &[(ChainId, String)],
) {
    println!(
        "devnet running ({} validators, data in {})",
        nodes.len(),
        layout.dir.display()
    );
    for n in nodes {
        println!(
            "  {}: rpc {}  metrics http://{}/metrics  log {}",
            n.name,
            n.rpc_url(),
            n.config.metrics_listen,
            n.home.join("node.log").display()
        );
    }
    let rpc = nodes.first().map(|n| n.rpc_url()).unwrap_or_default();
    let exe = exe.display();
    println!("try:");
    println!("  {exe} status --rpc {rpc}");
    println!(
        "  {exe} tx transfer --keys {} --password-file {} --to 00000000000000000000000000000000000000000000000000000000000000aa --amount 10 --rpc {rpc} --wait",
        layout.demo().display(),
        layout.password().display()
    );
    for (chain, host) in sidechains {
        println!("  {exe} sidechain status {} --rpc {host}", chain.0);
        println!(
            "  {exe} tx transfer --chain {} --keys {} --password-file {} --to 00000000000000000000000000000000000000000000000000000000000000aa --amount 10 --rpc {host} --wait",
            chain.0,
            layout.demo().display(),
            layout.password().display()
        );
    }
    println!(
        "  curl -s {rpc} -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"banyan_status\"}}'"
    );
    if let Some(n) = nodes.first() {
        println!(
            "  curl -s http://{}/metrics | grep banyan_chain_height",
            n.config.metrics_listen
        );
    }
    println!("Ctrl-C stops the devnet.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_ports_are_distinct_free_and_below_the_ephemeral_range() {
        let (low, _) = ephemeral_ports();
        let mut picker = PortPicker::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let (quic, rpc, metrics) = picker.node().expect("ports");
            for a in [quic, rpc, metrics] {
                assert!(a.ip().is_loopback());
                assert!(seen.insert(a.port()), "port {} given twice", a.port());
                if low > MIN_DEVNET_PORT + 1_000 {
                    assert!(
                        (MIN_DEVNET_PORT..low).contains(&a.port()),
                        "port {} is in the ephemeral range from {low}",
                        a.port()
                    );
                }
            }
            std::net::UdpSocket::bind(quic).expect("the QUIC port is still free");
            std::net::TcpListener::bind(rpc).expect("the RPC port is still free");
            std::net::TcpListener::bind(metrics).expect("the metrics port is still free");
        }
    }
}
