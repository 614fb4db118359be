//! The main chain's genesis: a JSON file, checked entry by entry, and everything derived
//! from it (initial state, genesis block, epoch-0 seed and committee, chain parameters).

use std::collections::HashSet;
use std::path::Path;

use banyan_chain::{ChainGenesis, ChainParams, CommitteeError, KeyBook};
use banyan_core::certificate::Committee;
use banyan_core::codec::BoundedVec;
use banyan_core::hash::Digest;
use banyan_core::header::{Block, BlockHeader, MAX_TXS_PER_BLOCK};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Round};
use banyan_core::keys::{AccountPublicKey, BlsPublicKey, BlsSignature, ProofOfPossession};
use banyan_core::merkle::empty_root;
use banyan_core::state::State;
use banyan_core::tx::StateKey;
use banyan_core::value::StateValue;
use banyan_core::value::ValidatorRecord;
use banyan_ledger::{
    StakingRules, DEFAULT_MIN_SIDECHAIN_DEPOSIT, DEFAULT_SLASH_FRACTION_PERCENT,
    DEFAULT_UNBONDING_EPOCHS,
};
use banyan_vrf::EpochSeed;
use serde::{Deserialize, Serialize};

use crate::identity::verify_binding;
use crate::registry::committee_from_state;

/// Largest genesis file read.
pub const MAX_GENESIS_BYTES: u64 = 16 << 20;

/// A funded account at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Address (64 hex digits).
    pub address: String,
    /// Native balance (decimal).
    pub balance: String,
}

/// A validator at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Human-readable name (used in error messages).
    pub name: String,
    /// ed25519 account public key (hex). The stake record sits at its address.
    pub account_key: String,
    /// ed25519 public key of the node's QUIC/TLS identity (hex); never the account key.
    pub network_key: String,
    /// BLS public key (hex).
    pub bls_key: String,
    /// Proof of possession of the BLS key (hex).
    pub pop: String,
    /// The BLS key's binding of the network key (hex), see [`crate::identity`].
    pub network_binding: String,
    /// Stake (decimal).
    pub stake: String,
}

/// The genesis file as written on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// The chain id (0 for the main chain).
    pub chain_id: u32,
    /// Genesis block timestamp, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Blocks per epoch (> 0).
    pub epoch_length: u64,
    /// Least fee a transaction must pay (decimal); cheaper ones are refused.
    pub min_fee: String,
    /// Most transactions per block (1 ..= `MAX_TXS_PER_BLOCK`).
    pub max_block_txs: usize,
    /// Epochs unstaked coins stay unbonding (and slashable) after leaving the committee
    /// (`0 ..= MAX_UNBONDING_EPOCHS`; default `DEFAULT_UNBONDING_EPOCHS`, see
    /// [`banyan_ledger`]).
    #[serde(default = "default_unbonding_epochs")]
    pub unbonding_epochs: u64,
    /// Percent of an equivocating validator's stake and unbonding coins burned (`0 ..= 100`;
    /// default `DEFAULT_SLASH_FRACTION_PERCENT`).
    #[serde(default = "default_slash_fraction_percent")]
    pub slash_fraction_percent: u8,
    /// Least deposit a sidechain's spawner locks (decimal; default
    /// `DEFAULT_MIN_SIDECHAIN_DEPOSIT`).
    #[serde(default = "default_min_sidechain_deposit")]
    pub min_sidechain_deposit: String,
    /// Funded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Validators.
    pub validators: Vec<GenesisValidator>,
}

fn default_unbonding_epochs() -> u64 {
    DEFAULT_UNBONDING_EPOCHS
}

fn default_slash_fraction_percent() -> u8 {
    DEFAULT_SLASH_FRACTION_PERCENT
}

fn default_min_sidechain_deposit() -> String {
    DEFAULT_MIN_SIDECHAIN_DEPOSIT.0.to_string()
}

/// What is wrong with a genesis file.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis file {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is too large.
    #[error("genesis file {path} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// The path.
        path: String,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Not valid JSON for a genesis file.
    #[error("genesis file is not valid JSON: {0}")]
    Json(String),
    /// A field or entry is invalid.
    #[error("invalid genesis: {what}: {why}")]
    Invalid {
        /// The entry or field.
        what: String,
        /// What is wrong and what to do.
        why: String,
    },
}

fn invalid(what: impl Into<String>, why: impl Into<String>) -> GenesisError {
    GenesisError::Invalid {
        what: what.into(),
        why: why.into(),
    }
}

/// A genesis validator, parsed and checked.
#[derive(Clone, Debug)]
pub struct Validator {
    /// Name.
    pub name: String,
    /// Account key.
    pub account_key: AccountPublicKey,
    /// Network (QUIC/TLS) key.
    pub network_key: AccountPublicKey,
    /// BLS key.
    pub bls_key: BlsPublicKey,
    /// Its checked proof of possession.
    pub pop: ProofOfPossession,
    /// The BLS key's binding of the network key.
    pub network_binding: BlsSignature,
    /// Stake.
    pub stake: Amount,
}

impl Validator {
    /// Its account address, where its stake record lives.
    pub fn address(&self) -> Address {
        self.account_key.address()
    }
}

/// A parsed and validated genesis.
#[derive(Clone, Debug)]
pub struct Genesis {
    file: GenesisFile,
    params: ChainParams,
    accounts: Vec<(Address, Amount)>,
    validators: Vec<Validator>,
    keys: KeyBook,
    /// Root of [`Genesis::initial_state`], computed once.
    state_root: Digest,
    /// The network the chain's transactions sign: the main chain's genesis block id.
    network: Digest,
}

/// Parse a decimal amount.
pub fn parse_amount(what: &str, s: &str) -> Result<Amount, GenesisError> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            what,
            format!("{s:?} is not a decimal amount (digits only, no sign, no decimal point)"),
        ));
    }
    t.parse::<u128>().map(Amount).map_err(|_| {
        invalid(
            what,
            format!("{s:?} does not fit in 128 bits (at most {})", u128::MAX),
        )
    })
}

fn parse_hex<const N: usize>(what: &str, field: &str, s: &str) -> Result<[u8; N], GenesisError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut out)
        .map_err(|e| invalid(what, format!("{field} is not {} hex digits: {e}", N * 2)))?;
    Ok(out)
}

impl Genesis {
    /// Read, parse and validate a genesis file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Genesis, GenesisError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let io = |source| GenesisError::Io {
            path: shown.clone(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_GENESIS_BYTES {
            return Err(GenesisError::TooLarge {
                path: shown,
                len,
                max: MAX_GENESIS_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_json(&text)
    }

    /// Parse and validate genesis JSON.
    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        let file: GenesisFile =
            serde_json::from_str(json).map_err(|e| GenesisError::Json(e.to_string()))?;
        Self::validate(file)
    }

    /// The JSON of a genesis file (pretty-printed).
    pub fn to_json(file: &GenesisFile) -> String {
        // Serialising plain strings and integers to a String cannot fail.
        serde_json::to_string_pretty(file).unwrap_or_default()
    }

    /// Check every entry: proofs of possession and bindings verify, stakes are positive, no
    /// key or address appears twice, amounts parse and their sums do not overflow, the epoch
    /// length is positive and the block size is in range. Errors name the offending entry.
    pub fn validate(file: GenesisFile) -> Result<Genesis, GenesisError> {
        if file.epoch_length == 0 {
            return Err(invalid("epoch_length", "must be at least 1 block"));
        }
        if file.max_block_txs == 0 || file.max_block_txs > MAX_TXS_PER_BLOCK {
            return Err(invalid(
                "max_block_txs",
                format!(
                    "{} is out of range: it must be between 1 and {MAX_TXS_PER_BLOCK}",
                    file.max_block_txs
                ),
            ));
        }
        let min_fee = parse_amount("min_fee", &file.min_fee)?;
        let chain = ChainId(file.chain_id);
        let staking = StakingRules {
            unbonding_epochs: file.unbonding_epochs,
            slash_fraction_percent: file.slash_fraction_percent,
            min_sidechain_deposit: parse_amount(
                "min_sidechain_deposit",
                &file.min_sidechain_deposit,
            )?,
        };
        staking.validate().map_err(|e| {
            let field = match e {
                banyan_ledger::StakingRulesError::UnbondingTooLong(_) => "unbonding_epochs",
                banyan_ledger::StakingRulesError::SlashFractionTooLarge(_) => {
                    "slash_fraction_percent"
                }
            };
            invalid(field, e.to_string())
        })?;

        let mut total = Amount::ZERO;
        let mut seen_addr = HashSet::new();
        let mut accounts = Vec::with_capacity(file.accounts.len());
        for (i, a) in file.accounts.iter().enumerate() {
            let what = format!("accounts[{i}] ({})", a.address);
            let address = Address(parse_hex::<32>(&what, "address", &a.address)?);
            if !seen_addr.insert(address) {
                return Err(invalid(what, "duplicate address: list each account once"));
            }
            let balance = parse_amount(&what, &a.balance)?;
            total = total
                .checked_add(balance)
                .map_err(|_| invalid(what, "the total supply overflows 128 bits"))?;
            accounts.push((address, balance));
        }

        let mut keys = KeyBook::new();
        let mut seen_bls = HashSet::new();
        let mut seen_account = HashSet::new();
        let mut seen_network = HashSet::new();
        let mut validators = Vec::with_capacity(file.validators.len());
        for (i, v) in file.validators.iter().enumerate() {
            let what = format!("validators[{i}] ({:?})", v.name);
            let account_bytes = parse_hex::<32>(&what, "account_key", &v.account_key)?;
            let account_key = AccountPublicKey::from_bytes(&account_bytes)
                .map_err(|e| invalid(&what, format!("account_key: {e}")))?;
            let network_bytes = parse_hex::<32>(&what, "network_key", &v.network_key)?;
            let network_key = AccountPublicKey::from_bytes(&network_bytes)
                .map_err(|e| invalid(&what, format!("network_key: {e}")))?;
            if network_key == account_key {
                return Err(invalid(
                    what,
                    "network_key is the account key: the node's TLS identity must be a key of \
                     its own (`banyan keys generate` makes one)",
                ));
            }
            let bls_bytes = parse_hex::<48>(&what, "bls_key", &v.bls_key)?;
            let bls_key = BlsPublicKey::from_bytes(&bls_bytes)
                .map_err(|e| invalid(&what, format!("bls_key: {e}")))?;
            let pop_bytes = parse_hex::<96>(&what, "pop", &v.pop)?;
            let pop = BlsSignature::from_bytes(&pop_bytes)
                .map(ProofOfPossession)
                .map_err(|e| invalid(&what, format!("pop: {e}")))?;
            let binding_bytes = parse_hex::<96>(&what, "network_binding", &v.network_binding)?;
            let network_binding = BlsSignature::from_bytes(&binding_bytes)
                .map_err(|e| invalid(&what, format!("network_binding: {e}")))?;
            let stake = parse_amount(&what, &v.stake)?;
            if stake == Amount::ZERO {
                return Err(invalid(what, "stake is zero: a validator needs stake"));
            }
            if !seen_bls.insert(bls_bytes) {
                return Err(invalid(
                    what,
                    "duplicate bls_key: each validator needs its own",
                ));
            }
            if !seen_account.insert(account_bytes) {
                return Err(invalid(
                    what,
                    "duplicate account_key: each validator needs its own account",
                ));
            }
            if !seen_network.insert(network_bytes) {
                return Err(invalid(
                    what,
                    "duplicate network_key: each node needs its own",
                ));
            }
            keys.verify_and_insert(&bls_key, &pop).map_err(|e| {
                invalid(
                    &what,
                    format!("pop: {e}; regenerate it with the validator's BLS secret key"),
                )
            })?;
            verify_binding(&bls_key, &network_key, &network_binding)
                .map_err(|e| invalid(&what, format!("network_binding: {e}")))?;
            total = total
                .checked_add(stake)
                .map_err(|_| invalid(&what, "the total supply overflows 128 bits"))?;
            validators.push(Validator {
                name: v.name.clone(),
                account_key,
                network_key,
                bls_key,
                pop,
                network_binding,
                stake,
            });
        }
        if validators.is_empty() {
            return Err(invalid("validators", "at least one validator is needed"));
        }
        let params = ChainParams {
            chain,
            epoch_length: file.epoch_length,
            min_fee,
            max_block_txs: file.max_block_txs,
            staking,
        };
        let mut genesis = Genesis {
            file,
            params,
            accounts,
            validators,
            keys,
            state_root: Digest::ZERO,
            network: Digest::ZERO,
        };
        genesis.state_root = genesis.initial_state().root();
        // A genesis read from a file is a main chain's: its block names the network.
        genesis.network = genesis.block().header.id();
        genesis
            .try_committee()
            .map_err(|e| invalid("validators", e.to_string()))?;
        Ok(genesis)
    }

    /// The file it was read from.
    pub fn file(&self) -> &GenesisFile {
        &self.file
    }

    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.params.chain
    }

    /// The chain's parameters.
    pub fn params(&self) -> ChainParams {
        self.params.clone()
    }

    /// The validators.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The checked keys of the genesis validators.
    pub fn key_book(&self) -> &KeyBook {
        &self.keys
    }

    /// The state before block 1: balances, and a stake record at each validator's account.
    pub fn initial_state(&self) -> State {
        let balances = self.accounts.iter().map(|(address, balance)| {
            (
                StateKey::Balance(*address, AssetId::NATIVE),
                StateValue::Amount(*balance),
            )
        });
        let stakes = self.validators.iter().map(|v| {
            (
                StateKey::Validator(v.address()),
                StateValue::Validator(ValidatorRecord {
                    stake: v.stake,
                    key: *v.bls_key.as_bytes(),
                }),
            )
        });
        // Balance keys hold amounts and validator keys records, so this cannot fail; the
        // empty state stands in if it ever did (its root would not match any block).
        State::from_entries(balances.chain(stakes)).unwrap_or_default()
    }

    /// The network's id: the main chain's genesis block id (every transaction signs it, see
    /// `TxBody::network`). A chain derived with [`Genesis::derive_test_chain`] keeps the
    /// network of the main chain it came from.
    pub fn network(&self) -> Digest {
        self.network
    }

    /// The genesis block: height, round and epoch 0, no parent, no transactions.
    pub fn block(&self) -> Block {
        Block {
            header: BlockHeader {
                chain: self.params.chain,
                epoch: Epoch(0),
                height: Height(0),
                round: Round(0),
                parent: Digest::ZERO,
                state_root: self.state_root,
                tx_root: Block::compute_tx_root(&[]),
                outbox_root: empty_root(),
                proposer: Digest::ZERO,
                timestamp_ms: self.file.genesis_time_ms,
                vrf_proof: None,
            },
            txs: BoundedVec::empty(),
        }
    }

    /// The seed of epoch 0.
    pub fn seed(&self) -> EpochSeed {
        EpochSeed::genesis(&self.block().header.id())
    }

    fn try_committee(&self) -> Result<Committee, CommitteeError> {
        committee_from_state(&self.initial_state(), Epoch(0), &self.keys)
    }

    /// The committee of epoch 0: the registry of the initial state.
    pub fn committee(&self) -> Committee {
        // `validate` built this very committee before returning a `Genesis`.
        #[allow(clippy::expect_used)]
        self.try_committee()
            .expect("validate checked that the genesis committee forms")
    }
}

impl Genesis {
    /// A chain derived from this (main-chain) genesis for running several chain instances
    /// before sidechains exist: the same file with another chain id (so the same validators,
    /// stakes and funded accounts, its own genesis block and state), in the main chain's
    /// network.
    pub fn derive_test_chain(&self, chain: ChainId) -> Result<Genesis, GenesisError> {
        if chain == ChainId::MAIN || self.chain() != ChainId::MAIN {
            return Err(invalid(
                "chain_id",
                format!("a test chain is derived from the main chain's genesis with another id, not {chain}"),
            ));
        }
        if chain.0 & banyan_core::tx::SIDECHAIN_ID_BIT != 0 {
            return Err(invalid(
                "chain_id",
                format!(
                    "{chain} has the high bit set, which marks spawned sidechains' ids; a test \
                     chain takes an id below {}",
                    banyan_core::tx::SIDECHAIN_ID_BIT
                ),
            ));
        }
        let mut file = self.file.clone();
        file.chain_id = chain.0;
        let mut derived = Genesis::validate(file)?;
        derived.network = self.network;
        Ok(derived)
    }
}

impl ChainGenesis for Genesis {
    fn params(&self) -> ChainParams {
        Genesis::params(self)
    }

    fn block(&self) -> Block {
        Genesis::block(self)
    }

    fn initial_state(&self) -> State {
        Genesis::initial_state(self)
    }

    fn committee(&self) -> Committee {
        Genesis::committee(self)
    }

    fn key_book(&self) -> &KeyBook {
        Genesis::key_book(self)
    }

    fn seed(&self) -> EpochSeed {
        Genesis::seed(self)
    }

    fn network(&self) -> Digest {
        Genesis::network(self)
    }
}

/// Build a genesis file from public key material (no secret key is needed). The result is
/// validated before it is returned, which checks every validator's proof of possession and
/// network binding.
pub fn build_genesis(
    params: &ChainParams,
    genesis_time_ms: u64,
    accounts: &[(Address, Amount)],
    validators: &[Validator],
) -> Result<GenesisFile, GenesisError> {
    let file = GenesisFile {
        chain_id: params.chain.0,
        genesis_time_ms,
        epoch_length: params.epoch_length,
        min_fee: params.min_fee.0.to_string(),
        max_block_txs: params.max_block_txs,
        unbonding_epochs: params.staking.unbonding_epochs,
        slash_fraction_percent: params.staking.slash_fraction_percent,
        min_sidechain_deposit: params.staking.min_sidechain_deposit.0.to_string(),
        accounts: accounts
            .iter()
            .map(|(a, b)| GenesisAccount {
                address: a.to_hex(),
                balance: b.0.to_string(),
            })
            .collect(),
        validators: validators
            .iter()
            .map(|v| GenesisValidator {
                name: v.name.clone(),
                account_key: hex::encode(v.account_key.as_bytes()),
                network_key: hex::encode(v.network_key.as_bytes()),
                bls_key: v.bls_key.to_hex(),
                pop: hex::encode(v.pop.0.as_bytes()),
                network_binding: hex::encode(v.network_binding.as_bytes()),
                stake: v.stake.0.to_string(),
            })
            .collect(),
    };
    Genesis::validate(file.clone())?;
    Ok(file)
}
