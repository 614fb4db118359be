//! Encrypt and decrypt 32-byte secrets in EIP-2335 (version 4) keystores.
//!
//! The format is the one Ethereum consensus clients use for BLS keys
//! (<https://eips.ethereum.org/EIPS/eip-2335>): a JSON object whose `crypto` module holds a KDF,
//! a checksum and a cipher.
//!
//! - **Password.** NFKD-normalised, then the control codes C0 (`U+0000..=U+001F`), Delete
//!   (`U+007F`) and C1 (`U+0080..=U+009F`) are removed, then UTF-8 encoded
//!   ([`normalize_password`]). So a trailing newline in a password file does not matter.
//! - **KDF.** `scrypt` or `pbkdf2` (`hmac-sha256`) turns the password into a 32-byte
//!   decryption key. Both are read; new keystores use scrypt with [`KdfPreset::Standard`]
//!   (n = 2^18, r = 8, p = 1, as EIP-2335 recommends), or the explicitly named
//!   [`KdfPreset::InsecureFastForTestsOnly`] for tests and devnets.
//! - **Checksum.** `SHA-256(decryption_key[16..32] || cipher.message)`. It is checked before
//!   anything is decrypted, so a wrong password is reported as such ([`KeystoreError::WrongPassword`]).
//! - **Cipher.** `aes-128-ctr` keyed by `decryption_key[0..16]`, the 16-byte `iv` as the
//!   initial big-endian counter.
//!
//! Parsing ([`Keystore::from_json`]) validates every field before any work is done: hex and
//! lengths, the function names, and bounds on the KDF parameters (`dklen` must be 32, scrypt
//! memory and work and pbkdf2 rounds are capped by the `MAX_*` constants), so a malicious file
//! can neither crash the process nor make it allocate gigabytes or spin for minutes.
//!
//! Banyan only stores 32-byte secrets (a BLS12-381 scalar, an ed25519 seed), so the cipher
//! message must be exactly 32 bytes. Decrypted secrets and derived keys live in [`Zeroizing`]
//! buffers. This module does no file I/O; `key_dir` reads and writes the files.

use aes::cipher::{KeyIvInit, StreamCipher};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

#[cfg(test)]
mod tests;

/// The keystore format version this module reads and writes.
pub const KEYSTORE_VERSION: u32 = 4;
/// Bytes of a stored secret (a BLS scalar or an ed25519 seed).
pub const SECRET_BYTES: usize = 32;
/// Bytes of the derived decryption key (`dklen`); EIP-2335 fixes it at 32.
pub const DERIVED_KEY_BYTES: usize = 32;
/// Bytes of the AES-128-CTR initial counter.
pub const IV_BYTES: usize = 16;
/// Bytes of the salt written into new keystores.
pub const SALT_BYTES: usize = 32;
/// Largest salt accepted when reading.
pub const MAX_SALT_BYTES: usize = 1024;
/// Largest keystore JSON accepted, checked before parsing.
pub const MAX_KEYSTORE_JSON_BYTES: usize = 64 * 1024;
/// Largest scrypt `n` accepted when reading, as a power of two (2^20).
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// Largest scrypt `r` accepted when reading.
pub const MAX_SCRYPT_R: u32 = 32;
/// Largest scrypt `p` accepted when reading.
pub const MAX_SCRYPT_P: u32 = 16;
/// Largest scrypt working memory accepted when reading (`128 * r * (n + p)` bytes): twice what
/// the EIP-2335 default parameters need (256 MiB).
pub const MAX_SCRYPT_MEMORY_BYTES: u64 = 512 * 1024 * 1024;
/// Largest scrypt work (`n * r * p`) accepted when reading: four times the EIP-2335 default.
pub const MAX_SCRYPT_WORK: u64 = 4 * (1 << 18) * 8;
/// Largest pbkdf2 round count (`c`) accepted when reading: sixteen times the EIP-2335 default.
pub const MAX_PBKDF2_ROUNDS: u32 = 16 * 262_144;

const SCRYPT: &str = "scrypt";
const PBKDF2: &str = "pbkdf2";
const HMAC_SHA256: &str = "hmac-sha256";
const SHA256: &str = "sha256";
const AES_128_CTR: &str = "aes-128-ctr";

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Why a keystore could not be read, written or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeystoreError {
    /// The JSON is larger than [`MAX_KEYSTORE_JSON_BYTES`].
    #[error("keystore is {0} bytes, more than the {MAX_KEYSTORE_JSON_BYTES} allowed")]
    TooLarge(usize),
    /// Not JSON, or not shaped like an EIP-2335 keystore.
    #[error("not an EIP-2335 keystore: {0}")]
    Json(String),
    /// Well-formed JSON with a field that is wrong or unsupported.
    #[error("invalid keystore field `{field}`: {reason}")]
    Field {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The checksum does not match: the password is wrong (or the file was altered).
    #[error("wrong password (the keystore checksum does not match)")]
    WrongPassword,
}

impl KeystoreError {
    fn field(field: &'static str, reason: impl Into<String>) -> Self {
        KeystoreError::Field {
            field,
            reason: reason.into(),
        }
    }
}

/// Apply the EIP-2335 password processing: NFKD normalisation, then removal of the C0, Delete
/// and C1 control codes. The result is the UTF-8 bytes fed to the KDF.
pub fn normalize_password(password: &str) -> Zeroizing<Vec<u8>> {
    // Reserve generously so the buffer is unlikely to be reallocated (which would leave an
    // unwiped copy behind); NFKD rarely expands text by more than a few times.
    let mut out = Zeroizing::new(String::with_capacity(password.len().saturating_mul(4)));
    for c in password.nfkd().filter(|c| !is_control_code(*c)) {
        out.push(c);
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(out.len()));
    bytes.extend_from_slice(out.as_bytes());
    bytes
}

/// C0 control codes, Delete and C1 control codes (EIP-2335 "control codes removal").
fn is_control_code(c: char) -> bool {
    matches!(c, '\u{0000}'..='\u{001F}' | '\u{007F}'..='\u{009F}')
}

/// Key derivation function and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// scrypt with `n = 2^log_n`.
    Scrypt {
        /// log2 of the CPU/memory cost `n`.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
        /// Salt.
        salt: Vec<u8>,
    },
    /// PBKDF2 with HMAC-SHA256.
    Pbkdf2 {
        /// Iteration count.
        c: u32,
        /// Salt.
        salt: Vec<u8>,
    },
}

impl Kdf {
    /// Check the parameters against the `MAX_*` bounds (and scrypt's own rules).
    pub fn validate(&self) -> Result<(), KeystoreError> {
        match self {
            Kdf::Scrypt { log_n, r, p, salt } => {
                check_salt(salt)?;
                if *log_n == 0 || *log_n > MAX_SCRYPT_LOG_N {
                    return Err(KeystoreError::field(
                        "crypto.kdf.params.n",
                        format!("must be a power of two from 2 to 2^{MAX_SCRYPT_LOG_N}"),
                    ));
                }
                if *r == 0 || *r > MAX_SCRYPT_R {
                    return Err(KeystoreError::field(
                        "crypto.kdf.params.r",
                        format!("must be 1..={MAX_SCRYPT_R}"),
                    ));
                }
                if *p == 0 || *p > MAX_SCRYPT_P {
                    return Err(KeystoreError::field(
                        "crypto.kdf.params.p",
                        format!("must be 1..={MAX_SCRYPT_P}"),
                    ));
                }
                let n = 1u64 << log_n;
                let (r, p) = (u64::from(*r), u64::from(*p));
                // All factors are small (n <= 2^20, r <= 32, p <= 16): no overflow.
                let memory = 128 * r * (n + p);
                if memory > MAX_SCRYPT_MEMORY_BYTES {
                    return Err(KeystoreError::field(
                        "crypto.kdf.params",
                        format!(
                            "scrypt would need {memory} bytes of memory, more than the \
                             {MAX_SCRYPT_MEMORY_BYTES} allowed"
                        ),
                    ));
                }
                if n * r * p > MAX_SCRYPT_WORK {
                    return Err(KeystoreError::field(
                        "crypto.kdf.params",
                        format!(
                            "scrypt work n*r*p = {} is more than the {MAX_SCRYPT_WORK} allowed",
                            n * r * p
                        ),
                    ));
                }
                self.scrypt_params().map(|_| ())
            }
            Kdf::Pbkdf2 { c, salt } => {
                check_salt(salt)?;
                if *c == 0 || *c > MAX_PBKDF2_ROUNDS {
                    return Err(KeystoreError::field(
                        "crypto.kdf.params.c",
                        format!("must be 1..={MAX_PBKDF2_ROUNDS}"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Whether the parameters are cheaper than the EIP-2335 defaults (so a stolen file is
    /// cheaper to brute-force than it should be).
    pub fn is_weaker_than_standard(&self) -> bool {
        match self {
            Kdf::Scrypt { log_n, r, p, .. } => {
                let work = (1u64 << (*log_n).min(63)) * u64::from(*r) * u64::from(*p);
                work < (1u64 << 18) * 8
            }
            Kdf::Pbkdf2 { c, .. } => *c < 262_144,
        }
    }

    /// The EIP-2335 function name.
    pub fn function(&self) -> &'static str {
        match self {
            Kdf::Scrypt { .. } => SCRYPT,
            Kdf::Pbkdf2 { .. } => PBKDF2,
        }
    }

    fn scrypt_params(&self) -> Result<scrypt::Params, KeystoreError> {
        match self {
            Kdf::Scrypt { log_n, r, p, .. } => {
                scrypt::Params::new(*log_n, *r, *p, DERIVED_KEY_BYTES).map_err(|_| {
                    KeystoreError::field("crypto.kdf.params", "parameters rejected by scrypt")
                })
            }
            Kdf::Pbkdf2 { .. } => Err(KeystoreError::field("crypto.kdf.function", "not scrypt")),
        }
    }

    /// Derive the 32-byte decryption key. The parameters must have passed [`Kdf::validate`].
    fn derive(&self, password: &[u8]) -> Result<Zeroizing<[u8; DERIVED_KEY_BYTES]>, KeystoreError> {
        self.validate()?;
        let mut key = Zeroizing::new([0u8; DERIVED_KEY_BYTES]);
        match self {
            Kdf::Scrypt { salt, .. } => {
                let params = self.scrypt_params()?;
                scrypt::scrypt(password, salt, &params, &mut key[..]).map_err(|_| {
                    KeystoreError::field("crypto.kdf.params.dklen", "rejected by scrypt")
                })?;
            }
            Kdf::Pbkdf2 { c, salt } => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *c, &mut key[..]);
            }
        }
        Ok(key)
    }
}

fn check_salt(salt: &[u8]) -> Result<(), KeystoreError> {
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES {
        return Err(KeystoreError::field(
            "crypto.kdf.params.salt",
            format!("must be 1..={MAX_SALT_BYTES} bytes, is {}", salt.len()),
        ));
    }
    Ok(())
}

/// How expensive the KDF of a new keystore is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfPreset {
    /// scrypt n = 2^18, r = 8, p = 1 (EIP-2335's recommendation; ~256 MiB, about a second).
    Standard,
    /// scrypt n = 2^10, r = 8, p = 1 (1 MiB, milliseconds). For tests and throwaway devnets
    /// only: a stolen keystore made with it is cheap to brute-force.
    InsecureFastForTestsOnly,
}

impl KdfPreset {
    /// The scrypt parameters of this preset with `salt`.
    pub fn kdf(self, salt: Vec<u8>) -> Kdf {
        let log_n = match self {
            KdfPreset::Standard => 18,
            KdfPreset::InsecureFastForTestsOnly => 10,
        };
        Kdf::Scrypt {
            log_n,
            r: 8,
            p: 1,
            salt,
        }
    }
}

/// Public, descriptive fields of a keystore (everything but the `crypto` module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeystoreMeta {
    /// Free text saying what the key is.
    pub description: String,
    /// Hex of the public key of the stored secret (no `0x`).
    pub pubkey: String,
    /// EIP-2334 derivation path, or empty for a key not derived from a seed phrase.
    pub path: String,
    /// UUID of the keystore.
    pub uuid: String,
}

/// A parsed and validated EIP-2335 keystore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keystore {
    kdf: Kdf,
    checksum: [u8; 32],
    iv: [u8; IV_BYTES],
    ciphertext: [u8; SECRET_BYTES],
    meta: KeystoreMeta,
}

impl Keystore {
    /// Encrypt `secret` under `password` with fresh salt, IV and UUID from `rng`.
    pub fn encrypt<R: RngCore + CryptoRng>(
        secret: &[u8; SECRET_BYTES],
        password: &str,
        preset: KdfPreset,
        meta: KeystoreMeta,
        rng: &mut R,
    ) -> Result<Keystore, KeystoreError> {
        let mut salt = vec![0u8; SALT_BYTES];
        rng.fill_bytes(&mut salt);
        let mut iv = [0u8; IV_BYTES];
        rng.fill_bytes(&mut iv);
        let mut uuid_bytes = [0u8; 16];
        rng.fill_bytes(&mut uuid_bytes);
        let uuid = uuid::Builder::from_random_bytes(uuid_bytes).into_uuid();
        let meta = KeystoreMeta {
            uuid: uuid.hyphenated().to_string(),
            ..meta
        };
        Keystore::encrypt_with(secret, password, preset.kdf(salt), iv, meta)
    }

    /// Encrypt `secret` with a given KDF (salt included) and IV. Deterministic; [`Keystore::encrypt`]
    /// is the usual entry point, this one reproduces test vectors.
    pub fn encrypt_with(
        secret: &[u8; SECRET_BYTES],
        password: &str,
        kdf: Kdf,
        iv: [u8; IV_BYTES],
        meta: KeystoreMeta,
    ) -> Result<Keystore, KeystoreError> {
        let key = kdf.derive(&normalize_password(password))?;
        let mut ciphertext = *secret;
        apply_cipher(&key, &iv, &mut ciphertext);
        let checksum = checksum(&key, &ciphertext);
        Ok(Keystore {
            kdf,
            checksum,
            iv,
            ciphertext,
            meta,
        })
    }

    /// Recover the secret. The checksum is verified before decrypting, so a wrong password gives
    /// [`KeystoreError::WrongPassword`], never a wrong secret.
    pub fn decrypt(&self, password: &str) -> Result<Zeroizing<[u8; SECRET_BYTES]>, KeystoreError> {
        let key = self.kdf.derive(&normalize_password(password))?;
        if checksum(&key, &self.ciphertext) != self.checksum {
            return Err(KeystoreError::WrongPassword);
        }
        let mut secret = Zeroizing::new(self.ciphertext);
        apply_cipher(&key, &self.iv, &mut secret[..]);
        Ok(secret)
    }

    /// The KDF and its parameters.
    pub fn kdf(&self) -> &Kdf {
        &self.kdf
    }

    /// Description, public key, path and UUID.
    pub fn meta(&self) -> &KeystoreMeta {
        &self.meta
    }

    /// Parse and validate keystore JSON. Never panics; refuses input over
    /// [`MAX_KEYSTORE_JSON_BYTES`] and KDF parameters over the `MAX_*` bounds.
    pub fn from_json(json: &str) -> Result<Keystore, KeystoreError> {
        if json.len() > MAX_KEYSTORE_JSON_BYTES {
            return Err(KeystoreError::TooLarge(json.len()));
        }
        let raw: RawKeystore =
            serde_json::from_str(json).map_err(|e| KeystoreError::Json(e.to_string()))?;
        Keystore::from_raw(raw)
    }

    /// Pretty-printed JSON (EIP-2335 field names), with a trailing newline.
    pub fn to_json(&self) -> String {
        let raw = self.to_raw();
        // Serialising plain structs of strings and integers to a String cannot fail.
        let mut s = serde_json::to_string_pretty(&raw).unwrap_or_default();
        s.push('\n');
        s
    }

    fn from_raw(raw: RawKeystore) -> Result<Keystore, KeystoreError> {
        if raw.version != KEYSTORE_VERSION {
            return Err(KeystoreError::field(
                "version",
                format!("is {}, only {KEYSTORE_VERSION} is supported", raw.version),
            ));
        }
        let crypto = raw.crypto;
        let kdf = parse_kdf(&crypto.kdf)?;
        kdf.validate()?;
        if crypto.checksum.function != SHA256 {
            return Err(KeystoreError::field(
                "crypto.checksum.function",
                format!(
                    "`{}` is not supported, only `{SHA256}`",
                    crypto.checksum.function
                ),
            ));
        }
        let checksum = decode_hex_array::<32>("crypto.checksum.message", &crypto.checksum.message)?;
        if crypto.cipher.function != AES_128_CTR {
            return Err(KeystoreError::field(
                "crypto.cipher.function",
                format!(
                    "`{}` is not supported, only `{AES_128_CTR}`",
                    crypto.cipher.function
                ),
            ));
        }
        let iv = decode_hex_array::<IV_BYTES>("crypto.cipher.params.iv", &crypto.cipher.params.iv)?;
        let ciphertext =
            decode_hex_array::<SECRET_BYTES>("crypto.cipher.message", &crypto.cipher.message)?;
        let pubkey = strip_0x(&raw.pubkey).to_ascii_lowercase();
        if !pubkey.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeystoreError::field("pubkey", "not hex"));
        }
        Ok(Keystore {
            kdf,
            checksum,
            iv,
            ciphertext,
            meta: KeystoreMeta {
                description: raw.description,
                pubkey,
                path: raw.path,
                uuid: raw.uuid,
            },
        })
    }

    fn to_raw(&self) -> RawKeystore {
        let (function, params) = match &self.kdf {
            Kdf::Scrypt { log_n, r, p, salt } => (
                SCRYPT,
                RawKdfParams {
                    dklen: DERIVED_KEY_BYTES as u64,
                    n: Some(1u64 << log_n),
                    r: Some(u64::from(*r)),
                    p: Some(u64::from(*p)),
                    c: None,
                    prf: None,
                    salt: hex::encode(salt),
                },
            ),
            Kdf::Pbkdf2 { c, salt } => (
                PBKDF2,
                RawKdfParams {
                    dklen: DERIVED_KEY_BYTES as u64,
                    n: None,
                    r: None,
                    p: None,
                    c: Some(u64::from(*c)),
                    prf: Some(HMAC_SHA256.to_string()),
                    salt: hex::encode(salt),
                },
            ),
        };
        RawKeystore {
            crypto: RawCrypto {
                kdf: RawKdf {
                    function: function.to_string(),
                    params,
                    message: String::new(),
                },
                checksum: RawChecksum {
                    function: SHA256.to_string(),
                    params: serde_json::Map::new(),
                    message: hex::encode(self.checksum),
                },
                cipher: RawCipher {
                    function: AES_128_CTR.to_string(),
                    params: RawCipherParams {
                        iv: hex::encode(self.iv),
                    },
                    message: hex::encode(self.ciphertext),
                },
            },
            description: self.meta.description.clone(),
            pubkey: self.meta.pubkey.clone(),
            path: self.meta.path.clone(),
            uuid: self.meta.uuid.clone(),
            version: KEYSTORE_VERSION,
        }
    }
}

fn parse_kdf(raw: &RawKdf) -> Result<Kdf, KeystoreError> {
    let params = &raw.params;
    if params.dklen != DERIVED_KEY_BYTES as u64 {
        return Err(KeystoreError::field(
            "crypto.kdf.params.dklen",
            format!("is {}, must be {DERIVED_KEY_BYTES}", params.dklen),
        ));
    }
    let salt = decode_hex_bounded("crypto.kdf.params.salt", &params.salt, MAX_SALT_BYTES)?;
    match raw.function.as_str() {
        SCRYPT => {
            let n = params
                .n
                .ok_or_else(|| KeystoreError::field("crypto.kdf.params.n", "missing"))?;
            if n < 2 || !n.is_power_of_two() {
                return Err(KeystoreError::field(
                    "crypto.kdf.params.n",
                    format!("{n} is not a power of two of at least 2"),
                ));
            }
            // n is a power of two of u64, so the log fits in a u8.
            let log_n = u8::try_from(n.trailing_zeros())
                .map_err(|_| KeystoreError::field("crypto.kdf.params.n", "too large"))?;
            let r = small_u32("crypto.kdf.params.r", params.r)?;
            let p = small_u32("crypto.kdf.params.p", params.p)?;
            Ok(Kdf::Scrypt { log_n, r, p, salt })
        }
        PBKDF2 => {
            match params.prf.as_deref() {
                Some(HMAC_SHA256) => {}
                other => {
                    return Err(KeystoreError::field(
                        "crypto.kdf.params.prf",
                        format!("{other:?} is not supported, only `{HMAC_SHA256}`"),
                    ))
                }
            }
            let c = small_u32("crypto.kdf.params.c", params.c)?;
            Ok(Kdf::Pbkdf2 { c, salt })
        }
        other => Err(KeystoreError::field(
            "crypto.kdf.function",
            format!("`{other}` is not supported, only `{SCRYPT}` and `{PBKDF2}`"),
        )),
    }
}

fn small_u32(field: &'static str, value: Option<u64>) -> Result<u32, KeystoreError> {
    let v = value.ok_or_else(|| KeystoreError::field(field, "missing"))?;
    u32::try_from(v).map_err(|_| KeystoreError::field(field, format!("{v} is too large")))
}

fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x").unwrap_or(s)
}

fn decode_hex_bounded(field: &'static str, s: &str, max: usize) -> Result<Vec<u8>, KeystoreError> {
    let s = strip_0x(s);
    if s.len() > max.saturating_mul(2) {
        return Err(KeystoreError::field(
            field,
            format!("more than {max} bytes"),
        ));
    }
    hex::decode(s).map_err(|e| KeystoreError::field(field, format!("bad hex: {e}")))
}

fn decode_hex_array<const N: usize>(
    field: &'static str,
    s: &str,
) -> Result<[u8; N], KeystoreError> {
    let s = strip_0x(s);
    if s.len() != 2 * N {
        return Err(KeystoreError::field(
            field,
            format!(
                "must be {N} bytes ({} hex digits), has {} digits",
                2 * N,
                s.len()
            ),
        ));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out)
        .map_err(|e| KeystoreError::field(field, format!("bad hex: {e}")))?;
    Ok(out)
}

fn checksum(key: &[u8; DERIVED_KEY_BYTES], ciphertext: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&key[16..32]);
    h.update(ciphertext);
    h.finalize().into()
}

fn apply_cipher(key: &[u8; DERIVED_KEY_BYTES], iv: &[u8; IV_BYTES], data: &mut [u8]) {
    let mut aes_key = Zeroizing::new([0u8; 16]);
    aes_key.copy_from_slice(&key[..16]);
    let mut cipher = Aes128Ctr::new(&(*aes_key).into(), &(*iv).into());
    cipher.apply_keystream(data);
}

// ---------------------------------------------------------------------------------------------
// JSON shape. Unknown fields are ignored, as EIP-2335 readers do.

#[derive(Serialize, Deserialize)]
struct RawKeystore {
    crypto: RawCrypto,
    #[serde(default)]
    description: String,
    #[serde(default)]
    pubkey: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    uuid: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct RawCrypto {
    kdf: RawKdf,
    checksum: RawChecksum,
    cipher: RawCipher,
}

#[derive(Serialize, Deserialize)]
struct RawKdf {
    function: String,
    params: RawKdfParams,
    #[serde(default)]
    message: String,
}

#[derive(Serialize, Deserialize)]
struct RawKdfParams {
    dklen: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prf: Option<String>,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct RawChecksum {
    function: String,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct RawCipher {
    function: String,
    params: RawCipherParams,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct RawCipherParams {
    iv: String,
}
