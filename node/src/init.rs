//! `banyan init`: write a node directory — `config.toml`, `identity.json` (what peers list
//! this node by) and an empty `data/` — from a key directory and a genesis file.

use crate::config::{ConsensusSection, Identity, MempoolSection, NodeConfig};
use crate::key_dir::{KeyPaths, ValidatorKeys};
use anyhow::{bail, Context, Result};
use banyan_mainchain::identity::bind_network_key;
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Config file name inside a node directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Identity file name inside a node directory.
pub const IDENTITY_FILE: &str = "identity.json";

/// Arguments of `banyan init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Node directory to create (holds config.toml, identity.json and data/).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Key directory made by `banyan keys generate`.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Genesis file (JSON).
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Node name.
    #[arg(long, default_value = "node")]
    pub name: String,
    /// QUIC listen address.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub p2p: SocketAddr,
    /// JSON-RPC listen address (keep it on loopback unless a proxy guards it).
    #[arg(long, default_value = "127.0.0.1:8545")]
    pub rpc: SocketAddr,
    /// Prometheus /metrics listen address.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub metrics: SocketAddr,
    /// JSON file with the identities (identity.json) of the other nodes, as an array.
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub password: crate::cli::PasswordArgs,
    /// Rewrite config.toml and identity.json of an existing node directory (its data is kept).
    #[arg(long)]
    pub force: bool,
}

/// The identity record of a node with these keys, reachable at `p2p`.
pub fn identity(name: &str, p2p: SocketAddr, keys: &ValidatorKeys) -> Identity {
    let net = keys.network.public_key();
    Identity {
        name: name.to_string(),
        p2p,
        network_key: hex::encode(net.as_bytes()),
        validator_key: keys.bls.public_key().to_hex(),
        binding: hex::encode(bind_network_key(&keys.bls, &net).as_bytes()),
    }
}

/// Everything `init` writes, for callers that already hold the keys (`banyan devnet`).
pub struct NodeDir<'a> {
    /// Node directory.
    pub home: &'a Path,
    /// Config to write (paths as they should appear in the file).
    pub config: NodeConfig,
    /// Identity to publish.
    pub identity: Identity,
}

impl NodeDir<'_> {
    /// Write config.toml, identity.json and create data/.
    pub fn write(&self, force: bool) -> Result<()> {
        let config = self.home.join(CONFIG_FILE);
        if config.exists() && !force {
            bail!(
                "{} already exists: this directory is already a node; pass --force to rewrite \
                 its config (the data is kept) or choose another --home",
                config.display()
            );
        }
        std::fs::create_dir_all(self.home.join("data"))
            .with_context(|| format!("cannot create {}", self.home.display()))?;
        self.config.save(&config)?;
        let id = serde_json::to_string_pretty(&self.identity).context("identity to JSON")?;
        std::fs::write(self.home.join(IDENTITY_FILE), id + "\n")
            .with_context(|| format!("cannot write {}", self.home.display()))?;
        Ok(())
    }
}

/// A config for a node at `home` with the given addresses.
pub fn config(
    name: &str,
    keys_dir: PathBuf,
    password_file: Option<PathBuf>,
    genesis: PathBuf,
    addrs: (SocketAddr, SocketAddr, SocketAddr),
    peers: Vec<Identity>,
) -> NodeConfig {
    NodeConfig {
        name: name.to_string(),
        data_dir: PathBuf::from("data"),
        keys_dir,
        password_file,
        genesis,
        p2p_listen: addrs.0,
        rpc_listen: addrs.1,
        metrics_listen: addrs.2,
        execution_threads: 1,
        consensus: ConsensusSection::default(),
        mempool: MempoolSection::default(),
        rpc: crate::config::RpcSection::default(),
        peers,
        test_chains: Vec::new(),
        follow_sidechains: false,
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
}

/// Run `banyan init`.
pub fn run(args: InitArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let genesis = absolute(&args.genesis)?;
    banyan_mainchain::Genesis::from_file(&genesis)
        .map_err(|e| anyhow::anyhow!("genesis {}: {e}", genesis.display()))?;
    let keys_dir = absolute(&args.keys)?;
    let password = crate::cli::password_from(args.password.password_file.as_deref(), &keys_dir)?;
    let (keys, _) = KeyPaths::new(&keys_dir).open()?.decrypt(&password)?;
    let peers: Vec<Identity> = match &args.peers {
        Some(p) => {
            let text = crate::config::read_small(p)?;
            let list: Vec<Identity> = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON array of identities", p.display()))?;
            for i in &list {
                i.verify()?;
            }
            list
        }
        None => Vec::new(),
    };
    let me = identity(&args.name, args.p2p, &keys);
    let peers = peers
        .into_iter()
        .filter(|p| p.network_key != me.network_key)
        .collect();
    let password_file = match &args.password.password_file {
        Some(p) => Some(absolute(p)?),
        None => None,
    };
    let dir = NodeDir {
        home: &args.home,
        config: config(
            &args.name,
            keys_dir,
            password_file,
            genesis,
            (args.p2p, args.rpc, args.metrics),
            peers,
        ),
        identity: me.clone(),
    };
    dir.write(args.force)?;
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&me).context("identity to JSON")?
    )?;
    eprintln!(
        "wrote {}/{CONFIG_FILE} and {}/{IDENTITY_FILE}; give identity.json to the other \
         nodes, then run `banyan start --home {}`",
        args.home.display(),
        args.home.display(),
        args.home.display()
    );
    Ok(())
}
