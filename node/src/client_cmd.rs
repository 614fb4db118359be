//! Commands that talk to a running node over JSON-RPC:
//!
//! ```text
//! banyan status                                                    [--rpc URL] [--json]
//! banyan tx transfer --keys DIR --to ADDRESS --amount N [--fee F] [--nonce N] [--chain C]
//!                    [--asset HEX] [--password-file FILE] [--wait] [--rpc URL] [--json]
//! banyan query balance ADDRESS [--asset HEX] [--chain C]          [--rpc URL] [--json]
//! banyan query block [HEIGHT] [--chain C]                          [--rpc URL] [--json]
//! banyan query validators [--chain C]                              [--rpc URL] [--json]
//! banyan validator stake   --keys DIR --amount N [--fee F] [--nonce N] [--password-file FILE] [--wait]
//! banyan validator unstake --keys DIR --amount N [--fee F] [--nonce N] [--password-file FILE] [--wait]
//! banyan validator report-equivocation --keys DIR --evidence FILE [--offender ADDRESS]
//!                    [--fee F] [--nonce N] [--password-file FILE] [--wait]
//! ```
//!
//! The node's URL is `--rpc`, else the `BANYAN_RPC` environment variable, else
//! `http://127.0.0.1:8545`.

use crate::api::AccountView;
use crate::cli::{read_password, PasswordArgs};
use crate::key_dir::{KeyPaths, PublicKeys, ValidatorKeys};
use crate::rpc::client::{BlockingRpcClient, DEFAULT_RPC_URL, RPC_URL_ENV};
use anyhow::{anyhow, bail, Context, Result};
use banyan_core::certificate::VoteData;
use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Round};
use banyan_core::keys::{BlsPublicKey, BlsSignature};
use banyan_core::tx::{
    sidechain_id, Equivocation, ProposalEquivocation, SidechainParams, SignedProposal, SignedVote,
    TxBody, TxKind, VoteEquivocation,
};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long `--wait` waits for the transaction to commit.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `--wait` polls the account's nonce.
pub const WAIT_POLL: Duration = Duration::from_millis(250);

/// Where the node's RPC is.
#[derive(Debug, Args)]
pub struct RpcArgs {
    /// URL of the node's JSON-RPC server. Default: the BANYAN_RPC environment variable, else
    /// http://127.0.0.1:8545.
    #[arg(long, value_name = "URL")]
    pub rpc: Option<String>,
}

impl RpcArgs {
    /// The URL to use: `--rpc`, else `BANYAN_RPC`, else [`DEFAULT_RPC_URL`].
    pub fn url(&self) -> String {
        resolve_rpc_url(self.rpc.as_deref())
    }

    fn connect(&self) -> Result<BlockingRpcClient> {
        Ok(BlockingRpcClient::new(&self.url())?)
    }
}

/// `flag`, else the `BANYAN_RPC` environment variable (when set and not empty), else
/// [`DEFAULT_RPC_URL`].
pub fn resolve_rpc_url(flag: Option<&str>) -> String {
    if let Some(url) = flag {
        return url.to_string();
    }
    match std::env::var(RPC_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => DEFAULT_RPC_URL.to_string(),
    }
}

/// Arguments of `banyan status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `banyan chain ...`
#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Start hosting a test chain: a chain derived from the main chain's genesis (same
    /// validators and accounts, its own id and state). It resumes from its stored state if
    /// it ran on this node before. Start it on every validator for it to commit.
    #[command(after_help = "Examples:
  banyan chain start 1 --rpc http://127.0.0.1:8545")]
    Start(ChainArgs),
    /// Stop hosting a chain (not the main chain); its data stays in the node's store.
    #[command(after_help = "Examples:
  banyan chain stop 1 --rpc http://127.0.0.1:8545")]
    Stop(ChainArgs),
}

/// Arguments of `banyan chain start|stop`.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The chain id (not 0, the main chain).
    #[arg(value_name = "CHAIN")]
    pub chain: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
}

/// `banyan chain ...`.
pub fn chain(cmd: ChainCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        ChainCommand::Start(args) => {
            let client = args.rpc.connect()?;
            let status = client.start_test_chain(ChainId(args.chain))?;
            writeln!(
                out,
                "chain {} started at height {} (block {})",
                status.chain, status.height, status.block_id
            )?;
        }
        ChainCommand::Stop(args) => {
            let client = args.rpc.connect()?;
            client.stop_chain(ChainId(args.chain))?;
            writeln!(
                out,
                "chain {} stopped; its data stays in the store",
                args.chain
            )?;
        }
    }
    Ok(())
}

/// `banyan tx ...`
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Send coins (or another asset) from the account key of a key directory.
    ///
    /// Signs a transfer with DIR/account.ed25519.json, submits it and prints its id. The nonce
    /// defaults to the account's committed nonce; pass --nonce when earlier transactions of the
    /// account are still pending.
    #[command(after_help = "Examples:
  banyan tx transfer --to ADDRESS --amount 1000 --keys devnet/demo \\
      --password-file devnet/password --wait
  banyan tx transfer --to ADDRESS --amount 5 --chain 2147483905 --keys devnet/demo \\
      --password-file devnet/password --json")]
    Transfer(TransferArgs),
}

/// Options shared by the commands that sign and submit a transaction.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Key directory holding the signing account key (from `banyan keys generate`).
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Fee in native coins.
    #[arg(long, value_name = "F", default_value_t = 1)]
    pub fee: u128,
    /// Nonce to use. Default: the account's committed nonce, read from the node.
    #[arg(long, value_name = "N")]
    pub nonce: Option<u64>,
    /// Wait (at most 30 s) until the transaction is committed, i.e. the account's nonce moves
    /// past it.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub password: PasswordArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `banyan tx transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Recipient address (64 hex digits).
    #[arg(long, value_name = "ADDRESS")]
    pub to: String,
    /// Amount to send, in the asset's smallest unit.
    #[arg(long, value_name = "N")]
    pub amount: u128,
    /// Asset id (64 hex digits). Default: the native coin.
    #[arg(long, value_name = "HEX")]
    pub asset: Option<String>,
    /// Chain to send on (0 is the main chain).
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub chain: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
}

/// `banyan query ...`
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Print an account's balance and next nonce.
    #[command(after_help = "Examples:
  banyan query balance ADDRESS --rpc http://127.0.0.1:8545
  banyan query balance ADDRESS --chain 2147483905 --json")]
    Balance(BalanceArgs),
    /// Print a committed block (the latest without HEIGHT).
    #[command(after_help = "Examples:
  banyan query block
  banyan query block 42 --chain 0 --json")]
    Block(BlockArgs),
    /// Print a committed block's commit proof: its header and descendants up to the block a
    /// quorum of the committee certified (what a light client checks).
    #[command(after_help = "Examples:
  banyan query certified-header 42 --json")]
    CertifiedHeader(BlockArgs),
    /// Print the current committee and the validator registry.
    #[command(after_help = "Examples:
  banyan query validators --rpc http://127.0.0.1:8545
  banyan query validators --json")]
    Validators(ValidatorsArgs),
}

/// Arguments of `banyan query balance`.
#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// Account address (64 hex digits).
    #[arg(value_name = "ADDRESS")]
    pub address: String,
    /// Asset id (64 hex digits). Default: the native coin.
    #[arg(long, value_name = "HEX")]
    pub asset: Option<String>,
    /// Chain (0 is the main chain).
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub chain: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
    /// Print the account as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `banyan query block`.
#[derive(Debug, Args)]
pub struct BlockArgs {
    /// Height of the block. Default: the latest committed block.
    #[arg(value_name = "HEIGHT")]
    pub height: Option<u64>,
    /// Chain (0 is the main chain).
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub chain: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
    /// Print the block as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `banyan query validators`.
#[derive(Debug, Args)]
pub struct ValidatorsArgs {
    /// Chain (0 is the main chain).
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub chain: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
    /// Print the validator set as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `banyan validator ...`
#[derive(Debug, Subcommand)]
pub enum ValidatorCommand {
    /// Lock stake to join the validator set at the next epoch.
    ///
    /// Sends a stake transaction on the main chain carrying the BLS public key and the proof of
    /// possession of DIR/validator.bls.pop.json, signed by the directory's account key.
    #[command(after_help = "Examples:
  banyan validator stake --amount 1000000 --keys devnet/v4/keys \\
      --password-file devnet/password --wait")]
    Stake(StakeArgs),
    /// Withdraw stake; the validator leaves the set at the next epoch when its stake reaches
    /// zero. The coins are paid after the chain's unbonding period (`unbonding_epochs` in the
    /// genesis), and stay slashable until then.
    #[command(after_help = "Examples:
  banyan validator unstake --amount 1000000 --keys devnet/v4/keys \\
      --password-file devnet/password --wait")]
    Unstake(StakeArgs),
    /// Report a validator that signed two conflicting votes or proposals (same chain, epoch
    /// and round, different blocks): its stake and unbonding coins are slashed and its key
    /// jailed.
    ///
    /// FILE is JSON: `{"validator_key": HEX, "offender": ADDRESS (optional), "votes":
    /// [VOTE, VOTE]}` with each VOTE `{"chain", "epoch", "round", "height", "block": HEX,
    /// "signature": HEX}`, or `"proposals": [PROPOSAL, PROPOSAL]` with each PROPOSAL
    /// `{"chain", "epoch", "round", "block": HEX, "signature": HEX}` in place of `votes`. Without an offender, the account staking with the key is looked up
    /// on the node. The directory's account sends the report and pays its fee.
    #[command(after_help = "Examples:
  banyan validator report-equivocation --evidence evidence.json --keys devnet/demo \\
      --password-file devnet/password --wait")]
    ReportEquivocation(ReportArgs),
}

/// Arguments of `banyan validator report-equivocation`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The evidence file (JSON, see the command's help).
    #[arg(long, value_name = "FILE")]
    pub evidence: PathBuf,
    /// The account whose stake backs the key (default: the file's `offender`, else looked
    /// up in the node's validator registry).
    #[arg(long, value_name = "ADDRESS")]
    pub offender: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
}

/// Largest evidence file read.
pub const MAX_EVIDENCE_FILE_BYTES: u64 = 64 << 10;

/// One signed vote in an evidence file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteJson {
    /// Chain id.
    pub chain: u32,
    /// Epoch.
    pub epoch: u64,
    /// Round.
    pub round: u64,
    /// Height of the block voted for.
    pub height: u64,
    /// Id of the block voted for (64 hex digits).
    pub block: String,
    /// BLS signature of the vote's signing message (192 hex digits).
    pub signature: String,
}

/// One signed proposal in an evidence file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalJson {
    /// Chain id.
    pub chain: u32,
    /// Epoch.
    pub epoch: u64,
    /// Round.
    pub round: u64,
    /// Id of the proposed block (64 hex digits).
    pub block: String,
    /// BLS signature of the proposal's signing message (192 hex digits).
    pub signature: String,
}

/// An evidence file: two conflicting votes, or two conflicting proposals, of one validator
/// key (exactly one of `votes` and `proposals`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceFile {
    /// The BLS key that signed both messages (96 hex digits).
    pub validator_key: String,
    /// The account whose stake backs the key, if known (64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offender: Option<String>,
    /// Two votes of one slot for different blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<[VoteJson; 2]>,
    /// Two proposals of one slot for different blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposals: Option<[ProposalJson; 2]>,
}

/// Evidence read from a file, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileEvidence {
    /// A double vote.
    Votes(VoteEquivocation),
    /// A double proposal.
    Proposals(ProposalEquivocation),
}

impl FileEvidence {
    /// The key that signed both messages.
    pub fn validator_key(&self) -> &BlsPublicKey {
        match self {
            FileEvidence::Votes(e) => e.signer_key(),
            FileEvidence::Proposals(e) => e.signer_key(),
        }
    }

    /// The report of this evidence against `offender`.
    pub fn report(self, offender: Address) -> TxKind {
        match self {
            FileEvidence::Votes(e) => TxKind::ReportEquivocation {
                offender,
                evidence: Box::new(e),
            },
            FileEvidence::Proposals(e) => TxKind::ReportProposalEquivocation {
                offender,
                evidence: Box::new(e),
            },
        }
    }
}

fn hex_digest(what: &str, s: &str) -> Result<Digest> {
    Digest::from_hex(s).with_context(|| format!("{what} is not 64 hex digits"))
}

fn hex_signature(what: &str, s: &str) -> Result<BlsSignature> {
    let bytes = hex::decode(s.trim().strip_prefix("0x").unwrap_or(s.trim()))
        .with_context(|| format!("{what} is not hex"))?;
    BlsSignature::from_bytes(&bytes).with_context(|| what.to_string())
}

impl EvidenceFile {
    /// The file of a double vote (against `offender`, when known).
    pub fn of(evidence: &VoteEquivocation, offender: Option<Address>) -> Self {
        let vote = |v: &SignedVote| VoteJson {
            chain: v.data.chain.0,
            epoch: v.data.epoch.0,
            round: v.data.round.0,
            height: v.data.height.0,
            block: v.data.block.to_hex(),
            signature: hex::encode(v.signature.as_bytes()),
        };
        EvidenceFile {
            validator_key: evidence.validator_key.to_hex(),
            offender: offender.map(|a| a.to_hex()),
            votes: Some([vote(&evidence.first), vote(&evidence.second)]),
            proposals: None,
        }
    }

    /// The file of a double proposal (against `offender`, when known).
    pub fn of_proposals(evidence: &ProposalEquivocation, offender: Option<Address>) -> Self {
        let proposal = |p: &SignedProposal| ProposalJson {
            chain: p.chain.0,
            epoch: p.epoch.0,
            round: p.round.0,
            block: p.block.to_hex(),
            signature: hex::encode(p.signature.as_bytes()),
        };
        EvidenceFile {
            validator_key: evidence.validator_key.to_hex(),
            offender: offender.map(|a| a.to_hex()),
            votes: None,
            proposals: Some([proposal(&evidence.first), proposal(&evidence.second)]),
        }
    }

    /// The evidence, parsed and checked (both signatures, one slot, two blocks), so that a
    /// bad file is refused here rather than by the node.
    pub fn evidence(&self) -> Result<FileEvidence> {
        let key = hex::decode(
            self.validator_key
                .trim()
                .strip_prefix("0x")
                .unwrap_or(self.validator_key.trim()),
        )
        .context("validator_key is not hex")?;
        let validator_key = BlsPublicKey::from_bytes(&key).context("validator_key")?;
        let evidence = match (&self.votes, &self.proposals) {
            (Some(votes), None) => {
                let vote = |i: usize, v: &VoteJson| -> Result<SignedVote> {
                    Ok(SignedVote {
                        data: VoteData {
                            chain: ChainId(v.chain),
                            epoch: Epoch(v.epoch),
                            round: Round(v.round),
                            height: Height(v.height),
                            block: hex_digest(&format!("votes[{i}].block"), &v.block)?,
                        },
                        signature: hex_signature(&format!("votes[{i}].signature"), &v.signature)?,
                    })
                };
                let e = VoteEquivocation {
                    validator_key,
                    first: vote(0, &votes[0])?,
                    second: vote(1, &votes[1])?,
                };
                e.verify().context("the evidence proves no equivocation")?;
                FileEvidence::Votes(e)
            }
            (None, Some(proposals)) => {
                let proposal = |i: usize, p: &ProposalJson| -> Result<SignedProposal> {
                    Ok(SignedProposal {
                        chain: ChainId(p.chain),
                        epoch: Epoch(p.epoch),
                        round: Round(p.round),
                        block: hex_digest(&format!("proposals[{i}].block"), &p.block)?,
                        signature: hex_signature(
                            &format!("proposals[{i}].signature"),
                            &p.signature,
                        )?,
                    })
                };
                let e = ProposalEquivocation {
                    validator_key,
                    first: proposal(0, &proposals[0])?,
                    second: proposal(1, &proposals[1])?,
                };
                e.verify().context("the evidence proves no equivocation")?;
                FileEvidence::Proposals(e)
            }
            _ => bail!(
                "an evidence file holds exactly one of `votes` (two votes) and `proposals` \
                 (two proposals)"
            ),
        };
        Ok(evidence)
    }

    /// Read and parse `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let len = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if len > MAX_EVIDENCE_FILE_BYTES {
            bail!(
                "{} is {len} bytes, more than an evidence file may be ({MAX_EVIDENCE_FILE_BYTES})",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not an evidence file", path.display()))
    }
}

/// Arguments of `banyan validator stake|unstake`.
#[derive(Debug, Args)]
pub struct StakeArgs {
    /// Stake to add or withdraw, in native coins.
    #[arg(long, value_name = "N")]
    pub amount: u128,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
}

fn parse_address(s: &str, what: &str) -> Result<Address> {
    Address::from_hex(s.trim()).with_context(|| {
        format!("{what} `{s}` is not an address: expected 64 hex digits (32 bytes)")
    })
}

fn parse_asset(s: Option<&str>) -> Result<AssetId> {
    let Some(s) = s else {
        return Ok(AssetId::NATIVE);
    };
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim().strip_prefix("0x").unwrap_or(s.trim()), &mut out)
        .with_context(|| format!("asset `{s}` is not an asset id: expected 64 hex digits"))?;
    Ok(AssetId(out))
}

fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// `banyan status`.
pub fn status(args: StatusArgs, out: &mut dyn Write) -> Result<()> {
    let client = args.rpc.connect()?;
    let status = client.status()?;
    if args.json {
        return print_json(out, &status);
    }
    writeln!(
        out,
        "node:         {} (banyan {})",
        status.name, status.version
    )?;
    writeln!(out, "validator id: {}", status.validator_id)?;
    writeln!(out, "network:      {}", status.network)?;
    writeln!(
        out,
        "peers:        {} connected of {} configured",
        status.peers_connected, status.peers_configured
    )?;
    for c in &status.chains {
        let member = match c.committee_index {
            Some(i) => format!("member #{i} of {}", c.committee_size),
            None => format!("not in the committee of {}", c.committee_size),
        };
        writeln!(
            out,
            "chain {}: height {} epoch {} round {}, {member}, {} txs pending, block {}",
            c.chain, c.height, c.epoch, c.round, c.mempool_txs, c.block_id
        )?;
    }
    Ok(())
}

/// `banyan query ...`.
pub fn query(cmd: QueryCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        QueryCommand::Balance(args) => {
            let address = parse_address(&args.address, "ADDRESS")?;
            let asset = parse_asset(args.asset.as_deref())?;
            let client = args.rpc.connect()?;
            let account = client.account(ChainId(args.chain), address, asset)?;
            if args.json {
                return print_json(out, &account);
            }
            writeln!(out, "balance: {}", account.balance)?;
            writeln!(out, "nonce:   {}", account.nonce)?;
            writeln!(
                out,
                "(chain {}, asset {}, at height {})",
                account.chain, account.asset, account.height
            )?;
        }
        QueryCommand::Block(args) => {
            let client = args.rpc.connect()?;
            let block = client.block_on(ChainId(args.chain), args.height)?;
            if args.json {
                return print_json(out, &block);
            }
            writeln!(
                out,
                "chain {} block {} ({})",
                block.chain, block.height, block.id
            )?;
            writeln!(out, "parent:     {}", block.parent)?;
            writeln!(out, "epoch:      {} round {}", block.epoch, block.round)?;
            writeln!(out, "proposer:   {}", block.proposer)?;
            writeln!(out, "timestamp:  {} ms", block.timestamp_ms)?;
            writeln!(out, "state root: {}", block.state_root)?;
            writeln!(out, "tx root:    {}", block.tx_root)?;
            writeln!(out, "{} transactions", block.txs.len())?;
            for tx in &block.txs {
                let outcome = match (&tx.applied, &tx.failure) {
                    (true, _) => "applied".to_string(),
                    (false, Some(why)) => format!("failed: {why}"),
                    (false, None) => "failed".to_string(),
                };
                writeln!(
                    out,
                    "  {} {} from {} nonce {} fee {}: {outcome}",
                    tx.id, tx.kind, tx.sender, tx.nonce, tx.fee
                )?;
            }
        }
        QueryCommand::CertifiedHeader(args) => {
            let client = args.rpc.connect()?;
            let view = client.certified_header_on(ChainId(args.chain), args.height)?;
            if args.json {
                return print_json(out, &view);
            }
            writeln!(
                out,
                "chain {} block {} ({}), epoch {}",
                view.chain, view.height, view.id, view.epoch
            )?;
            writeln!(
                out,
                "committed: {} header(s) up to the certified block, signed by members {:?}",
                view.headers, view.signers
            )?;
            writeln!(out, "proof (hex): {}", view.proof)?;
        }
        QueryCommand::Validators(args) => {
            let client = args.rpc.connect()?;
            let set = client.validators_on(ChainId(args.chain))?;
            if args.json {
                return print_json(out, &set);
            }
            writeln!(
                out,
                "chain {} epoch {}: committee of {}",
                set.chain,
                set.epoch,
                set.committee.len()
            )?;
            for v in &set.committee {
                writeln!(
                    out,
                    "  #{} {} stake {} (account {})",
                    v.committee_index
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "-".into()),
                    v.validator_id,
                    v.stake,
                    v.address
                )?;
            }
            writeln!(out, "registry (next epoch): {}", set.registry.len())?;
            for v in &set.registry {
                writeln!(
                    out,
                    "  {} stake {} (account {})",
                    v.validator_id, v.stake, v.address
                )?;
            }
        }
    }
    Ok(())
}

/// `banyan tx ...`.
pub fn tx(cmd: TxCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        TxCommand::Transfer(args) => {
            let to = parse_address(&args.to, "--to")?;
            let asset = parse_asset(args.asset.as_deref())?;
            let kind = TxKind::Transfer {
                to,
                asset,
                amount: Amount(args.amount),
            };
            send(
                &args.send,
                ChainId(args.chain),
                |_, _| Ok((kind, Vec::new())),
                out,
            )
            .map(drop)
        }
    }
}

/// `banyan validator ...`.
pub fn validator(cmd: ValidatorCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        ValidatorCommand::Stake(args) => {
            let amount = Amount(args.amount);
            send(
                &args.send,
                ChainId::MAIN,
                |public, _| {
                    let kind = TxKind::Stake {
                        validator_key: public.bls_pubkey,
                        pop: Box::new(public.bls_pop),
                        amount,
                    };
                    Ok((kind, Vec::new()))
                },
                out,
            )
            .map(drop)
        }
        ValidatorCommand::Unstake(args) => send(
            &args.send,
            ChainId::MAIN,
            |_, _| {
                let kind = TxKind::Unstake {
                    amount: Amount(args.amount),
                };
                Ok((kind, Vec::new()))
            },
            out,
        )
        .map(drop),
        ValidatorCommand::ReportEquivocation(args) => {
            let file = EvidenceFile::read(&args.evidence)?;
            let evidence = file.evidence()?;
            let offender = match args.offender.as_deref().or(file.offender.as_deref()) {
                Some(a) => parse_address(a, "--offender")?,
                None => {
                    let key = evidence.validator_key().to_hex();
                    let set = args.send.rpc.connect()?.validators_on(ChainId::MAIN)?;
                    let mut backing = set.registry.iter().filter(|v| v.bls_key == key);
                    match (backing.next(), backing.next()) {
                        (Some(v), None) => parse_address(&v.address, "registry address")?,
                        (None, _) => bail!(
                            "no account stakes with key {key} in the node's registry; pass \
                             --offender ADDRESS (an account whose coins are still unbonding)"
                        ),
                        (Some(_), Some(_)) => bail!(
                            "several accounts stake with key {key}; pass --offender ADDRESS \
                             (one report per account)"
                        ),
                    }
                }
            };
            send(
                &args.send,
                ChainId::MAIN,
                |_, _| Ok((evidence.report(offender), Vec::new())),
                out,
            )
            .map(drop)
        }
    }
}

/// `banyan sidechain ...`
#[derive(Debug, Subcommand)]
pub enum SidechainCommand {
    /// Spawn a sidechain: lock a deposit on the main chain and record the sidechain's
    /// parameters. Its id is printed (`sidechain: ID`); it runs from the next main-chain
    /// epoch. Only this account may retire it.
    #[command(after_help = "Examples:
  banyan sidechain spawn --committee-size 4 --deposit 1000000 --keys devnet/demo \\
      --password-file devnet/password --wait")]
    Spawn(SpawnArgs),
    /// Retire a sidechain this account spawned: it takes no new transactions, its members
    /// checkpoint its final state, and from the next main-chain epoch its instances stop and
    /// every balance on it is paid back on the main chain out of its deposit (the spawner's
    /// own balance there included). One retired before it ever ran returns the deposit at
    /// once.
    #[command(after_help = "Examples:
  banyan sidechain retire 2147483905 --keys devnet/demo --password-file devnet/password \\
      --wait")]
    Retire(RetireArgs),
    /// One sidechain: its parameters, the committee the main chain assigned it this epoch
    /// (who joined, who left), and its height on the node asked if that node hosts it.
    #[command(after_help = "Examples:
  banyan sidechain status 2147483905 --rpc http://127.0.0.1:8545")]
    Status(SidechainStatusArgs),
    /// List the sidechains the main chain records, active and retired.
    #[command(after_help = "Examples:
  banyan sidechain list --rpc http://127.0.0.1:8545
  banyan sidechain list --json")]
    List(ListArgs),
}

/// Arguments of `banyan sidechain spawn`.
#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// Validators in its committee (1 to 256).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub committee_size: u16,
    /// Target time between its blocks, ms (50 to 60000).
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub block_time_ms: u32,
    /// Its blocks per epoch.
    #[arg(long, value_name = "BLOCKS", default_value_t = 100)]
    pub epoch_length: u64,
    /// Native coins to lock while it is active (at least the main chain's
    /// `min_sidechain_deposit`, 1000000 unless its genesis says otherwise).
    #[arg(long, value_name = "N")]
    pub deposit: u128,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
}

/// Arguments of `banyan sidechain retire`.
#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The sidechain's id, as `spawn` printed it.
    #[arg(value_name = "CHAIN")]
    pub chain: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
}

/// Arguments of `banyan sidechain status`.
#[derive(Debug, Args)]
pub struct SidechainStatusArgs {
    /// The sidechain's id, as `spawn` printed it.
    #[arg(value_name = "CHAIN")]
    pub chain: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
    /// Print it as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `banyan sidechain list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub rpc: RpcArgs,
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `banyan sidechain ...`.
pub fn sidechain(cmd: SidechainCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        SidechainCommand::Spawn(args) => {
            let params = SidechainParams {
                committee_size: args.committee_size,
                block_time_ms: args.block_time_ms,
                epoch_length: args.epoch_length,
                deposit: Amount(args.deposit),
            };
            params
                .check()
                .map_err(|e| anyhow!("invalid sidechain parameters: {e}"))?;
            let mut id = None;
            let committed = send(
                &args.send,
                ChainId::MAIN,
                |public, nonce| {
                    let chain = sidechain_id(&public.account_address, nonce);
                    id = Some(chain);
                    Ok((
                        TxKind::SpawnSidechain { params },
                        vec![("sidechain", chain.0.into())],
                    ))
                },
                out,
            )?;
            if let (true, Some(chain)) = (committed, id) {
                let listed = args.send.rpc.connect()?.sidechains()?;
                if !listed.sidechains.iter().any(|s| s.chain == chain.0) {
                    bail!(
                        "the spawn committed but failed (sidechain {} is not recorded): the \
                         deposit may be below the chain's minimum or the balance too small; \
                         the block's receipts say why (`banyan query block`)",
                        chain.0
                    );
                }
            }
            Ok(())
        }
        SidechainCommand::Retire(args) => {
            let chain = ChainId(args.chain);
            let committed = send(
                &args.send,
                ChainId::MAIN,
                |_, _| Ok((TxKind::RetireSidechain { chain }, Vec::new())),
                out,
            )?;
            if committed {
                let listed = args.send.rpc.connect()?.sidechains()?;
                let status = listed
                    .sidechains
                    .iter()
                    .find(|s| s.chain == chain.0)
                    .map(|s| s.status.as_str());
                if status != Some("retired") {
                    bail!(
                        "the retirement committed but failed (sidechain {} is {}): only the \
                         account that spawned it may retire it; the block's receipts say why \
                         (`banyan query block`)",
                        chain.0,
                        status.unwrap_or("unknown")
                    );
                }
            }
            Ok(())
        }
        SidechainCommand::Status(args) => {
            let s = args.rpc.connect()?.sidechain(ChainId(args.chain))?;
            if args.json {
                return print_json(out, &s);
            }
            writeln!(out, "sidechain {}: {}", s.chain, s.status)?;
            writeln!(out, "  spawner:     {}", s.spawner)?;
            writeln!(out, "  deposit:     {}", s.deposit)?;
            writeln!(
                out,
                "  parameters:  committee {}, block {} ms, epoch {} blocks",
                s.committee_size, s.block_time_ms, s.epoch_length
            )?;
            match s.retired_from_epoch {
                Some(e) => writeln!(
                    out,
                    "  runs:        main epochs {} to {}",
                    s.activation_epoch,
                    e.saturating_sub(1)
                )?,
                None => writeln!(out, "  runs:        from main epoch {}", s.activation_epoch)?,
            }
            if s.committee.is_empty() {
                writeln!(out, "  committee:   none in main epoch {}", s.main_epoch)?;
            } else {
                writeln!(
                    out,
                    "  committee:   {} members in main epoch {}",
                    s.committee.len(),
                    s.main_epoch
                )?;
                for m in &s.committee {
                    let mark = if s.joined.contains(m) {
                        " (joined)"
                    } else {
                        ""
                    };
                    writeln!(out, "    {m}{mark}")?;
                }
                for m in &s.left {
                    writeln!(out, "    {m} (left)")?;
                }
            }
            match &s.checkpoint {
                Some(c) => writeln!(
                    out,
                    "  checkpoint:  height {} (block {}), epoch {}, committee of main epoch {}",
                    c.height, c.block_id, c.epoch, c.main_epoch
                )?,
                None => writeln!(out, "  checkpoint:  none yet")?,
            }
            writeln!(
                out,
                "  locked:      {} native coins on the main chain{}",
                s.locked,
                if s.status == "retired" {
                    " (left after the balances settled so far)"
                } else {
                    " (the deposit)"
                }
            )?;
            match &s.hosted {
                Some(h) => writeln!(
                    out,
                    "  here:        height {} epoch {} round {}, {}",
                    h.height,
                    h.epoch,
                    h.round,
                    match h.committee_index {
                        Some(i) => format!("member #{i}"),
                        None => "following".to_string(),
                    }
                )?,
                None => writeln!(out, "  here:        not hosted by this node")?,
            }
            Ok(())
        }
        SidechainCommand::List(args) => {
            let listed = args.rpc.connect()?.sidechains()?;
            if args.json {
                return print_json(out, &listed);
            }
            if listed.sidechains.is_empty() {
                writeln!(out, "no sidechains (main chain height {})", listed.height)?;
            }
            for s in &listed.sidechains {
                writeln!(
                    out,
                    "sidechain {}: {}, committee {}, block {} ms, epoch {} blocks, from epoch \
                     {}, deposit {}, spawner {}",
                    s.chain,
                    s.status,
                    s.committee_size,
                    s.block_time_ms,
                    s.epoch_length,
                    s.activation_epoch,
                    s.deposit,
                    s.spawner
                )?;
            }
            Ok(())
        }
    }
}

/// Decrypt the keys of `dir` (checking them before asking for the password).
pub(crate) fn load_keys(
    dir: &Path,
    password: &PasswordArgs,
) -> Result<(ValidatorKeys, PublicKeys)> {
    let files = KeyPaths::new(dir).open()?;
    let password = read_password(password, dir, false)?;
    files.decrypt(&password)
}

/// The id of the network the node at `client` runs, which every transaction signs.
fn network_of(client: &BlockingRpcClient) -> Result<Digest> {
    client
        .status()
        .context("cannot read the node's network id (`banyan status`)")?
        .network_id()
}

/// Sign the transaction `kind` with the account key of `args.keys`, submit it, print its id
/// and, with `--wait`, wait for it to commit.
/// What a transaction built by [`send`]'s caller adds to its output besides the transaction
/// id: named values (a JSON field each, and a `name: value` line each in text).
type Extra = Vec<(&'static str, serde_json::Value)>;

/// Sign the transaction `kind` builds (from the sender's public keys and the nonce it will
/// carry), submit it, wait for it if asked, and print the result. Whether it committed.
fn send(
    args: &SendArgs,
    chain: ChainId,
    kind: impl FnOnce(&PublicKeys, Nonce) -> Result<(TxKind, Extra)>,
    out: &mut dyn Write,
) -> Result<bool> {
    let (keys, public) = load_keys(&args.keys, &args.password)?;
    let client = args.rpc.connect()?;
    let sender = public.account_address;
    let nonce = match args.nonce {
        Some(n) => n,
        None => {
            client
                .account(chain, sender, AssetId::NATIVE)
                .context("cannot read the account's nonce; pass --nonce to set it yourself")?
                .nonce
        }
    };
    let (kind, extra) = kind(&public, Nonce(nonce))?;
    let network = network_of(&client)?;
    let body = TxBody {
        chain,
        network,
        sender: public.account_pubkey,
        nonce: Nonce(nonce),
        fee: Amount(args.fee),
        kind,
    };
    let tx = body.sign(&keys.account);
    let submitted = client.submit_tx(&tx).with_context(|| {
        format!(
            "the node did not accept the transaction (sender {sender}, nonce {nonce}); check \
             the balance with `banyan query balance {sender}`"
        )
    })?;
    let mut committed: Option<AccountView> = None;
    if args.wait {
        eprintln!("submitted {}; waiting for it to commit...", submitted.id);
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            match client.account(chain, sender, AssetId::NATIVE) {
                Ok(account) if account.nonce > nonce => {
                    committed = Some(account);
                    break;
                }
                Ok(_) => {}
                Err(e) if e.is_transport() => return Err(e.into()),
                Err(e) => eprintln!("warning: polling the account failed: {e}"),
            }
            if Instant::now() >= deadline {
                bail!(
                    "transaction {} was not committed within {}s (the account's nonce is still \
                     at most {nonce}); it may still commit: check with `banyan query balance \
                     {sender}`",
                    submitted.id,
                    WAIT_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(WAIT_POLL);
        }
    }
    if args.json {
        let mut value = serde_json::json!({
            "id": submitted.id,
            "sender": sender.to_hex(),
            "nonce": nonce,
            "chain": chain.0,
        });
        if let Some(account) = &committed {
            value["committed_at_height"] = account.height.into();
        }
        for (name, v) in extra {
            value[name] = v;
        }
        print_json(out, &value)?;
        return Ok(committed.is_some());
    }
    writeln!(out, "{}", submitted.id)?;
    for (name, v) in extra {
        writeln!(out, "{name}: {v}")?;
    }
    if let Some(account) = &committed {
        eprintln!(
            "committed by height {}; the account's next nonce is {}",
            account.height, account.nonce
        );
    }
    Ok(committed.is_some())
}
