//! `banyan start`: a running node. It opens RocksDB, starts the QUIC network, one
//! [`ChainInstance`] per chain, the JSON-RPC server and the metrics endpoint, and stops them
//! all cleanly on Ctrl-C or SIGTERM.

use crate::api::{
    AccountView, ApiError, BlockView, CertifiedHeaderView, ChainStatus, NodeApi, NodeStatus,
    SidechainView, SidechainsView, Submitted, TxView, ValidatorsView,
};
use crate::chain::{ChainInstance, ChainSetup};
use crate::config::{NodeConfig, VerifiedPeer};
use crate::key_dir::KeyPaths;
use crate::metrics::Metrics;
use crate::rpc::server::{serve, serve_metrics};
use anyhow::{anyhow, bail, Context, Result};
use banyan_chain::mempool::CommittedAccounts;
use banyan_chain::{ChainGenesis, Mempool, MempoolLimits};
use banyan_consensus::ReplicaConfig;
use banyan_core::ids::Epoch;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Height, Nonce};
use banyan_core::tx::{SignedTx, StateKey, TxKind};
use banyan_core::value::{SidechainRecord, SidechainStatus, StateValue};
use banyan_mainchain::assignment::AssignedCommittees;
use banyan_mainchain::{Assignments, Genesis, OwnRegistry};
use banyan_net::{Class, NetConfig, Network, PeerConfig, Receivers};
use banyan_sidechain::{MainChainCommittees, SidechainGenesis};
use banyan_store::{Store, StoreOptions};
use banyan_wire as wire;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The node's answer to queries: its chains, network and metrics.
pub struct Node {
    name: String,
    validator_id: String,
    /// The network's id (hex).
    network_id: String,
    /// The chain instances it hosts, by chain id: added and removed while it runs.
    chains: std::sync::RwLock<BTreeMap<ChainId, Arc<ChainInstance>>>,
    network: Network,
    metrics: Metrics,
    peers_configured: usize,
    /// Per peer: tokens left for block requests and when they were last refilled.
    block_requests: std::sync::Mutex<HashMap<banyan_net::PeerKey, (f64, std::time::Instant)>>,
    /// Whether the admin methods are served (`[rpc] admin`).
    admin: bool,
    /// What its chain instances are built from.
    factory: ChainFactory,
    /// The committees the main chain assigns sidechains.
    pub(crate) assignments: Arc<Assignments>,
}

/// What every chain instance of a node is built from besides its genesis: the node's keys,
/// peers, store, transport and settings. One place, used at start and when a chain is
/// started while the node runs.
struct ChainFactory {
    /// The main chain's genesis (test chains are derived from it).
    main: Genesis,
    network_id: banyan_core::hash::Digest,
    store: Arc<Store>,
    key: banyan_core::keys::BlsSecretKey,
    account: banyan_core::keys::AccountSecretKey,
    peers: Vec<VerifiedPeer>,
    consensus: crate::config::ConsensusSection,
    mempool: crate::config::MempoolSection,
    threads: usize,
    metrics: Metrics,
    network: Network,
}

impl ChainFactory {
    /// Everything an instance of the chain `genesis` starts from, its committees drawn from
    /// its own registry.
    fn setup(&self, genesis: Box<dyn ChainGenesis + Send>) -> Result<ChainSetup> {
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.setup_with(genesis, Box::new(OwnRegistry), cancel, None)
    }

    /// Everything an instance of the chain `genesis` starts from, with its committee source,
    /// the flag that stops it, and its block interval when not the node's.
    fn setup_with(
        &self,
        genesis: Box<dyn ChainGenesis + Send>,
        committees: Box<dyn banyan_chain::CommitteeSource>,
        cancel: Arc<std::sync::atomic::AtomicBool>,
        block_interval_ms: Option<u64>,
    ) -> Result<ChainSetup> {
        let params = genesis.params();
        let chain = params.chain;
        let mempool = Arc::new(Mempool::new(
            chain,
            self.network_id,
            MempoolLimits {
                max_txs: self.mempool.max_txs,
                max_per_sender: self.mempool.max_per_sender,
                min_fee: params.min_fee,
                ..MempoolLimits::default()
            },
        ));
        let replica = ReplicaConfig {
            chain,
            base_timeout_ms: self.consensus.base_timeout_ms,
            max_timeout_ms: self.consensus.max_timeout_ms,
            max_clock_drift_ms: self.consensus.max_clock_drift_ms,
            min_block_interval_ms: block_interval_ms
                .unwrap_or(self.consensus.min_block_interval_ms),
            ..ReplicaConfig::default()
        };
        Ok(ChainSetup {
            store: self.store.clone(),
            genesis,
            committees,
            key: banyan_core::keys::BlsSecretKey::from_bytes(&*self.key.to_bytes())
                .map_err(|e| anyhow!("BLS key: {e}"))?,
            reporter: banyan_core::keys::AccountSecretKey::from_bytes(&self.account.to_bytes()),
            peers: self.peers.clone(),
            replica,
            mempool,
            threads: self.threads,
            metrics: self.metrics.clone(),
            network: self.network.clone(),
            cancel,
            proofs: banyan_ledger::SharedProofs::default(),
        })
    }

    /// The setup of test chain `chain`, derived from the main chain's genesis.
    fn test_chain(&self, chain: ChainId) -> Result<ChainSetup> {
        let derived = self
            .main
            .derive_test_chain(chain)
            .map_err(|e| anyhow!("test chain {}: {e}", chain.0))?;
        self.setup(Box::new(derived))
    }
}

/// Block requests (each answered with up to [`wire::MAX_BLOCKS_PER_FRAME`] blocks or
/// [`wire::BLOCKS_FRAME_BUDGET`] bytes) served per peer per second; a burst of twice this is
/// allowed. A follower needs one request per frame of blocks.
pub const BLOCK_REQUESTS_PER_SEC: f64 = 8.0;

/// Bind a TCP listener, or say what to do when the address is taken.
pub async fn bind(addr: SocketAddr, what: &str, setting: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(
                "cannot listen on {addr} for {what}: the port is in use; stop the other process \
                 or change {setting} in config.toml"
            )
        } else {
            anyhow!("cannot listen on {addr} for {what}: {e}")
        }
    })
}

/// Run the node described by `config_path` until Ctrl-C / SIGTERM.
pub fn run(config_path: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("banyan-io")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: NodeConfig) -> Result<()> {
    let rpc_limits = cfg
        .rpc
        .limits()
        .context("the [rpc] section of the node config is invalid")?;
    let genesis = Genesis::from_file(&cfg.genesis)
        .map_err(|e| anyhow!("genesis {}: {e}", cfg.genesis.display()))?;
    let password = crate::cli::password_from(cfg.password_file.as_deref(), &cfg.keys_dir)?;
    let files = KeyPaths::new(&cfg.keys_dir).open()?;
    let (keys, public) = files.decrypt(&password)?;
    let mut peers: Vec<VerifiedPeer> = Vec::new();
    for p in &cfg.peers {
        peers.push(p.verify()?);
    }
    let db_path = cfg.data_dir.join("db");
    let store = Store::open(
        &db_path,
        &StoreOptions {
            create_if_missing: true,
            ..StoreOptions::default()
        },
    )
    .map_err(|e| anyhow!("cannot open the data dir {}: {e}", db_path.display()))?;
    let store = Arc::new(store);
    let metrics = Metrics::new();

    let mut net_cfg = NetConfig::new(
        cfg.p2p_listen,
        keys.network.to_bytes(),
        peers
            .iter()
            .map(|p| PeerConfig {
                key: *p.network_key.as_bytes(),
                addr: p.addr,
            })
            .collect(),
    );
    // Any message the consensus accepts must fit a frame (a block of the largest size).
    net_cfg.max_frame_bytes = wire::MAX_FRAME_BYTES;
    net_cfg.queue_bytes = net_cfg.queue_bytes.max(2 * wire::MAX_FRAME_BYTES);
    let (network, receivers) = Network::start(net_cfg)
        .await
        .map_err(|e| anyhow!("cannot start the QUIC network on {}: {e}", cfg.p2p_listen))?;
    let rpc_listener = bind(cfg.rpc_listen, "JSON-RPC", "rpc_listen").await?;
    let metrics_listener = bind(cfg.metrics_listen, "metrics", "metrics_listen").await?;

    let network_id = genesis.network();
    let factory = ChainFactory {
        key: banyan_core::keys::BlsSecretKey::from_bytes(&*keys.bls.to_bytes())
            .map_err(|e| anyhow!("BLS key: {e}"))?,
        account: banyan_core::keys::AccountSecretKey::from_bytes(&keys.account.to_bytes()),
        network_id,
        store: store.clone(),
        peers: peers.clone(),
        consensus: cfg.consensus.clone(),
        mempool: cfg.mempool.clone(),
        threads: cfg.execution_threads,
        metrics: metrics.clone(),
        network: network.clone(),
        main: genesis,
    };
    let node = Arc::new(Node {
        name: cfg.name.clone(),
        validator_id: public.validator_id.to_hex(),
        network_id: network_id.to_hex(),
        chains: std::sync::RwLock::new(BTreeMap::new()),
        network: network.clone(),
        metrics: metrics.clone(),
        peers_configured: peers.len(),
        block_requests: std::sync::Mutex::new(HashMap::new()),
        admin: cfg.rpc.admin,
        factory,
        assignments: Arc::new(Assignments::new(banyan_chain::ChainStore::new(
            store.clone(),
            ChainId::MAIN,
        ))),
    });
    // The main chain, then the test chains derived from its genesis.
    let mut main = node.factory.setup(Box::new(node.factory.main.clone()))?;
    // Checkpoints are verified against the committees the main chain assigned.
    main.proofs =
        banyan_ledger::SharedProofs(Arc::new(AssignedCommittees(node.assignments.clone())));
    tokio::task::block_in_place(|| node.add_chain(main))?;
    for &id in &cfg.test_chains {
        let setup = node.factory.test_chain(ChainId(id))?;
        tokio::task::block_in_place(|| node.add_chain(setup))?;
    }
    spawn_receivers(node.clone(), receivers)?;
    // Sidechains this validator is assigned to, started and stopped as the main chain says.
    let supervisor_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let supervisor = crate::sidechains::spawn_supervisor(
        node.clone(),
        node.assignments.clone(),
        node.factory.key.public_key(),
        banyan_core::keys::AccountSecretKey::from_bytes(&node.factory.account.to_bytes()),
        cfg.follow_sidechains,
        supervisor_stop.clone(),
    )?;
    {
        let node = node.clone();
        tokio::spawn(async move {
            loop {
                node.metrics
                    .peers
                    .set(node.network.connected().len() as i64);
                // Pooled transactions past their TTL leave even when nothing new arrives.
                for c in node.instances() {
                    c.mempool.evict_expired(std::time::Instant::now());
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let api: Arc<dyn NodeApi> = node.clone();
    let rpc_task = tokio::spawn(serve(
        rpc_listener,
        api,
        metrics.clone(),
        rpc_limits,
        stopped(stop_rx.clone()),
    ));
    let metrics_task = tokio::spawn(serve_metrics(
        metrics_listener,
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));
    tracing::info!(
        name = %cfg.name,
        p2p = %network.local_addr(),
        rpc = %cfg.rpc_listen,
        metrics = %cfg.metrics_listen,
        "node started"
    );
    if !json_logs() {
        eprintln!(
            "banyan node {} running: JSON-RPC http://{}  metrics http://{}/metrics  p2p {}",
            cfg.name,
            cfg.rpc_listen,
            cfg.metrics_listen,
            network.local_addr()
        );
    }

    let failed = wait_for_stop(&node).await;
    let _ = stop_tx.send(true);
    let _ = rpc_task.await;
    let _ = metrics_task.await;
    supervisor_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::task::block_in_place(|| {
        let _ = supervisor.join();
    });
    network.shutdown().await;
    tokio::task::block_in_place(|| {
        for c in node.instances() {
            node.remove_chain(c.chain);
        }
    });
    store.flush().ok();
    if let Some(why) = failed {
        bail!("{why}");
    }
    if json_logs() {
        tracing::info!(name = %cfg.name, "node stopped");
    } else {
        eprintln!("banyan node {} stopped", cfg.name);
    }
    Ok(())
}

/// Wait for Ctrl-C, SIGTERM, or a chain failing; returns the failure.
async fn wait_for_stop(node: &Node) -> Option<String> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return None,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => return None,
            _ = tick.tick() => {
                for c in node.instances() {
                    if let Some(f) = c.shared().fatal {
                        return Some(format!("chain {} failed: {f}", c.chain.0));
                    }
                    if !c.is_running() {
                        return Some(format!("chain {} stopped unexpectedly; see the log above", c.chain.0));
                    }
                }
            }
        }
    }
}

/// Each chain's share of the sync class's receive queue, in bytes (a few block frames).
pub const SYNC_SHARE_BYTES: usize = 4 * wire::BLOCKS_FRAME_BUDGET;
/// Each chain's share of the mempool class's receive queue, in bytes.
pub const MEMPOOL_SHARE_BYTES: usize = 32 << 20;

fn spawn_receivers(node: Arc<Node>, r: Receivers) -> Result<()> {
    let Receivers {
        mut consensus,
        sync,
        mempool,
    } = r;
    // Consensus frames are decoded and queued on their chain's thread at once (each chain
    // gates them per peer): one task, never waiting on other classes' work.
    let n = node.clone();
    tokio::spawn(async move {
        while let Some(inc) = consensus.recv().await {
            n.on_frame(inc.from, &inc.payload);
        }
    });
    // Block requests read RocksDB, block frames decode megabytes, gossip costs signature
    // checks: each class has its own worker thread, fed chain by chain in turn, so a busy
    // chain cannot hold the worker while another's frames wait.
    spawn_class_worker(node.clone(), sync, "sync", SYNC_SHARE_BYTES, false)?;
    spawn_class_worker(node, mempool, "mempool", MEMPOOL_SHARE_BYTES, true)?;
    Ok(())
}

/// Move a class's frames from the transport (peers in turn) to per-chain queues (chains in
/// turn), and handle them on one thread, at admission priority when `admission`.
fn spawn_class_worker(
    node: Arc<Node>,
    mut inbox: banyan_net::Inbox,
    class: &'static str,
    share_bytes: usize,
    admission: bool,
) -> Result<()> {
    let turns = Arc::new(crate::turns::ChainTurns::new(share_bytes));
    let worker_turns = turns.clone();
    let worker_node = node.clone();
    std::thread::Builder::new()
        .name(format!("{class}-frames"))
        .spawn(move || {
            if admission {
                ingest_priority();
            }
            while let Some((_, inc)) = worker_turns.pop() {
                worker_node.on_frame(inc.from, &inc.payload);
            }
        })
        .with_context(|| format!("cannot start the {class} frame thread"))?;
    let turns = crate::turns::Feeder(turns);
    tokio::spawn(async move {
        while let Some(inc) = inbox.recv().await {
            // Frames for no hosted chain (or too short to name one) are refused and counted
            // right here; only hosted chains get a queue.
            let Some(chain) = wire::chain_of(&inc.payload).filter(|c| node.instance(*c).is_some())
            else {
                node.on_frame(inc.from, &inc.payload);
                continue;
            };
            if turns.0.push(chain, inc).is_err() {
                node.metrics
                    .net_shed
                    .with_label_values(&[chain.0.to_string().as_str(), class])
                    .inc();
            }
        }
    });
    Ok(())
}

impl Node {
    fn on_frame(&self, from: banyan_net::PeerKey, payload: &[u8]) {
        let (chain, body) = match wire::decode(payload) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("dropped a malformed frame: {e}");
                self.metrics
                    .consensus_rejected
                    .with_label_values(&["none", "MalformedFrame"])
                    .inc();
                return;
            }
        };
        let Some(instance) = self.instance(chain) else {
            self.metrics
                .consensus_rejected
                .with_label_values(&["none", "UnknownChain"])
                .inc();
            return;
        };
        match body {
            wire::Body::Consensus(m) => {
                if let Err(why) = instance.deliver(from, m, payload.len()) {
                    self.metrics
                        .consensus_rejected
                        .with_label_values(&[chain.0.to_string().as_str(), why.label()])
                        .inc();
                }
            }
            wire::Body::Txs(txs) => {
                // Gossiped transactions: checked like any others, not gossiped again.
                if self.closed(chain).is_none() {
                    let _ = self.insert(&instance, &txs);
                }
            }
            wire::Body::BlocksRequest { from: lo, to: hi } => {
                self.serve_blocks(from, &instance, lo, hi)
            }
            wire::Body::Blocks(blocks) => {
                if let Err(why) = instance.deliver_blocks(from, blocks, payload.len()) {
                    self.metrics
                        .consensus_rejected
                        .with_label_values(&[chain.0.to_string().as_str(), why.label()])
                        .inc();
                }
            }
        }
    }

    /// Whether `peer` may have one more block request served now (a token bucket of
    /// [`BLOCK_REQUESTS_PER_SEC`] per peer; only configured peers reach here, so the table is
    /// bounded by the peer list).
    fn block_request_allowed(&self, peer: &banyan_net::PeerKey) -> bool {
        let Ok(mut table) = self.block_requests.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        let burst = 2.0 * BLOCK_REQUESTS_PER_SEC;
        let (tokens, last) = table.entry(*peer).or_insert((burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * BLOCK_REQUESTS_PER_SEC;
        *tokens = (*tokens + refill).min(burst);
        *last = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }

    /// Committed blocks `lo..=hi` for a follower, within the frame's limits and the peer's
    /// request budget.
    fn serve_blocks(&self, to: banyan_net::PeerKey, instance: &ChainInstance, lo: u64, hi: u64) {
        if !self.block_request_allowed(&to) {
            self.metrics
                .consensus_rejected
                .with_label_values(&[
                    instance.chain.0.to_string().as_str(),
                    "BlockRequestRateLimited",
                ])
                .inc();
            return;
        }
        let blocks = match instance.store.committed_blocks(
            lo,
            hi,
            wire::MAX_BLOCKS_PER_FRAME,
            wire::BLOCKS_FRAME_BUDGET,
        ) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(
                    chain = instance.chain.0,
                    "cannot serve blocks {lo}..={hi}: {e}"
                );
                return;
            }
        };
        if blocks.is_empty() {
            return;
        }
        if let Ok(frame) = wire::blocks_frame(instance.chain, blocks) {
            if self.network.try_send(&to, Class::Sync, frame).is_err() {
                self.metrics.net_dropped.with_label_values(&["sync"]).inc();
            }
        }
    }

    fn insert(
        &self,
        instance: &ChainInstance,
        txs: &[SignedTx],
    ) -> Vec<Result<banyan_core::hash::Digest, banyan_chain::MempoolError>> {
        // The committed state in memory when the chain has recorded it (always, once open);
        // the store otherwise. `now` is the pool's only clock: admission times for expiry
        // and the throttle's windows.
        let now = std::time::Instant::now();
        let results = match instance.mempool.committed_state() {
            Some(state) => instance.mempool.insert(txs, now, &*state),
            None => instance
                .mempool
                .insert(txs, now, &StoreAccounts(&instance.store)),
        };
        let label = instance.chain.0.to_string();
        for r in &results {
            if let Err(e) = r {
                self.metrics
                    .mempool_rejected
                    .with_label_values(&[label.as_str(), e.reason()])
                    .inc();
            }
        }
        results
    }

    /// This validator's BLS key.
    pub(crate) fn validator_key(&self) -> banyan_core::keys::BlsPublicKey {
        self.factory.key.public_key()
    }

    /// Why `chain` takes no new transactions, if it does not: a retired sidechain (what it
    /// holds settles back to the main chain from its final checkpoint).
    fn closed(&self, chain: ChainId) -> Option<String> {
        if !crate::sidechains::is_sidechain(chain) {
            return None;
        }
        match self
            .assignments
            .store()
            .state_value(&StateKey::Sidechain(chain))
        {
            Ok(StateValue::Sidechain(Some(r))) if !r.is_active() => Some(format!(
                "sidechain {} is retired and takes no new transactions; its balances settle \
                 back to the main chain from its final checkpoint (`banyan sidechain status {}`)",
                chain.0, chain.0
            )),
            _ => None,
        }
    }

    /// Put a transaction this node made itself (a checkpoint) into `instance`'s mempool and
    /// gossip it, as a submission through RPC would be.
    pub(crate) fn submit_local(&self, instance: &ChainInstance, tx: SignedTx) -> Result<()> {
        let results = self.insert(instance, std::slice::from_ref(&tx));
        match results.into_iter().next() {
            Some(Ok(_)) => {
                if let Ok(frame) = wire::txs_frame(instance.chain, std::slice::from_ref(&tx)) {
                    self.network.broadcast(Class::Mempool, frame);
                }
                Ok(())
            }
            Some(Err(e)) => Err(anyhow!("the mempool refused it: {e}")),
            None => Err(anyhow!("the mempool gave no answer")),
        }
    }

    fn chain(&self, chain: ChainId) -> Result<Arc<ChainInstance>, ApiError> {
        self.instance(chain).ok_or(ApiError::UnknownChain(chain.0))
    }

    /// Leave out (answering why) spawns asking for more seats than the main chain has
    /// validators: a committee never seats one validator twice, so such a sidechain would
    /// run with fewer members than its spawner asked for.
    fn refuse_unseatable(
        &self,
        instance: &ChainInstance,
        items: Vec<(usize, SignedTx)>,
        out: &mut [Option<Result<Submitted, ApiError>>],
    ) -> Vec<(usize, SignedTx)> {
        if instance.chain != ChainId::MAIN {
            return items;
        }
        let validators = instance.shared().status.committee_size;
        items
            .into_iter()
            .filter(|(i, tx)| match &tx.body.kind {
                TxKind::SpawnSidechain { params }
                    if usize::from(params.committee_size) > validators =>
                {
                    out[*i] = Some(Err(ApiError::Rejected(format!(
                        "committee_size {} is more than the {validators} validators of the main \
                         chain: a committee never seats one validator twice; ask for at most \
                         {validators} seats",
                        params.committee_size
                    ))));
                    false
                }
                _ => true,
            })
            .collect()
    }

    /// What the main chain records of sidechain `chain` and the committee it assigns it now.
    fn sidechain_view(
        &self,
        chain: ChainId,
        record: &SidechainRecord,
        main_epoch: Epoch,
    ) -> Result<SidechainView, ApiError> {
        let ids = |a: Option<&banyan_vrf::Assignment>| -> Vec<String> {
            a.and_then(|a| a.committee(chain))
                .map(|c| {
                    c.members()
                        .iter()
                        .map(|m| m.key.key().validator_id().to_hex())
                        .collect()
                })
                .unwrap_or_default()
        };
        let now = self.assignments.of(main_epoch).map_err(storage)?;
        let before = match main_epoch.0.checked_sub(1) {
            Some(e) if record.runs_in(e) => self.assignments.of(Epoch(e)).map_err(storage)?,
            _ => None,
        };
        let committee = ids(now.as_deref());
        let previous = ids(before.as_deref());
        Ok(SidechainView {
            chain: chain.0,
            spawner: record.spawner.to_hex(),
            deposit: record.deposit.0.to_string(),
            committee_size: record.committee_size,
            block_time_ms: record.block_time_ms.into(),
            epoch_length: record.epoch_length,
            activation_epoch: record.activation_epoch,
            status: match record.status {
                SidechainStatus::Active => "active",
                SidechainStatus::Retired { .. } => "retired",
            }
            .to_string(),
            retired_from_epoch: match record.status {
                SidechainStatus::Active => None,
                SidechainStatus::Retired { from_epoch } => Some(from_epoch),
            },
            main_epoch: main_epoch.0,
            joined: committee
                .iter()
                .filter(|m| !previous.contains(m))
                .cloned()
                .collect(),
            left: previous
                .iter()
                .filter(|m| !committee.contains(m))
                .cloned()
                .collect(),
            committee,
            hosted: self.instance(chain).map(|i| i.shared().status),
            checkpoint: {
                let c =
                    crate::checkpoints::latest(self.assignments.store(), chain).map_err(storage)?;
                (c.height.0 > 0).then(|| crate::api::CheckpointView {
                    height: c.height.0,
                    block_id: c.header.to_hex(),
                    epoch: c.epoch.0,
                    main_epoch: c.main_epoch.0,
                })
            },
            locked: if record.is_active() {
                record.deposit.0.to_string()
            } else {
                match self
                    .assignments
                    .store()
                    .state_value(&StateKey::Escrow(chain, AssetId::NATIVE))
                    .map_err(storage)?
                {
                    StateValue::Amount(a) => a.0.to_string(),
                    _ => "0".to_string(),
                }
            },
        })
    }

    /// The setup of sidechain `chain` spawned as `record`: its genesis derived from the main
    /// chain (the block its activation epoch starts from, the committee assigned to it then),
    /// its committees from the main chain's assignments, its block interval its own.
    pub(crate) fn sidechain_setup(
        &self,
        chain: ChainId,
        record: &SidechainRecord,
        assignments: &Arc<Assignments>,
    ) -> Result<ChainSetup> {
        let activation = Epoch(u64::from(record.activation_epoch));
        let main = assignments.store();
        let epoch = main.epoch_record(activation)?.ok_or_else(|| {
            anyhow!(
                "sidechain {}: main-chain epoch {activation} not reached",
                chain.0
            )
        })?;
        let base = main.block_by_id(&epoch.base)?.ok_or_else(|| {
            anyhow!(
                "sidechain {}: the main-chain block {} its activation starts from is not stored",
                chain.0,
                epoch.base
            )
        })?;
        let committee = match assignments.committee(chain, activation)? {
            Some(Some(c)) => c,
            _ => bail!(
                "sidechain {}: the main chain assigned it no committee for epoch {activation}",
                chain.0
            ),
        };
        let genesis = SidechainGenesis::derive(
            &self.factory.main.params(),
            self.factory.network_id,
            chain,
            record,
            &base.header,
            &committee,
        )
        .map_err(|e| anyhow!("sidechain {}: {e}", chain.0))?;
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = MainChainCommittees::new(
            chain,
            record.activation_epoch,
            assignments.clone(),
            cancel.clone(),
        );
        self.factory.setup_with(
            Box::new(genesis),
            Box::new(source),
            cancel,
            Some(u64::from(record.block_time_ms)),
        )
    }

    /// The instance of `chain`, if this node hosts it.
    pub(crate) fn instance(&self, chain: ChainId) -> Option<Arc<ChainInstance>> {
        let chains = match self.chains.read() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        chains.get(&chain).cloned()
    }

    /// Every hosted instance, in chain-id order.
    pub fn instances(&self) -> Vec<Arc<ChainInstance>> {
        let chains = match self.chains.read() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        chains.values().cloned().collect()
    }

    /// Start hosting a chain: open its state (writing its genesis on a fresh store) and start
    /// its thread. Frames for it are routed to it from then on; a chain already hosted is
    /// refused.
    pub fn add_chain(&self, setup: ChainSetup) -> Result<()> {
        let chain = setup.genesis.params().chain;
        if self.instance(chain).is_some() {
            bail!("chain {} is already running on this node", chain.0);
        }
        let instance = Arc::new(ChainInstance::start(setup)?);
        let mut chains = match self.chains.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        chains.insert(chain, instance);
        tracing::info!(chain = chain.0, "chain instance started");
        Ok(())
    }

    /// Stop hosting a chain: its frames are dropped from now on, its thread persists what is
    /// in flight and stops. Its data stays in the store. Whether it was hosted.
    pub fn remove_chain(&self, chain: ChainId) -> bool {
        let removed = {
            let mut chains = match self.chains.write() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            chains.remove(&chain)
        };
        match removed {
            Some(instance) => {
                instance.stop();
                tracing::info!(chain = chain.0, "chain instance stopped");
                true
            }
            None => false,
        }
    }
}

/// The committed accounts read from the store, for admission before the chain has recorded
/// its state in the mempool. A read error counts as an empty account: its transactions are
/// refused (they cannot be paid for), never admitted unchecked.
struct StoreAccounts<'a>(&'a banyan_chain::ChainStore);

impl CommittedAccounts for StoreAccounts<'_> {
    fn nonce(&self, address: &Address) -> Nonce {
        self.0.nonce(address).unwrap_or(Nonce(0))
    }

    fn balance(&self, address: &Address, asset: &AssetId) -> Amount {
        self.0.balance(address, asset).unwrap_or(Amount::ZERO)
    }
}

fn storage(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("storage: {e}"))
}

fn kind_name(k: &TxKind) -> &'static str {
    match k {
        TxKind::Transfer { .. } => "transfer",
        TxKind::Stake { .. } => "stake",
        TxKind::Unstake { .. } => "unstake",
        TxKind::SpawnSidechain { .. } => "spawn_sidechain",
        TxKind::RetireSidechain { .. } => "retire_sidechain",
        TxKind::CrossChainSend { .. } => "cross_chain_send",
        TxKind::DeliverPacket { .. } => "deliver_packet",
        TxKind::AcknowledgePacket { .. } => "acknowledge_packet",
        TxKind::TimeoutPacket { .. } => "timeout_packet",
        TxKind::ReportEquivocation { .. } => "report_equivocation",
        TxKind::ReportProposalEquivocation { .. } => "report_proposal_equivocation",
        TxKind::SubmitCheckpoint { .. } => "submit_checkpoint",
        TxKind::SettleBalance { .. } => "settle_balance",
    }
}

/// How much lower (in nice steps) the threads that admit transactions run than the rest of
/// the node.
pub const INGEST_NICE: i32 = 10;

/// Put the calling thread below the consensus thread and the network workers: under more load
/// than the node can take, signature checks for new transactions wait, not votes and blocks
/// (which would slow every round and so commit fewer transactions, not more). Done once per
/// thread, `INGEST_NICE` steps below the thread's own priority (at most 19, the lowest).
/// Only tokio blocking-pool threads call this, from the closures that admit transactions;
/// `block_in_place` (which can hand an async worker's role to a blocking-pool thread) runs
/// only at start-up, before any admission, and at shutdown.
fn ingest_priority() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    let tid = rustix::thread::gettid();
    let lowered = rustix::process::getpriority_process(Some(tid)).and_then(|nice| {
        rustix::process::setpriority_process(Some(tid), nice.saturating_add(INGEST_NICE).min(19))
    });
    if let Err(e) = lowered {
        tracing::debug!("cannot lower the priority of an admission thread: {e}");
    }
}

impl NodeApi for Node {
    fn submit(&self, txs: Vec<SignedTx>) -> Vec<Result<Submitted, ApiError>> {
        ingest_priority();
        let mut out: Vec<Option<Result<Submitted, ApiError>>> = vec![None; txs.len()];
        let mut by_chain: BTreeMap<ChainId, Vec<(usize, SignedTx)>> = BTreeMap::new();
        for (i, tx) in txs.into_iter().enumerate() {
            by_chain.entry(tx.body.chain).or_default().push((i, tx));
        }
        for (chain, items) in by_chain {
            let Ok(instance) = self.chain(chain) else {
                for (i, _) in items {
                    out[i] = Some(Err(ApiError::UnknownChain(chain.0)));
                }
                continue;
            };
            if let Some(why) = self.closed(chain) {
                for (i, _) in items {
                    out[i] = Some(Err(ApiError::Rejected(why.clone())));
                }
                continue;
            }
            let items = self.refuse_unseatable(&instance, items, &mut out);
            let (idx, txs): (Vec<usize>, Vec<SignedTx>) = items.into_iter().unzip();
            let results = self.insert(&instance, &txs);
            let mut accepted = Vec::new();
            for ((i, tx), r) in idx.into_iter().zip(txs).zip(results) {
                out[i] = Some(match r {
                    Ok(id) => {
                        accepted.push(tx);
                        Ok(Submitted { id: id.to_hex() })
                    }
                    Err(e) => Err(ApiError::Rejected(e.to_string())),
                });
            }
            for chunk in accepted.chunks(wire::MAX_GOSSIP_TXS) {
                if let Ok(frame) = wire::txs_frame(chain, chunk) {
                    self.network.broadcast(Class::Mempool, frame);
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ApiError::Unavailable("not processed".into()))))
            .collect()
    }

    fn account(
        &self,
        chain: ChainId,
        address: Address,
        asset: AssetId,
    ) -> Result<AccountView, ApiError> {
        let c = self.chain(chain)?;
        let height = c.shared().status.height;
        let balance = c.store.balance(&address, &asset).map_err(storage)?;
        let nonce = c.store.nonce(&address).map_err(storage)?;
        Ok(AccountView {
            chain: chain.0,
            address: address.to_hex(),
            asset: hex::encode(asset.0),
            balance: balance.0.to_string(),
            nonce: nonce.0,
            height,
        })
    }

    fn block(&self, chain: ChainId, height: Option<u64>) -> Result<BlockView, ApiError> {
        let c = self.chain(chain)?;
        let h = height.unwrap_or_else(|| c.shared().status.height);
        let block = c
            .store
            .block_by_height(Height(h))
            .map_err(storage)?
            .ok_or_else(|| ApiError::NotFound(format!("no committed block at height {h}")))?;
        let receipts = c
            .store
            .receipts(Height(h))
            .map_err(storage)?
            .unwrap_or_default();
        let hd = &block.header;
        Ok(BlockView {
            chain: chain.0,
            height: hd.height.0,
            id: hd.id().to_hex(),
            parent: hd.parent.to_hex(),
            epoch: hd.epoch.0,
            round: hd.round.0,
            state_root: hd.state_root.to_hex(),
            tx_root: hd.tx_root.to_hex(),
            proposer: hd.proposer.to_hex(),
            timestamp_ms: hd.timestamp_ms,
            txs: block
                .txs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let r = receipts.get(i);
                    TxView {
                        id: t.id().to_hex(),
                        sender: t.body.sender.address().to_hex(),
                        nonce: t.body.nonce.0,
                        fee: t.body.fee.0.to_string(),
                        kind: kind_name(&t.body.kind).to_string(),
                        applied: r.is_some_and(|r| r.applied),
                        failure: r.and_then(|r| r.failure.clone()),
                    }
                })
                .collect(),
        })
    }

    fn certified_header(
        &self,
        chain: ChainId,
        height: Option<u64>,
    ) -> Result<CertifiedHeaderView, ApiError> {
        let c = self.chain(chain)?;
        // Each commit stores the proof of its last block, so the tip has one (unless a crash
        // lost it, or the node followed the chain from epoch proofs).
        let tip = c.shared().status.height;
        let wanted = height.unwrap_or(tip);
        let proof = match c.store.certified_header(Height(wanted)) {
            Ok(p) => p,
            Err(banyan_chain::ChainError::Invalid(why)) => {
                return Err(ApiError::NotFound(why));
            }
            Err(e) => return Err(storage(e)),
        };
        let proof = proof.ok_or_else(|| {
            ApiError::NotFound(format!(
                "no commit proof for height {wanted} (committed up to {tip}; genesis has none, \
                 and a block without its own proof is proven by the next one stored)"
            ))
        })?;
        let header = proof
            .header()
            .ok_or_else(|| ApiError::Unavailable("a stored commit proof has no header".into()))?;
        Ok(CertifiedHeaderView {
            chain: chain.0,
            height: header.height.0,
            id: header.id().to_hex(),
            epoch: proof.epoch().0,
            headers: proof.headers.len(),
            signers: proof.commit_qc.signers.signers().collect(),
            proof: hex::encode(banyan_core::codec::encode(&proof)),
        })
    }

    fn validators(&self, chain: ChainId) -> Result<ValidatorsView, ApiError> {
        let c = self.chain(chain)?;
        let s = c.shared();
        let mut committee = s.committee.clone();
        for v in committee.iter_mut() {
            if let Some(r) = s.registry.iter().find(|r| r.validator_id == v.validator_id) {
                v.address = r.address.clone();
            }
        }
        Ok(ValidatorsView {
            chain: chain.0,
            epoch: s.status.epoch,
            committee,
            registry: s.registry,
        })
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            name: self.name.clone(),
            validator_id: self.validator_id.clone(),
            network: self.network_id.clone(),
            peers_connected: self.network.connected().len(),
            peers_configured: self.peers_configured,
            chains: self.instances().iter().map(|c| c.shared().status).collect(),
        }
    }

    fn sidechains(&self) -> Result<SidechainsView, ApiError> {
        let main = self.chain(ChainId::MAIN)?;
        let height = main.shared().status.height;
        let main_epoch = self
            .assignments
            .latest_epoch()
            .map_err(storage)?
            .unwrap_or(Epoch(0));
        let records = main.store.sidechains().map_err(storage)?;
        let mut sidechains = Vec::with_capacity(records.len());
        for (chain, r) in &records {
            sidechains.push(self.sidechain_view(*chain, r, main_epoch)?);
        }
        Ok(SidechainsView { height, sidechains })
    }

    fn sidechain(&self, chain: ChainId) -> Result<SidechainView, ApiError> {
        let main = self.chain(ChainId::MAIN)?;
        let main_epoch = self
            .assignments
            .latest_epoch()
            .map_err(storage)?
            .unwrap_or(Epoch(0));
        match main
            .store
            .state_value(&banyan_core::tx::StateKey::Sidechain(chain))
            .map_err(storage)?
        {
            banyan_core::value::StateValue::Sidechain(Some(record)) => {
                self.sidechain_view(chain, &record, main_epoch)
            }
            _ => Err(ApiError::NotFound(format!(
                "no sidechain {} was spawned on the main chain; `banyan sidechain list` shows \
                 those that were",
                chain.0
            ))),
        }
    }

    fn start_test_chain(&self, chain: ChainId) -> Result<ChainStatus, ApiError> {
        self.admin_allowed()?;
        if chain == ChainId::MAIN {
            return Err(ApiError::InvalidParams(
                "chain 0 is the main chain; a test chain has another id".into(),
            ));
        }
        if self.instance(chain).is_some() {
            return Err(ApiError::Rejected(format!(
                "chain {} is already running on this node",
                chain.0
            )));
        }
        let setup = self
            .factory
            .test_chain(chain)
            .map_err(|e| ApiError::InvalidParams(format!("{e:#}")))?;
        self.add_chain(setup)
            .map_err(|e| ApiError::Unavailable(format!("cannot start chain {}: {e:#}", chain.0)))?;
        self.instance(chain)
            .map(|c| c.shared().status)
            .ok_or_else(|| ApiError::Unavailable(format!("chain {} stopped at once", chain.0)))
    }

    fn stop_chain(&self, chain: ChainId) -> Result<(), ApiError> {
        self.admin_allowed()?;
        if chain == ChainId::MAIN {
            return Err(ApiError::InvalidParams(
                "the main chain stops with the node: stop the node instead".into(),
            ));
        }
        if self.remove_chain(chain) {
            Ok(())
        } else {
            Err(ApiError::UnknownChain(chain.0))
        }
    }
}

impl Node {
    fn admin_allowed(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "admin methods are off on this node; set `admin = true` in the [rpc] section \
                 of its config.toml (only where the RPC address is not reachable by others)"
                    .into(),
            ))
        }
    }
}

/// Whether the log is JSON lines ([`init_logging`] with [`LogFormat::Json`]), so that
/// nothing else is written to standard error.
///
/// [`LogFormat::Json`]: crate::cli::LogFormat::Json
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether standard error carries JSON log lines only.
pub fn json_logs() -> bool {
    JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Log to standard error through `tracing`; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: crate::cli::LogFormat) {
    JSON_LOGS.store(
        format == crate::cli::LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests run several nodes in one process) keeps the first.
    let _ = match format {
        crate::cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        crate::cli::LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
