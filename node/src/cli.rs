//! The `banyan` command line: argument parsing and the commands.
//!
//! ```text
//! banyan keys generate --dir <DIR> [--password-file <FILE>] [--insecure-fast-kdf] [--force] [--json]
//! banyan keys show     --dir <DIR> [--password-file <FILE>] [--json]
//! banyan init          --home <DIR> --keys <DIR> --genesis <FILE> [--peers <FILE>] [addresses]
//! banyan start         --home <DIR> | --config <FILE>
//! banyan devnet        [--dir <DIR>] [--validators N] [--reset] [--duration D]
//! banyan status | tx transfer | query balance|block|validators          [--rpc URL]
//! banyan validator stake|unstake|report-equivocation                    [--rpc URL]
//! banyan load          --rpc <URL,...> --keys <DIR> --rate R [--duration D] [--accounts N]
//! ```
//!
//! The keystore password comes from `--password-file`, else the environment variable
//! [`PASSWORD_ENV`], else a prompt if standard input is a terminal; otherwise the command
//! fails and says how to pass one. Control characters (so a trailing newline) are removed from
//! it, as EIP-2335 prescribes. An empty password is refused by `generate` unless
//! `--insecure-fast-kdf` is given (throwaway test keys).

use crate::key_dir::{KeyPaths, PublicKeys, ValidatorKeys};
use crate::keystore::{normalize_password, KdfPreset};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Environment variable read for the keystore password when no `--password-file` is given.
pub const PASSWORD_ENV: &str = "BANYAN_KEYSTORE_PASSWORD";
/// Largest password file accepted.
pub const MAX_PASSWORD_FILE_BYTES: u64 = 4 * 1024;

/// Run a Banyan validator.
#[derive(Debug, Parser)]
#[command(name = "banyan", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect a validator's keys (BLS validator key, ed25519 account key).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write a node directory (config.toml, identity.json, data/) from keys and a genesis.
    Init(crate::init::InitArgs),
    /// Run a node: consensus, QUIC, JSON-RPC and /metrics, until Ctrl-C or SIGTERM.
    Start(StartArgs),
    /// Run a local devnet of validator processes on loopback (keys, genesis, demo account).
    Devnet(crate::devnet::DevnetArgs),
    /// Print a running node's status: chains, heights, committee membership, peers.
    Status(crate::client_cmd::StatusArgs),
    /// Sign and submit transactions.
    #[command(subcommand)]
    Tx(crate::client_cmd::TxCommand),
    /// Read balances, blocks and validators from a running node.
    #[command(subcommand)]
    Query(crate::client_cmd::QueryCommand),
    /// Stake to join the validator set, unstake to leave it, or report an equivocation.
    #[command(subcommand)]
    Validator(crate::client_cmd::ValidatorCommand),
    /// Drive open-loop transfer load against nodes and report committed TPS and latency.
    Load(crate::load::LoadArgs),
    /// Spawn, list and retire sidechains (main-chain transactions).
    #[command(subcommand)]
    Sidechain(crate::client_cmd::SidechainCommand),
    /// Start or stop a chain instance on a running node (admin: the node's config must set
    /// `[rpc] admin = true`; the devnet does).
    #[command(subcommand)]
    Chain(crate::client_cmd::ChainCommand),
}

/// Arguments of `banyan start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Node directory made by `banyan init` (reads DIR/config.toml).
    #[arg(long, value_name = "DIR", required_unless_present = "config")]
    pub home: Option<PathBuf>,
    /// Config file, when it is not DIR/config.toml.
    #[arg(long, value_name = "FILE", conflicts_with = "home")]
    pub config: Option<PathBuf>,
}

impl StartArgs {
    /// The config file to read.
    pub fn config_path(&self) -> PathBuf {
        match (&self.config, &self.home) {
            (Some(c), _) => c.clone(),
            (None, Some(h)) => h.join(crate::init::CONFIG_FILE),
            (None, None) => PathBuf::from(crate::init::CONFIG_FILE),
        }
    }
}

/// The keystore password for a non-interactive command: `file`, else [`PASSWORD_ENV`], else a
/// terminal prompt.
pub(crate) fn password_from(file: Option<&Path>, dir: &Path) -> Result<Zeroizing<String>> {
    let args = PasswordArgs {
        password_file: file.map(Path::to_path_buf),
    };
    read_password(&args, dir, false)
}

/// `banyan keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a BLS validator key, its proof of possession, an ed25519 account key and an
    /// ed25519 network (QUIC/TLS) key in DIR.
    ///
    /// Writes DIR/validator.bls.json, DIR/account.ed25519.json and DIR/network.ed25519.json
    /// (EIP-2335 keystores, mode 0600, all under the same password) and
    /// DIR/validator.bls.pop.json (the public proof of possession). DIR is created with mode
    /// 0700. Prints the validator id, BLS public key, proof of possession, account address and
    /// network key.
    Generate(GenerateArgs),
    /// Decrypt the keys in DIR, check them, and print their public parts (never secrets).
    ///
    /// Re-derives every public key from the decrypted secrets, checks that they match the
    /// `pubkey` fields of the files, and verifies the proof of possession.
    Show(ShowArgs),
}

/// Where the keystore password comes from.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the keystore password from FILE (control characters such as a trailing newline are
    /// ignored). Without it, the BANYAN_KEYSTORE_PASSWORD environment variable is used, else
    /// the password is prompted for on the terminal.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// Arguments of `banyan keys generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Key directory to create or fill.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub password: PasswordArgs,
    /// Encrypt with cheap scrypt parameters (n=2^10) instead of the EIP-2335 default (n=2^18).
    /// INSECURE: for tests and throwaway devnets only. Also allows an empty password.
    #[arg(long)]
    pub insecure_fast_kdf: bool,
    /// Replace keys already in DIR. The old keys are lost unless backed up.
    #[arg(long)]
    pub force: bool,
    /// Print the public keys as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `banyan keys show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Key directory to read.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub password: PasswordArgs,
    /// Print the public keys as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `cli`, writing results to `out` and notes and warnings to standard error.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Keys(KeysCommand::Generate(args)) => generate(args, out),
        Command::Keys(KeysCommand::Show(args)) => show(args, out),
        Command::Init(args) => crate::init::run(args, out),
        Command::Start(args) => {
            crate::service::init_logging();
            crate::service::run(&args.config_path())
        }
        Command::Devnet(args) => crate::devnet::run(args),
        Command::Status(args) => crate::client_cmd::status(args, out),
        Command::Tx(cmd) => crate::client_cmd::tx(cmd, out),
        Command::Query(cmd) => crate::client_cmd::query(cmd, out),
        Command::Validator(cmd) => crate::client_cmd::validator(cmd, out),
        Command::Load(args) => crate::load::run(args, out),
        Command::Chain(cmd) => crate::client_cmd::chain(cmd, out),
        Command::Sidechain(cmd) => crate::client_cmd::sidechain(cmd, out),
    }
}

fn generate(args: GenerateArgs, out: &mut dyn Write) -> Result<()> {
    let paths = KeyPaths::new(&args.dir);
    paths.check_writable(args.force)?;
    let password = read_password(&args.password, &args.dir, true)?;
    if normalize_password(&password).is_empty() && !args.insecure_fast_kdf {
        bail!(
            "the password is empty (control characters such as newlines do not count); choose \
             a password, or pass --insecure-fast-kdf for throwaway test keys"
        );
    }
    let preset = if args.insecure_fast_kdf {
        KdfPreset::InsecureFastForTestsOnly
    } else {
        KdfPreset::Standard
    };
    let keys = ValidatorKeys::generate();
    let public = paths.write(&keys, &password, preset, args.force)?;
    print_public(out, &public, &args.dir, args.json)?;
    eprintln!(
        "wrote {}, {}, {} and {}; back up the directory and keep the password: neither can \
         be recovered",
        paths.validator_keystore.display(),
        paths.validator_pop.display(),
        paths.account_keystore.display(),
        paths.network_keystore.display()
    );
    if args.insecure_fast_kdf {
        eprintln!(
            "warning: keys encrypted with --insecure-fast-kdf; use them only for tests and \
             throwaway devnets"
        );
    }
    Ok(())
}

fn show(args: ShowArgs, out: &mut dyn Write) -> Result<()> {
    let files = KeyPaths::new(&args.dir).open()?;
    let password = read_password(&args.password, &args.dir, false)?;
    let (_keys, public) = files.decrypt(&password)?;
    print_public(out, &public, &args.dir, args.json)?;
    if files.has_weak_kdf() {
        eprintln!(
            "warning: these keystores use KDF parameters weaker than the EIP-2335 default \
             (made with --insecure-fast-kdf?); do not use them outside tests and devnets"
        );
    }
    Ok(())
}

fn print_public(out: &mut dyn Write, public: &PublicKeys, dir: &Path, json: bool) -> Result<()> {
    let pop = hex::encode(public.bls_pop.0.as_bytes());
    if json {
        let value = serde_json::json!({
            "dir": dir.display().to_string(),
            "validator_id": public.validator_id.to_hex(),
            "bls_pubkey": public.bls_pubkey.to_hex(),
            "bls_pop": pop,
            "account_pubkey": hex::encode(public.account_pubkey.as_bytes()),
            "account_address": public.account_address.to_hex(),
            "network_pubkey": hex::encode(public.network_pubkey.as_bytes()),
        });
        writeln!(out, "{value:#}")?;
    } else {
        writeln!(out, "validator id:        {}", public.validator_id.to_hex())?;
        writeln!(out, "BLS public key:      {}", public.bls_pubkey.to_hex())?;
        writeln!(out, "proof of possession: {pop}")?;
        writeln!(
            out,
            "account public key:  {}",
            hex::encode(public.account_pubkey.as_bytes())
        )?;
        writeln!(
            out,
            "account address:     {}",
            public.account_address.to_hex()
        )?;
        writeln!(
            out,
            "network public key:  {}",
            hex::encode(public.network_pubkey.as_bytes())
        )?;
    }
    out.flush()?;
    Ok(())
}

/// The password from `--password-file`, else [`PASSWORD_ENV`], else a terminal prompt (twice
/// when `confirm`).
pub(crate) fn read_password(
    args: &PasswordArgs,
    dir: &Path,
    confirm: bool,
) -> Result<Zeroizing<String>> {
    if let Some(file) = &args.password_file {
        return read_password_file(file);
    }
    if let Some(value) = std::env::var_os(PASSWORD_ENV) {
        let value = value.into_string().map_err(|_| {
            anyhow::anyhow!("{PASSWORD_ENV} is not valid UTF-8; use --password-file instead")
        })?;
        return Ok(Zeroizing::new(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no keystore password given and standard input is not a terminal to prompt on; \
             pass --password-file FILE or set {PASSWORD_ENV}"
        );
    }
    let prompt = format!("Password for the keys in {}: ", dir.display());
    let first =
        Zeroizing::new(rpassword::prompt_password(prompt).context("cannot read the password")?);
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the password: ")
                .context("cannot read the password")?,
        );
        if *first != *again {
            bail!("the two passwords differ; run the command again");
        }
    }
    Ok(first)
}

fn read_password_file(path: &Path) -> Result<Zeroizing<String>> {
    use std::os::unix::fs::PermissionsExt;
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot open password file {}", path.display()))?;
    // Checked on the opened file, so a swap between the check and the read cannot slip by.
    let mode = f
        .metadata()
        .with_context(|| format!("cannot inspect password file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "password file {} has mode {:04o}, so other users can read or change it; refusing \
             to use it, as for keystores. Run `chmod 600 {}`, and if others may have read it, \
             change the password (and treat the keys as exposed)",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_PASSWORD_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    if bytes.len() as u64 > MAX_PASSWORD_FILE_BYTES {
        bail!(
            "password file {} is larger than {MAX_PASSWORD_FILE_BYTES} bytes; is it the right file?",
            path.display()
        );
    }
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("password file {} is not UTF-8 text", path.display()))?;
    Ok(Zeroizing::new(text.to_string()))
}
