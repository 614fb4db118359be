//! Write and read a validator's key directory.
//!
//! Layout of `<DIR>`:
//!
//! | file | content | mode |
//! |---|---|---|
//! | `validator.bls.json` | EIP-2335 keystore of the BLS12-381 secret key; `pubkey` = compressed G1 public key (hex), description [`BLS_DESCRIPTION`] | 0600 |
//! | `validator.bls.pop.json` | `{"pubkey": <BLS public key hex>, "pop": <proof of possession hex>}`, public | 0644 |
//! | `account.ed25519.json` | EIP-2335 keystore of the ed25519 seed; `pubkey` = ed25519 public key (hex), `path` empty, description [`ACCOUNT_DESCRIPTION`] | 0600 |
//! | `network.ed25519.json` | EIP-2335 keystore of the node's network (QUIC/TLS) ed25519 seed; same layout, description [`NETWORK_DESCRIPTION`] | 0600 |
//!
//! The proof of possession lives in its own file, not inside the keystore, so the keystore
//! stays a plain EIP-2335 file and the proof (needed to stake, public) can be read and shared
//! without the password. The three keystores are encrypted with the same password.
//!
//! The network key is not the account key: the account key holds funds and signs
//! transactions, the network key only authenticates the node's connections (its binding to
//! the validator is signed by the BLS key, see `banyan_mainchain::identity`). A node's TLS
//! stack never sees the key that holds its coins.
//!
//! Guarantees:
//! - the directory is created 0700 and files are created with their final mode (never
//!   `chmod`ed after writing); an existing directory open to group or others is refused;
//! - every file is written to a temporary file, synced, then moved into place, so a crash never
//!   leaves a half-written keystore under its real name; without `force` the move refuses to
//!   replace an existing file (hard link, atomic);
//! - a keystore open to group or others is refused when loaded, with what to do;
//! - loading re-derives every public key, checks them against the files, and verifies the proof
//!   of possession, so a mismatched or tampered directory is reported, not used.

use crate::keystore::{KdfPreset, Keystore, KeystoreMeta, MAX_KEYSTORE_JSON_BYTES};
use anyhow::{anyhow, bail, Context, Result};
use banyan_core::hash::Digest;
use banyan_core::ids::Address;
use banyan_core::keys::{
    AccountPublicKey, AccountSecretKey, BlsPublicKey, BlsSecretKey, BlsSignature, ProofOfPossession,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the validator's BLS keystore.
pub const VALIDATOR_KEYSTORE_FILE: &str = "validator.bls.json";
/// File name of the validator's proof of possession.
pub const VALIDATOR_POP_FILE: &str = "validator.bls.pop.json";
/// File name of the account's ed25519 keystore.
pub const ACCOUNT_KEYSTORE_FILE: &str = "account.ed25519.json";
/// `description` of the BLS keystore.
pub const BLS_DESCRIPTION: &str = "banyan validator BLS key";
/// `description` of the account keystore.
pub const ACCOUNT_DESCRIPTION: &str = "banyan account ed25519 key";
/// File name of the node's network (QUIC/TLS) ed25519 keystore.
pub const NETWORK_KEYSTORE_FILE: &str = "network.ed25519.json";
/// `description` of the network keystore.
pub const NETWORK_DESCRIPTION: &str = "banyan node network (QUIC/TLS) ed25519 key";
/// Mode of the key directory.
pub const KEY_DIR_MODE: u32 = 0o700;
/// Mode of keystore files.
pub const SECRET_FILE_MODE: u32 = 0o600;
/// Mode of the (public) proof-of-possession file.
pub const PUBLIC_FILE_MODE: u32 = 0o644;
/// Largest proof-of-possession file accepted.
pub const MAX_POP_JSON_BYTES: usize = 4 * 1024;

/// Permission bits that give group or others any access.
const GROUP_OTHER_BITS: u32 = 0o077;

/// The public side of a validator's keys: what `banyan keys` prints and what staking needs.
#[derive(Clone, Debug)]
pub struct PublicKeys {
    /// Validator id (hash of the BLS public key).
    pub validator_id: Digest,
    /// BLS public key.
    pub bls_pubkey: BlsPublicKey,
    /// Proof of possession of the BLS key.
    pub bls_pop: ProofOfPossession,
    /// Account ed25519 public key.
    pub account_pubkey: AccountPublicKey,
    /// Account address.
    pub account_address: Address,
    /// The node's network (QUIC/TLS) public key.
    pub network_pubkey: AccountPublicKey,
}

/// A validator's secret keys, wiped from memory on drop.
pub struct ValidatorKeys {
    /// BLS key that signs votes.
    pub bls: BlsSecretKey,
    /// ed25519 key of the validator's account (stake, fees).
    pub account: AccountSecretKey,
    /// ed25519 key of the node's QUIC/TLS identity (never the account key).
    pub network: AccountSecretKey,
}

impl ValidatorKeys {
    /// Fresh keys from the OS RNG.
    pub fn generate() -> Self {
        let mut rng = OsRng;
        ValidatorKeys {
            bls: BlsSecretKey::generate(&mut rng),
            account: AccountSecretKey::generate(&mut rng),
            network: AccountSecretKey::generate(&mut rng),
        }
    }

    /// The public keys, with a fresh proof of possession.
    pub fn public_keys(&self) -> PublicKeys {
        let bls_pubkey = self.bls.public_key();
        let account_pubkey = self.account.public_key();
        PublicKeys {
            validator_id: bls_pubkey.validator_id(),
            bls_pubkey,
            bls_pop: self.bls.prove_possession(),
            account_pubkey,
            account_address: account_pubkey.address(),
            network_pubkey: self.network.public_key(),
        }
    }
}

/// Contents of [`VALIDATOR_POP_FILE`].
#[derive(Serialize, Deserialize)]
struct PopFile {
    pubkey: String,
    pop: String,
}

/// Paths of the files of a key directory.
#[derive(Clone, Debug)]
pub struct KeyPaths {
    /// The directory.
    pub dir: PathBuf,
    /// BLS keystore.
    pub validator_keystore: PathBuf,
    /// Proof of possession.
    pub validator_pop: PathBuf,
    /// Account keystore.
    pub account_keystore: PathBuf,
    /// Network keystore.
    pub network_keystore: PathBuf,
}

impl KeyPaths {
    /// The files of `dir`.
    pub fn new(dir: &Path) -> Self {
        KeyPaths {
            dir: dir.to_path_buf(),
            validator_keystore: dir.join(VALIDATOR_KEYSTORE_FILE),
            validator_pop: dir.join(VALIDATOR_POP_FILE),
            account_keystore: dir.join(ACCOUNT_KEYSTORE_FILE),
            network_keystore: dir.join(NETWORK_KEYSTORE_FILE),
        }
    }

    fn all(&self) -> [&Path; 4] {
        [
            &self.validator_keystore,
            &self.validator_pop,
            &self.account_keystore,
            &self.network_keystore,
        ]
    }

    /// Fail, saying what to do, if keys could not be written here: the directory exists and is
    /// open to others, or (without `force`) a key file already exists.
    pub fn check_writable(&self, force: bool) -> Result<()> {
        match fs::metadata(&self.dir) {
            Ok(m) if !m.is_dir() => bail!("{} exists and is not a directory", self.dir.display()),
            Ok(m) => check_dir_mode(&self.dir, m.permissions().mode())?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", self.dir.display()))
            }
        }
        if !force {
            let existing: Vec<String> = self
                .all()
                .iter()
                .filter(|p| fs::symlink_metadata(p).is_ok())
                .map(|p| p.display().to_string())
                .collect();
            if !existing.is_empty() {
                bail!(
                    "keys already exist: {}; refusing to overwrite them. Use another --dir, or \
                     pass --force to replace them (the old keys are lost unless backed up)",
                    existing.join(", ")
                );
            }
        }
        Ok(())
    }

    /// Encrypt `keys` under `password` and write the four files. Creates the directory (0700)
    /// if needed. Without `force`, fails rather than replace an existing file.
    pub fn write(
        &self,
        keys: &ValidatorKeys,
        password: &str,
        preset: KdfPreset,
        force: bool,
    ) -> Result<PublicKeys> {
        self.check_writable(force)?;
        ensure_key_dir(&self.dir)?;
        let public = keys.public_keys();
        let mut rng = OsRng;

        let bls_keystore = Keystore::encrypt(
            &keys.bls.to_bytes(),
            password,
            preset,
            KeystoreMeta {
                description: BLS_DESCRIPTION.to_string(),
                pubkey: public.bls_pubkey.to_hex(),
                path: String::new(),
                uuid: String::new(),
            },
            &mut rng,
        )
        .context("cannot encrypt the BLS key")?;
        let account_keystore =
            encrypt_ed25519(&keys.account, ACCOUNT_DESCRIPTION, password, preset)
                .context("cannot encrypt the account key")?;
        let network_keystore =
            encrypt_ed25519(&keys.network, NETWORK_DESCRIPTION, password, preset)
                .context("cannot encrypt the network key")?;
        let pop = PopFile {
            pubkey: public.bls_pubkey.to_hex(),
            pop: hex::encode(public.bls_pop.0.as_bytes()),
        };
        let mut pop_json = serde_json::to_string_pretty(&pop).context("cannot encode the PoP")?;
        pop_json.push('\n');

        write_file(
            &self.dir,
            &self.validator_keystore,
            bls_keystore.to_json().as_bytes(),
            SECRET_FILE_MODE,
            force,
        )?;
        write_file(
            &self.dir,
            &self.validator_pop,
            pop_json.as_bytes(),
            PUBLIC_FILE_MODE,
            force,
        )?;
        write_file(
            &self.dir,
            &self.account_keystore,
            account_keystore.to_json().as_bytes(),
            SECRET_FILE_MODE,
            force,
        )?;
        write_file(
            &self.dir,
            &self.network_keystore,
            network_keystore.to_json().as_bytes(),
            SECRET_FILE_MODE,
            force,
        )?;
        sync_dir(&self.dir)?;
        Ok(public)
    }

    /// Read and check the files without the password (permissions, format, proof of
    /// possession), so errors come before a password prompt.
    pub fn open(&self) -> Result<KeyFiles> {
        match fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{} is not a directory", self.dir.display()),
            Err(e) if e.kind() == ErrorKind::NotFound => bail!(
                "key directory {} does not exist; create keys with `banyan keys generate --dir {}`",
                self.dir.display(),
                self.dir.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", self.dir.display()))
            }
        }
        let validator = read_keystore(&self.validator_keystore)?;
        let account = read_keystore(&self.account_keystore)?;
        let network = read_keystore(&self.network_keystore).with_context(|| {
            format!(
                "this key directory has no separate network key (directories made before \
                 network keys were split from account keys lack it); make a new key directory \
                 with `banyan keys generate` and re-stake from it, or copy {} from one",
                NETWORK_KEYSTORE_FILE
            )
        })?;
        let (pop_pubkey, pop) = read_pop(&self.validator_pop)?;

        let bls_pubkey =
            BlsPublicKey::from_bytes(&hex::decode(&validator.meta().pubkey).unwrap_or_default())
                .with_context(|| {
                    format!(
                        "{}: the `pubkey` field is not a valid BLS public key",
                        self.validator_keystore.display()
                    )
                })?;
        if pop_pubkey != bls_pubkey {
            bail!(
                "{} is for BLS key {}, but {} holds key {}; the directory mixes files of \
                 different validators",
                self.validator_pop.display(),
                pop_pubkey.to_hex(),
                self.validator_keystore.display(),
                bls_pubkey.to_hex()
            );
        }
        pop.verify(&bls_pubkey).with_context(|| {
            format!(
                "{}: the proof of possession does not verify",
                self.validator_pop.display()
            )
        })?;
        let account_pubkey = ed25519_pubkey(&account, &self.account_keystore)?;
        let network_pubkey = ed25519_pubkey(&network, &self.network_keystore)?;
        if account_pubkey == network_pubkey {
            bail!(
                "{} holds the account key: the network key must be a key of its own",
                self.network_keystore.display()
            );
        }
        Ok(KeyFiles {
            paths: self.clone(),
            validator,
            account,
            network,
            pop,
        })
    }
}

/// A key directory whose files were read and checked, not yet decrypted.
pub struct KeyFiles {
    paths: KeyPaths,
    validator: Keystore,
    account: Keystore,
    network: Keystore,
    pop: ProofOfPossession,
}

impl KeyFiles {
    /// Whether any keystore uses KDF parameters cheaper than the EIP-2335 defaults.
    pub fn has_weak_kdf(&self) -> bool {
        [&self.validator, &self.account, &self.network]
            .iter()
            .any(|k| k.kdf().is_weaker_than_standard())
    }

    /// Decrypt every keystore and check that the keys inside match the public keys written
    /// beside them.
    pub fn decrypt(&self, password: &str) -> Result<(ValidatorKeys, PublicKeys)> {
        let paths = &self.paths;
        let bls_secret = self.validator.decrypt(password).with_context(|| {
            format!(
                "cannot decrypt {}; check the password (--password-file or \
                 BANYAN_KEYSTORE_PASSWORD)",
                paths.validator_keystore.display()
            )
        })?;
        let bls = BlsSecretKey::from_bytes(&bls_secret[..]).with_context(|| {
            format!(
                "{} decrypts to an invalid BLS secret key",
                paths.validator_keystore.display()
            )
        })?;
        let keys = ValidatorKeys {
            bls,
            account: decrypt_ed25519(&self.account, &paths.account_keystore, password)?,
            network: decrypt_ed25519(&self.network, &paths.network_keystore, password)?,
        };
        let bls_pubkey = keys.bls.public_key();
        if bls_pubkey.to_hex() != self.validator.meta().pubkey {
            bail!(
                "{}: the key inside has public key {}, not the {} written in the file; the file \
                 was altered",
                paths.validator_keystore.display(),
                bls_pubkey.to_hex(),
                self.validator.meta().pubkey
            );
        }
        let account_pubkey = keys.account.public_key();
        let public = PublicKeys {
            validator_id: bls_pubkey.validator_id(),
            bls_pubkey,
            bls_pop: self.pop,
            account_pubkey,
            account_address: account_pubkey.address(),
            network_pubkey: keys.network.public_key(),
        };
        Ok((keys, public))
    }
}

/// An ed25519 keystore of `key` (its public key in `pubkey`, `path` empty).
fn encrypt_ed25519(
    key: &AccountSecretKey,
    description: &str,
    password: &str,
    preset: KdfPreset,
) -> Result<Keystore> {
    Ok(Keystore::encrypt(
        &key.to_bytes(),
        password,
        preset,
        KeystoreMeta {
            description: description.to_string(),
            pubkey: hex::encode(key.public_key().as_bytes()),
            path: String::new(),
            uuid: String::new(),
        },
        &mut OsRng,
    )?)
}

/// The public key an ed25519 keystore (read from `path`) says it holds.
fn ed25519_pubkey(keystore: &Keystore, path: &Path) -> Result<AccountPublicKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&keystore.meta().pubkey, &mut bytes)
        .ok()
        .and_then(|()| AccountPublicKey::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            anyhow!(
                "{}: the `pubkey` field is not a valid ed25519 public key",
                path.display()
            )
        })
}

/// Decrypt an ed25519 keystore and check the key inside against the public key written in it.
fn decrypt_ed25519(keystore: &Keystore, path: &Path, password: &str) -> Result<AccountSecretKey> {
    let secret = keystore.decrypt(password).with_context(|| {
        format!(
            "cannot decrypt {}; every keystore of a directory uses the same password",
            path.display()
        )
    })?;
    let key = AccountSecretKey::from_bytes(&secret);
    let public = hex::encode(key.public_key().as_bytes());
    if public != keystore.meta().pubkey {
        bail!(
            "{}: the key inside has public key {public}, not the {} written in the file; the \
             file was altered",
            path.display(),
            keystore.meta().pubkey
        );
    }
    Ok(key)
}

fn check_dir_mode(dir: &Path, mode: u32) -> Result<()> {
    if mode & GROUP_OTHER_BITS != 0 {
        bail!(
            "key directory {} has mode {:04o}, open to other users; run `chmod 700 {}` or use a \
             new directory",
            dir.display(),
            mode & 0o7777,
            dir.display()
        );
    }
    Ok(())
}

fn ensure_key_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => check_dir_mode(dir, m.permissions().mode()),
        Ok(_) => bail!("{} exists and is not a directory", dir.display()),
        Err(e) if e.kind() == ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(KEY_DIR_MODE)
            .create(dir)
            .with_context(|| format!("cannot create key directory {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", dir.display())),
    }
}

/// Write `contents` to `target` through a temporary file created with `mode`.
fn write_file(dir: &Path, target: &Path, contents: &[u8], mode: u32, force: bool) -> Result<()> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("bad file name {}", target.display()))?;
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", OsRng.next_u64()));
    let result = write_then_move(&tmp, target, contents, mode, force);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_move(
    tmp: &Path,
    target: &Path,
    contents: &[u8],
    mode: u32,
    force: bool,
) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    if force {
        fs::rename(tmp, target)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), target.display()))?;
    } else {
        // A hard link fails if the target exists: no check-then-write race.
        fs::hard_link(tmp, target).map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                anyhow!(
                    "{} already exists; refusing to overwrite it (pass --force to replace it)",
                    target.display()
                )
            } else {
                anyhow!(e).context(format!("cannot create {}", target.display()))
            }
        })?;
        fs::remove_file(tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Open `path`, refuse it if it is not a regular file or is open to group/others, and read at
/// most `max` bytes.
fn read_private_or_public(path: &Path, max: usize, private: bool) -> Result<String> {
    let f = File::open(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            anyhow!(
                "{} is missing; create keys with `banyan keys generate --dir {}`",
                path.display(),
                path.parent().unwrap_or(Path::new(".")).display()
            )
        } else {
            anyhow!(e).context(format!("cannot open {}", path.display()))
        }
    })?;
    let meta = f
        .metadata()
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mode = meta.permissions().mode();
    if private && mode & GROUP_OTHER_BITS != 0 {
        bail!(
            "keystore {} has mode {:04o}, so other users can read or change it; refusing to use \
             it. Run `chmod 600 {}`, and if others may have copied it, treat the key as \
             compromised and generate new keys",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    if meta.len() > max as u64 {
        bail!(
            "{} is {} bytes, more than the {max} allowed",
            path.display(),
            meta.len()
        );
    }
    let mut s = String::new();
    f.take(max as u64 + 1)
        .read_to_string(&mut s)
        .with_context(|| format!("cannot read {} (is it UTF-8 text?)", path.display()))?;
    if s.len() > max {
        bail!("{} is more than the {max} bytes allowed", path.display());
    }
    Ok(s)
}

fn read_keystore(path: &Path) -> Result<Keystore> {
    let json = read_private_or_public(path, MAX_KEYSTORE_JSON_BYTES, true)?;
    Keystore::from_json(&json)
        .with_context(|| format!("{} is not a valid keystore", path.display()))
}

fn read_pop(path: &Path) -> Result<(BlsPublicKey, ProofOfPossession)> {
    let json = read_private_or_public(path, MAX_POP_JSON_BYTES, false)?;
    let file: PopFile = serde_json::from_str(&json)
        .with_context(|| format!("{} is not a proof-of-possession file", path.display()))?;
    let pubkey = hex::decode(file.pubkey.strip_prefix("0x").unwrap_or(&file.pubkey))
        .map_err(anyhow::Error::from)
        .and_then(|b| BlsPublicKey::from_bytes(&b).map_err(anyhow::Error::from))
        .with_context(|| format!("{}: bad `pubkey`", path.display()))?;
    let pop = hex::decode(file.pop.strip_prefix("0x").unwrap_or(&file.pop))
        .map_err(anyhow::Error::from)
        .and_then(|b| BlsSignature::from_bytes(&b).map_err(anyhow::Error::from))
        .with_context(|| format!("{}: bad `pop`", path.display()))?;
    Ok((pubkey, ProofOfPossession(pop)))
}
