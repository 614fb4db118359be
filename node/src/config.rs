//! A node's configuration file (`config.toml`, written by `banyan init`) and the public
//! identity record other nodes list it by (`identity.json`).
//!
//! Relative paths in the file are resolved against the file's own directory, so a node
//! directory can be moved as a whole. Listen addresses default to loopback: exposing RPC or
//! metrics beyond the machine is an explicit choice.

use anyhow::{bail, Context, Result};
use banyan_core::keys::{AccountPublicKey, BlsPublicKey, BlsSignature};
use banyan_mainchain::identity::verify_binding;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Largest config or identity file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How a node is known to its peers: where to reach it and which keys it holds. The
/// `binding` is the validator (BLS) key's signature of the network (ed25519) key, so a QUIC
/// peer proves which validator it is by completing the TLS handshake with that key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Human-readable name.
    pub name: String,
    /// QUIC address (host:port).
    pub p2p: SocketAddr,
    /// ed25519 network key (hex): the node's TLS identity, also its account key.
    pub network_key: String,
    /// BLS validator key (hex).
    pub validator_key: String,
    /// BLS signature of the network key by the validator key (hex).
    pub binding: String,
}

/// An identity whose keys parsed and whose binding verified.
#[derive(Clone, Debug)]
pub struct VerifiedPeer {
    /// Name.
    pub name: String,
    /// QUIC address.
    pub addr: SocketAddr,
    /// Network key.
    pub network_key: AccountPublicKey,
    /// Validator key.
    pub validator_key: BlsPublicKey,
}

impl Identity {
    /// Parse the keys and verify the binding.
    pub fn verify(&self) -> Result<VerifiedPeer> {
        let what = || format!("peer {:?} ({})", self.name, self.p2p);
        let net: [u8; 32] = hex::decode(&self.network_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{}: network_key is not 64 hex digits", what()))?;
        let network_key = AccountPublicKey::from_bytes(&net)
            .map_err(|e| anyhow::anyhow!("{}: network_key: {e}", what()))?;
        let validator_key = hex::decode(&self.validator_key)
            .ok()
            .and_then(|b| BlsPublicKey::from_bytes(&b).ok())
            .with_context(|| format!("{}: validator_key is not a BLS public key", what()))?;
        let binding = hex::decode(&self.binding)
            .ok()
            .and_then(|b| BlsSignature::from_bytes(&b).ok())
            .with_context(|| format!("{}: binding is not a BLS signature", what()))?;
        verify_binding(&validator_key, &network_key, &binding).map_err(|e| {
            anyhow::anyhow!(
                "{}: the validator key did not sign this network key ({e}); regenerate the \
                 identity with `banyan init`",
                what()
            )
        })?;
        Ok(VerifiedPeer {
            name: self.name.clone(),
            addr: self.p2p,
            network_key,
            validator_key,
        })
    }
}

/// `[consensus]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusSection {
    /// Round timeout after a round entered by a QC, ms.
    pub base_timeout_ms: u64,
    /// Upper bound of the round timeout, ms.
    pub max_timeout_ms: u64,
    /// A proposal stamped more than this ahead of local time is refused, ms.
    pub max_clock_drift_ms: u64,
    /// A leader proposes no sooner than this after its parent block, ms (paces an idle
    /// chain; under load blocks are bigger, not more frequent).
    pub min_block_interval_ms: u64,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        ConsensusSection {
            base_timeout_ms: 1_000,
            max_timeout_ms: 6_000,
            max_clock_drift_ms: 500,
            min_block_interval_ms: 100,
        }
    }
}

/// `[mempool]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolSection {
    /// Most transactions waiting.
    pub max_txs: usize,
    /// Most transactions waiting per sender.
    pub max_per_sender: usize,
}

impl Default for MempoolSection {
    fn default() -> Self {
        MempoolSection {
            max_txs: 200_000,
            max_per_sender: 4_096,
        }
    }
}

/// `[rpc]` settings: the JSON-RPC server's limits, each as in
/// [`RpcLimits`](crate::rpc::server::RpcLimits) (the defaults are its defaults); durations in
/// ms. [`RpcSection::limits`] checks them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcSection {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Most requests in one batch.
    pub max_batch: usize,
    /// Most transactions in one `banyan_submitTxs` call.
    pub max_txs_per_call: usize,
    /// Most JSON values in one request body.
    pub max_json_values: usize,
    /// Most time to receive a request's headers (and keep an idle connection), ms.
    pub header_read_timeout_ms: u64,
    /// Most time to receive a request's body, ms.
    pub body_read_timeout_ms: u64,
    /// Most bytes of request bodies held at once, over all connections.
    pub max_buffered_body_bytes: usize,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Most connections one client (IPv4 address, IPv6 /64) holds open.
    pub max_connections_per_client: usize,
    /// Calls per second one client may sustain (each call of a batch counts).
    pub rate_per_client_per_s: u32,
    /// Calls one client may make at once above its rate.
    pub burst_per_client: u32,
    /// Clients tracked for the per-client limits.
    pub max_clients: usize,
    /// Largest response body, bytes.
    pub max_response_bytes: usize,
    /// Most requests computed at once on the blocking pool.
    pub max_blocking_jobs: usize,
    /// Serve the admin methods (`banyan_startTestChain`, `banyan_stopChain`), which start and
    /// stop chain instances. Off by default; leave it off on an RPC address others can reach.
    pub admin: bool,
}

impl Default for RpcSection {
    fn default() -> Self {
        let l = crate::rpc::server::RpcLimits::default();
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        RpcSection {
            max_body_bytes: l.max_body_bytes,
            max_batch: l.max_batch,
            max_txs_per_call: l.max_txs_per_call,
            max_json_values: l.max_json_values,
            header_read_timeout_ms: ms(l.header_read_timeout),
            body_read_timeout_ms: ms(l.body_read_timeout),
            max_buffered_body_bytes: l.max_buffered_body_bytes,
            max_connections: l.max_connections,
            max_connections_per_client: l.max_connections_per_client,
            rate_per_client_per_s: l.rate_per_client_per_s,
            burst_per_client: l.burst_per_client,
            max_clients: l.max_clients,
            max_response_bytes: l.max_response_bytes,
            max_blocking_jobs: l.max_blocking_jobs,
            admin: false,
        }
    }
}

impl RpcSection {
    /// What is wrong with these settings, if anything: the key at fault and why.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        for (name, value) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_batch", self.max_batch),
            ("max_txs_per_call", self.max_txs_per_call),
            ("max_json_values", self.max_json_values),
            ("max_buffered_body_bytes", self.max_buffered_body_bytes),
            ("max_connections", self.max_connections),
            (
                "max_connections_per_client",
                self.max_connections_per_client,
            ),
            ("max_clients", self.max_clients),
            ("max_response_bytes", self.max_response_bytes),
            ("max_blocking_jobs", self.max_blocking_jobs),
        ] {
            if value == 0 {
                return Some((name, format!("{name} must be at least 1")));
            }
        }
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            (
                "rate_per_client_per_s",
                u64::from(self.rate_per_client_per_s),
            ),
        ] {
            if value == 0 {
                return Some((name, format!("{name} must be at least 1")));
            }
        }
        if (self.burst_per_client as usize) < self.max_batch {
            return Some((
                "burst_per_client",
                format!(
                    "burst_per_client ({}) must be at least max_batch ({}), or full batches \
                     are always refused",
                    self.burst_per_client, self.max_batch
                ),
            ));
        }
        if self.max_clients < self.max_connections {
            return Some((
                "max_clients",
                format!(
                    "max_clients ({}) must be at least max_connections ({}), so a new client \
                     always finds room",
                    self.max_clients, self.max_connections
                ),
            ));
        }
        if self.max_buffered_body_bytes < self.max_body_bytes {
            return Some((
                "max_buffered_body_bytes",
                format!(
                    "max_buffered_body_bytes ({}) must be at least max_body_bytes ({})",
                    self.max_buffered_body_bytes, self.max_body_bytes
                ),
            ));
        }
        None
    }

    /// The server's limits, or what is wrong with them.
    pub fn limits(&self) -> Result<crate::rpc::server::RpcLimits> {
        use std::time::Duration;
        if let Some((_, why)) = self.problem() {
            bail!("[rpc] {why}");
        }
        Ok(crate::rpc::server::RpcLimits {
            max_body_bytes: self.max_body_bytes,
            max_batch: self.max_batch,
            max_txs_per_call: self.max_txs_per_call,
            max_json_values: self.max_json_values,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(self.body_read_timeout_ms),
            max_buffered_body_bytes: self.max_buffered_body_bytes,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            rate_per_client_per_s: self.rate_per_client_per_s,
            burst_per_client: self.burst_per_client,
            max_clients: self.max_clients,
            max_response_bytes: self.max_response_bytes,
            max_blocking_jobs: self.max_blocking_jobs,
        })
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name (logs, status).
    pub name: String,
    /// Data directory (RocksDB lives in `<data_dir>/db`).
    pub data_dir: PathBuf,
    /// Key directory (`banyan keys generate`).
    pub keys_dir: PathBuf,
    /// File holding the keystore password; without it `BANYAN_KEYSTORE_PASSWORD` is read.
    pub password_file: Option<PathBuf>,
    /// Genesis file (JSON).
    pub genesis: PathBuf,
    /// QUIC listen address.
    pub p2p_listen: SocketAddr,
    /// JSON-RPC listen address.
    pub rpc_listen: SocketAddr,
    /// Prometheus listen address.
    pub metrics_listen: SocketAddr,
    /// Worker threads for block execution (1 = serial).
    #[serde(default = "one")]
    pub execution_threads: usize,
    /// Consensus timing.
    #[serde(default)]
    pub consensus: ConsensusSection,
    /// Mempool limits.
    #[serde(default)]
    pub mempool: MempoolSection,
    /// JSON-RPC server limits.
    #[serde(default)]
    pub rpc: RpcSection,
    /// The other nodes (the identities they published).
    #[serde(default)]
    pub peers: Vec<Identity>,
    /// Chains this node runs beside the main chain, each derived from the main chain's
    /// genesis (the same validators and funded accounts, its own chain id and state): a way
    /// to run several chain instances in one node until sidechains are spawned on the main
    /// chain. Every validator of the network must list the same ids. Empty by default.
    #[serde(default)]
    pub test_chains: Vec<u32>,
    /// Also run every running sidechain this validator is not assigned to, as a read-only
    /// follower (each block checked against the committee the main chain assigned), so its
    /// state can be queried here. Off by default: a validator runs only the sidechains whose
    /// committee it sits in.
    #[serde(default)]
    pub follow_sidechains: bool,
}

/// Most test chains one node runs.
pub const MAX_TEST_CHAINS: usize = 8;

fn one() -> usize {
    1
}

/// Read a small text file with a size cap.
pub fn read_small(path: &Path) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut s = String::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut s)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    if s.len() as u64 > MAX_CONFIG_BYTES {
        bail!("{} is larger than {MAX_CONFIG_BYTES} bytes", path.display());
    }
    Ok(s)
}

/// A value of a parsed config that `banyan start` would refuse: the key (`section` is the
/// `[table]` it sits in, `None` at the top level) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueProblem {
    /// The table holding the key, if not the top level.
    pub section: Option<&'static str>,
    /// The key.
    pub key: &'static str,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl NodeConfig {
    /// Load `path`, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_small(path).with_context(|| {
            format!(
                "no node config at {}: create one with `banyan init`",
                path.display()
            )
        })?;
        let cfg = NodeConfig::parse(&text, path)
            .with_context(|| format!("{} is not a valid node config", path.display()))?;
        if let Some(p) = cfg.value_problems().into_iter().next() {
            bail!("{}: {}", path.display(), p.message);
        }
        Ok(cfg)
    }

    /// Parse the text of the config file at `path`, resolving relative paths against the
    /// file's directory. The values are not checked: see [`NodeConfig::value_problems`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, toml::de::Error> {
        let mut cfg: NodeConfig = toml::from_str(text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.data_dir, &mut cfg.keys_dir, &mut cfg.genesis] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = cfg.password_file.as_mut() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    /// The values `banyan start` refuses (the `[rpc]` limits are checked apart, by
    /// [`RpcSection::problem`]).
    pub fn value_problems(&self) -> Vec<ValueProblem> {
        let top = |key, message| ValueProblem {
            section: None,
            key,
            message,
        };
        let mut out = Vec::new();
        if self.execution_threads == 0 || self.execution_threads > 64 {
            out.push(top(
                "execution_threads",
                "execution_threads must be between 1 and 64".to_string(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &id in &self.test_chains {
            if id == 0 {
                out.push(top(
                    "test_chains",
                    "test_chains lists 0, the main chain's id; list other ids (e.g. [1])"
                        .to_string(),
                ));
            } else if !seen.insert(id) {
                out.push(top(
                    "test_chains",
                    format!("test_chains lists chain {id} twice"),
                ));
            }
        }
        if self.test_chains.len() > MAX_TEST_CHAINS {
            out.push(top(
                "test_chains",
                format!(
                    "test_chains lists {} chains; at most {MAX_TEST_CHAINS}",
                    self.test_chains.len()
                ),
            ));
        }
        out
    }

    /// Write as TOML.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).context("cannot serialise the config")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}
