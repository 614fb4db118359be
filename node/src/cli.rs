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
//! banyan sidechain spawn|retire|status|list | chain start|stop          [--rpc URL]
//! banyan config validate --home <DIR> | --config <FILE>
//! banyan completions   bash|zsh|fish
//! ```
//!
//! Every command's `--help` ends with examples.
//!
//! The keystore password comes from `--password-file`, else the environment variable
//! [`PASSWORD_ENV`], else a prompt if standard input is a terminal; otherwise the command
//! fails and says how to pass one. Control characters (so a trailing newline) are removed from
//! it, as EIP-2335 prescribes. An empty password is refused by `generate` unless
//! `--insecure-fast-kdf` is given (throwaway test keys).

use crate::key_dir::{KeyPaths, PublicKeys, ValidatorKeys};
use crate::keystore::{normalize_password, KdfPreset};
use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Environment variable read for the keystore password when no `--password-file` is given.
pub const PASSWORD_ENV: &str = "BANYAN_KEYSTORE_PASSWORD";
/// Largest password file accepted.
pub const MAX_PASSWORD_FILE_BYTES: u64 = 4 * 1024;

/// Run a Banyan validator.
#[derive(Debug, Parser)]
#[command(
    name = "banyan",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:
  banyan devnet                      # a local network of 4 validators and a sidechain
  banyan status --rpc http://127.0.0.1:8545
  banyan <COMMAND> --help            # each command's options and examples"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect a validator's keys (BLS validator key, ed25519 account key).
    #[command(
        subcommand,
        after_help = "Examples:
  banyan keys generate --dir keys/v0 --password-file password
  banyan keys show --dir keys/v0 --password-file password"
    )]
    Keys(KeysCommand),
    /// Write a node directory (config.toml, identity.json, data/) from keys and a genesis.
    #[command(after_help = "Examples:
  banyan init --home node0 --keys keys/v0 --genesis genesis.json --password-file password
  banyan init --home node1 --keys keys/v1 --genesis genesis.json --peers peers.json \\
      --p2p 0.0.0.0:7001 --rpc 127.0.0.1:8546 --metrics 127.0.0.1:9101 --name v1")]
    Init(crate::init::InitArgs),
    /// Run a node: consensus, QUIC, JSON-RPC and /metrics, until Ctrl-C or SIGTERM.
    #[command(after_help = "Examples:
  banyan start --home node0
  banyan start --config /etc/banyan/config.toml --log-format json
  RUST_LOG=banyan=debug banyan start --home node0")]
    Start(StartArgs),
    /// Run a local devnet of validator processes on loopback (keys, genesis, demo account).
    #[command(after_help = "Examples:
  banyan devnet                                  # 4 validators and one sidechain, until Ctrl-C
  banyan devnet --validators 7 --sidechains 2 --reset
  banyan devnet --duration 90s --no-restart
  banyan devnet status --dir ./devnet            # from another terminal")]
    Devnet(crate::devnet::DevnetArgs),
    /// Print a running node's status: chains, heights, committee membership, peers.
    #[command(after_help = "Examples:
  banyan status --rpc http://127.0.0.1:8545
  BANYAN_RPC=http://127.0.0.1:8546 banyan status --json")]
    Status(crate::client_cmd::StatusArgs),
    /// Sign and submit transactions.
    #[command(
        subcommand,
        after_help = "Examples:
  banyan tx transfer --to ADDRESS --amount 1000 --keys devnet/demo \\
      --password-file devnet/password --wait"
    )]
    Tx(crate::client_cmd::TxCommand),
    /// Read balances, blocks and validators from a running node.
    #[command(
        subcommand,
        after_help = "Examples:
  banyan query balance ADDRESS --rpc http://127.0.0.1:8545
  banyan query block --json
  banyan query validators"
    )]
    Query(crate::client_cmd::QueryCommand),
    /// Stake to join the validator set, unstake to leave it, or report an equivocation.
    #[command(
        subcommand,
        after_help = "Examples:
  banyan validator stake --amount 1000000 --keys devnet/v4/keys \\
      --password-file devnet/password --wait
  banyan validator unstake --amount 1000000 --keys devnet/v4/keys \\
      --password-file devnet/password"
    )]
    Validator(crate::client_cmd::ValidatorCommand),
    /// Drive open-loop transfer load against nodes and report committed TPS and latency.
    #[command(after_help = "Examples:
  banyan load --keys devnet/demo --password-file devnet/password --rate 500 --duration 30s
  banyan load --rpc http://127.0.0.1:8545,http://127.0.0.1:8546 --keys devnet/demo \\
      --password-file devnet/password --rate 4000 --accounts 10000 --presign --json")]
    Load(crate::load::LoadArgs),
    /// Spawn, list and retire sidechains (main-chain transactions).
    #[command(
        subcommand,
        after_help = "Examples:
  banyan sidechain list
  banyan sidechain spawn --committee-size 4 --deposit 1000000 --keys devnet/demo \\
      --password-file devnet/password --wait"
    )]
    Sidechain(crate::client_cmd::SidechainCommand),
    /// Start or stop a chain instance on a running node (admin: the node's config must set
    /// `[rpc] admin = true`; the devnet does).
    #[command(
        subcommand,
        after_help = "Examples:
  banyan chain start 1 --rpc http://127.0.0.1:8545
  banyan chain stop 1 --rpc http://127.0.0.1:8545"
    )]
    Chain(crate::client_cmd::ChainCommand),
    /// Check a node's config file without starting the node: its syntax and keys, the
    /// files it names (keys, password, genesis), its addresses and its peers.
    #[command(
        subcommand,
        after_help = "Examples:
  banyan config validate --home devnet/v0
  banyan config validate --config /etc/banyan/config.toml"
    )]
    Config(ConfigCommand),
    /// Print a completion script for a shell (bash, zsh or fish) to standard output.
    #[command(after_help = "Examples:
  banyan completions bash > /etc/bash_completion.d/banyan
  banyan completions zsh > \"${fpath[1]}/_banyan\"
  banyan completions fish > ~/.config/fish/completions/banyan.fish")]
    Completions(CompletionsArgs),
}

/// `banyan config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a node's config: every problem is listed with the line it is on and what to do
    /// about it; exits non-zero if there is one. The keys are decrypted when the password is
    /// at hand (the config's `password_file` or BANYAN_KEYSTORE_PASSWORD). Nothing is written
    /// and nothing is bound, so it can run beside the node.
    #[command(after_help = "Examples:
  banyan config validate --home devnet/v0
  banyan config validate --config /etc/banyan/config.toml --json")]
    Validate(ValidateArgs),
}

/// Arguments of `banyan config validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub file: ConfigFileArgs,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `banyan completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells `banyan completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// How `banyan start` writes its log (to standard error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for log shippers.
    Json,
}

/// Arguments of `banyan start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub file: ConfigFileArgs,
    /// Log format: `text` for people, `json` (one object per line) for log shippers. The
    /// level comes from RUST_LOG (default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Where a node's config file is.
#[derive(Debug, Args)]
pub struct ConfigFileArgs {
    /// Node directory made by `banyan init` (reads DIR/config.toml).
    #[arg(long, value_name = "DIR", required_unless_present = "config")]
    pub home: Option<PathBuf>,
    /// Config file, when it is not DIR/config.toml.
    #[arg(long, value_name = "FILE", conflicts_with = "home")]
    pub config: Option<PathBuf>,
}

impl ConfigFileArgs {
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
    #[command(after_help = "Examples:
  banyan keys generate --dir keys/v0                          # prompts for the password
  banyan keys generate --dir keys/v0 --password-file password --json
  banyan keys generate --dir /tmp/k --insecure-fast-kdf --password-file empty  # tests only")]
    Generate(GenerateArgs),
    /// Decrypt the keys in DIR, check them, and print their public parts (never secrets).
    ///
    /// Re-derives every public key from the decrypted secrets, checks that they match the
    /// `pubkey` fields of the files, and verifies the proof of possession.
    #[command(after_help = "Examples:
  banyan keys show --dir keys/v0
  BANYAN_KEYSTORE_PASSWORD=... banyan keys show --dir keys/v0 --json")]
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
            crate::service::init_logging(args.log_format);
            crate::service::run(&args.file.config_path())
        }
        Command::Devnet(args) => crate::devnet::run(args),
        Command::Status(args) => crate::client_cmd::status(args, out),
        Command::Tx(cmd) => crate::client_cmd::tx(cmd, out),
        Command::Query(cmd) => crate::client_cmd::query(cmd, out),
        Command::Validator(cmd) => crate::client_cmd::validator(cmd, out),
        Command::Load(args) => crate::load::run(args, out),
        Command::Chain(cmd) => crate::client_cmd::chain(cmd, out),
        Command::Sidechain(cmd) => crate::client_cmd::sidechain(cmd, out),
        Command::Config(ConfigCommand::Validate(args)) => {
            crate::config_check::run(&args.file.config_path(), args.json, out)
        }
        Command::Completions(args) => completions(args.shell, out),
    }
}

/// Write the completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> Result<()> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "banyan", &mut buf);
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, at every level, ends its help with examples of itself.
    #[test]
    fn every_command_has_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>, seen: &mut usize) {
            *seen += 1;
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let has_example = help.starts_with("Examples:")
                && help.lines().skip(1).any(|l| {
                    let l = l.trim_start();
                    l.starts_with(path) || l.contains(&format!(" {path}"))
                });
            if !has_example {
                missing.push(path.to_string());
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &format!("{path} {}", sub.get_name()), missing, seen);
                }
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let (mut missing, mut seen) = (Vec::new(), 0);
        walk(&cmd, "banyan", &mut missing, &mut seen);
        assert!(seen > 30, "walked only {seen} commands");
        assert!(missing.is_empty(), "no example in the help of: {missing:?}");
    }
}
