//! Keystore tests: the official EIP-2335 vectors, wrong passwords, tampering, malformed input and
//! bounds on KDF parameters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use banyan_core::keys::{AccountSecretKey, BlsSecretKey};
use serde_json::json;

/// Password of the EIP-2335 test vectors; it normalises to "testpassword🔑".
const VECTOR_PASSWORD: &str = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";
const VECTOR_SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
const VECTOR_PUBKEY: &str = "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07";
const VECTOR_SALT: &str = "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3";
const VECTOR_IV: &str = "264daa3f303d7259501c93d997d84fe6";

/// EIP-2335 test case 1 (scrypt).
const SCRYPT_VECTOR: &str = r#"{
    "crypto": {
        "kdf": {
            "function": "scrypt",
            "params": {
                "dklen": 32,
                "n": 262144,
                "p": 1,
                "r": 8,
                "salt": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
            },
            "message": ""
        },
        "checksum": {
            "function": "sha256",
            "params": {},
            "message": "d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484"
        },
        "cipher": {
            "function": "aes-128-ctr",
            "params": {
                "iv": "264daa3f303d7259501c93d997d84fe6"
            },
            "message": "06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f"
        }
    },
    "description": "This is a test keystore that uses scrypt to secure the secret.",
    "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
    "path": "m/12381/60/3141592653/589793238",
    "uuid": "1d85ae20-35c5-4611-98e8-aa14a633906f",
    "version": 4
}"#;

/// EIP-2335 test case 2 (pbkdf2).
const PBKDF2_VECTOR: &str = r#"{
    "crypto": {
        "kdf": {
            "function": "pbkdf2",
            "params": {
                "dklen": 32,
                "c": 262144,
                "prf": "hmac-sha256",
                "salt": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
            },
            "message": ""
        },
        "checksum": {
            "function": "sha256",
            "params": {},
            "message": "8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1"
        },
        "cipher": {
            "function": "aes-128-ctr",
            "params": {
                "iv": "264daa3f303d7259501c93d997d84fe6"
            },
            "message": "cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad"
        }
    },
    "description": "This is a test keystore that uses PBKDF2 to secure the secret.",
    "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
    "path": "m/12381/60/0/0",
    "uuid": "64625def-3331-4eea-ab6f-782f3ed16a83",
    "version": 4
}"#;

fn vector_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    hex::decode_to_slice(VECTOR_SECRET, &mut s).unwrap();
    s
}

fn meta(pubkey: &str) -> KeystoreMeta {
    KeystoreMeta {
        description: "test".into(),
        pubkey: pubkey.into(),
        path: String::new(),
        uuid: "00000000-0000-4000-8000-000000000000".into(),
    }
}

/// A fast keystore for the tests that are not about the vectors.
fn fast_keystore(password: &str) -> Keystore {
    let mut rng = rand_core::OsRng;
    Keystore::encrypt(
        &vector_secret(),
        password,
        KdfPreset::InsecureFastForTestsOnly,
        meta(VECTOR_PUBKEY),
        &mut rng,
    )
    .unwrap()
}

/// Edit the JSON of `ks` and re-parse it.
fn edit(ks: &Keystore, f: impl FnOnce(&mut serde_json::Value)) -> Result<Keystore, KeystoreError> {
    let mut v: serde_json::Value = serde_json::from_str(&ks.to_json()).unwrap();
    f(&mut v);
    Keystore::from_json(&v.to_string())
}

fn check_vector(json: &str, expected_kdf: Kdf) {
    let ks = Keystore::from_json(json).unwrap();
    assert_eq!(*ks.kdf(), expected_kdf);
    assert!(!ks.kdf().is_weaker_than_standard());
    let secret = ks.decrypt(VECTOR_PASSWORD).unwrap();
    assert_eq!(hex::encode(*secret), VECTOR_SECRET);
    // The decrypted secret is the BLS key whose public key the vector names.
    let pk = BlsSecretKey::from_bytes(&secret[..]).unwrap().public_key();
    assert_eq!(pk.to_hex(), VECTOR_PUBKEY);
    assert_eq!(ks.meta().pubkey, VECTOR_PUBKEY);
    // Encrypting the same secret with the vector's salt and IV reproduces the file's crypto.
    let again = Keystore::encrypt_with(
        &vector_secret(),
        VECTOR_PASSWORD,
        expected_kdf,
        *hex::decode(VECTOR_IV).unwrap().first_chunk::<16>().unwrap(),
        ks.meta().clone(),
    )
    .unwrap();
    assert_eq!(again, ks);
}

#[test]
fn eip2335_scrypt_vector() {
    let salt = hex::decode(VECTOR_SALT).unwrap();
    check_vector(
        SCRYPT_VECTOR,
        Kdf::Scrypt {
            log_n: 18,
            r: 8,
            p: 1,
            salt,
        },
    );
}

#[test]
fn eip2335_pbkdf2_vector() {
    let salt = hex::decode(VECTOR_SALT).unwrap();
    check_vector(PBKDF2_VECTOR, Kdf::Pbkdf2 { c: 262_144, salt });
}

#[test]
fn eip2335_vector_password_normalization() {
    // The vectors give the encoded password: "testpassword🔑" as UTF-8.
    assert_eq!(
        hex::encode(&*normalize_password(VECTOR_PASSWORD)),
        "7465737470617373776f7264f09f9491"
    );
}

#[test]
fn pbkdf2_vector_wrong_password() {
    let ks = Keystore::from_json(PBKDF2_VECTOR).unwrap();
    assert_eq!(
        ks.decrypt("testpassword").unwrap_err(),
        KeystoreError::WrongPassword
    );
}

#[test]
fn password_normalization_strips_control_codes() {
    let stripped = normalize_password("a\u{0000}b\u{001f}c\u{007f}d\u{0080}e\u{009f}f\n\r\t");
    assert_eq!(&*stripped, b"abcdef");
    // U+00A0 (no-break space) is not a control code; NFKD makes it a plain space.
    assert_eq!(&*normalize_password("a\u{00a0}b"), b"a b");
}

#[test]
fn password_normalization_is_nfkd() {
    // Precomposed and decomposed forms of "é" are the same password.
    assert_eq!(
        normalize_password("caf\u{00e9}"),
        normalize_password("cafe\u{0301}")
    );
    // Compatibility forms fold: the "ﬁ" ligature is "fi".
    assert_eq!(&*normalize_password("\u{fb01}"), b"fi");
}

#[test]
fn trailing_newline_does_not_change_the_key() {
    let ks = fast_keystore("hunter2");
    assert_eq!(
        hex::encode(*ks.decrypt("hunter2\n").unwrap()),
        VECTOR_SECRET
    );
    assert_eq!(
        hex::encode(*ks.decrypt("hunter2\r\n").unwrap()),
        VECTOR_SECRET
    );
}

#[test]
fn round_trip_through_json() {
    let ks = fast_keystore("correct horse");
    let json = ks.to_json();
    let back = Keystore::from_json(&json).unwrap();
    assert_eq!(back, ks);
    assert!(back.kdf().is_weaker_than_standard());
    assert_eq!(
        hex::encode(*back.decrypt("correct horse").unwrap()),
        VECTOR_SECRET
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], 4);
    assert_eq!(v["crypto"]["kdf"]["function"], "scrypt");
    assert_eq!(v["crypto"]["checksum"]["function"], "sha256");
    assert_eq!(v["crypto"]["cipher"]["function"], "aes-128-ctr");
    assert!(uuid::Uuid::parse_str(&back.meta().uuid).is_ok());
}

#[test]
fn fresh_keystores_differ() {
    let a = fast_keystore("pw");
    let b = fast_keystore("pw");
    assert_ne!(a.to_json(), b.to_json());
}

#[test]
fn wrong_password_is_reported() {
    let ks = fast_keystore("right");
    assert_eq!(
        ks.decrypt("wrong").unwrap_err(),
        KeystoreError::WrongPassword
    );
    assert_eq!(ks.decrypt("").unwrap_err(), KeystoreError::WrongPassword);
}

#[test]
fn tampered_checksum_or_cipher_is_refused() {
    let ks = fast_keystore("pw");
    let flip = |s: &str| {
        let mut b = hex::decode(s).unwrap();
        b[0] ^= 1;
        hex::encode(b)
    };
    let t = edit(&ks, |v| {
        let m = v["crypto"]["checksum"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        v["crypto"]["checksum"]["message"] = flip(&m).into();
    })
    .unwrap();
    assert_eq!(t.decrypt("pw").unwrap_err(), KeystoreError::WrongPassword);
    let t = edit(&ks, |v| {
        let m = v["crypto"]["cipher"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        v["crypto"]["cipher"]["message"] = flip(&m).into();
    })
    .unwrap();
    assert_eq!(t.decrypt("pw").unwrap_err(), KeystoreError::WrongPassword);
    let t = edit(&ks, |v| {
        let m = v["crypto"]["kdf"]["params"]["salt"]
            .as_str()
            .unwrap()
            .to_string();
        v["crypto"]["kdf"]["params"]["salt"] = flip(&m).into();
    })
    .unwrap();
    assert_eq!(t.decrypt("pw").unwrap_err(), KeystoreError::WrongPassword);
}

#[test]
fn malformed_json_is_refused() {
    for bad in [
        "",
        "null",
        "[]",
        "{",
        "{\"version\":4}",
        "\u{0}",
        "{\"crypto\":1,\"version\":4}",
    ] {
        assert!(
            matches!(Keystore::from_json(bad), Err(KeystoreError::Json(_))),
            "{bad:?}"
        );
    }
    let huge = " ".repeat(MAX_KEYSTORE_JSON_BYTES + 1);
    assert_eq!(
        Keystore::from_json(&huge).unwrap_err(),
        KeystoreError::TooLarge(MAX_KEYSTORE_JSON_BYTES + 1)
    );
    // Deep nesting is refused by serde_json's recursion limit, not by a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Keystore::from_json(&deep).is_err());
}

fn field_error(r: Result<Keystore, KeystoreError>) -> &'static str {
    match r {
        Err(KeystoreError::Field { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn bad_lengths_and_hex_are_refused() {
    let ks = fast_keystore("pw");
    // (field named in the error, JSON pointer to change, new value)
    let cases = [
        (
            "crypto.cipher.params.iv",
            "/crypto/cipher/params/iv",
            json!("00"),
        ),
        (
            "crypto.cipher.params.iv",
            "/crypto/cipher/params/iv",
            json!("zz".repeat(16)),
        ),
        (
            "crypto.cipher.message",
            "/crypto/cipher/message",
            json!("ab".repeat(33)),
        ),
        (
            "crypto.cipher.message",
            "/crypto/cipher/message",
            json!("abc"),
        ),
        (
            "crypto.checksum.message",
            "/crypto/checksum/message",
            json!(""),
        ),
        (
            "crypto.kdf.params.salt",
            "/crypto/kdf/params/salt",
            json!(""),
        ),
        (
            "crypto.kdf.params.salt",
            "/crypto/kdf/params/salt",
            json!("x1"),
        ),
        (
            "crypto.kdf.params.salt",
            "/crypto/kdf/params/salt",
            json!("00".repeat(MAX_SALT_BYTES + 1)),
        ),
        (
            "crypto.kdf.params.dklen",
            "/crypto/kdf/params/dklen",
            json!(64),
        ),
        (
            "crypto.kdf.params.dklen",
            "/crypto/kdf/params/dklen",
            json!(16),
        ),
        (
            "crypto.kdf.function",
            "/crypto/kdf/function",
            json!("argon2"),
        ),
        (
            "crypto.checksum.function",
            "/crypto/checksum/function",
            json!("sha512"),
        ),
        (
            "crypto.cipher.function",
            "/crypto/cipher/function",
            json!("aes-256-ctr"),
        ),
        ("version", "/version", json!(3)),
        ("pubkey", "/pubkey", json!("not hex!")),
    ];
    for (field, pointer, value) in cases {
        let r = edit(&ks, |v| *v.pointer_mut(pointer).unwrap() = value);
        assert_eq!(field_error(r), field, "{pointer}");
    }
    // Wrong JSON types are shape errors.
    assert!(matches!(
        edit(&ks, |v| v["crypto"]["kdf"]["params"]["n"] = (-1).into()),
        Err(KeystoreError::Json(_))
    ));
    assert!(matches!(
        edit(&ks, |v| v["crypto"]["cipher"]["params"]["iv"] = 7.into()),
        Err(KeystoreError::Json(_))
    ));
    // A 0x prefix on hex fields is tolerated.
    let ok = edit(&ks, |v| {
        let iv = v["crypto"]["cipher"]["params"]["iv"]
            .as_str()
            .unwrap()
            .to_string();
        v["crypto"]["cipher"]["params"]["iv"] = format!("0x{iv}").into();
    })
    .unwrap();
    assert_eq!(ok, ks);
}

#[test]
fn absurd_scrypt_params_are_refused_before_any_work() {
    let ks = fast_keystore("pw");
    let set = |n: u64, r: u64, p: u64| {
        edit(&ks, move |v| {
            let params = &mut v["crypto"]["kdf"]["params"];
            params["n"] = n.into();
            params["r"] = r.into();
            params["p"] = p.into();
        })
    };
    assert_eq!(field_error(set(1 << 40, 8, 1)), "crypto.kdf.params.n");
    assert_eq!(field_error(set(1 << 63, 8, 1)), "crypto.kdf.params.n");
    assert_eq!(field_error(set(u64::MAX, 8, 1)), "crypto.kdf.params.n");
    assert_eq!(field_error(set(1000, 8, 1)), "crypto.kdf.params.n");
    assert_eq!(field_error(set(0, 8, 1)), "crypto.kdf.params.n");
    assert_eq!(field_error(set(1, 8, 1)), "crypto.kdf.params.n");
    assert_eq!(field_error(set(1024, 0, 1)), "crypto.kdf.params.r");
    assert_eq!(field_error(set(1024, 1 << 20, 1)), "crypto.kdf.params.r");
    assert_eq!(field_error(set(1024, u64::MAX, 1)), "crypto.kdf.params.r");
    assert_eq!(field_error(set(1024, 8, 0)), "crypto.kdf.params.p");
    assert_eq!(field_error(set(1024, 8, 1 << 30)), "crypto.kdf.params.p");
    // Each within its own bound, but together over the memory bound (1 GiB) ...
    assert_eq!(field_error(set(1 << 20, 8, 1)), "crypto.kdf.params");
    // ... or over the work bound.
    assert_eq!(field_error(set(1 << 18, 8, 16)), "crypto.kdf.params");
    // The EIP-2335 default is accepted.
    assert!(set(1 << 18, 8, 1).is_ok());
    // Missing parameters.
    assert_eq!(
        field_error(edit(&ks, |v| {
            v["crypto"]["kdf"]["params"]
                .as_object_mut()
                .unwrap()
                .remove("n");
        })),
        "crypto.kdf.params.n"
    );
}

#[test]
fn absurd_pbkdf2_params_are_refused() {
    let ks = Keystore::from_json(PBKDF2_VECTOR).unwrap();
    let set_c = |c: u64| edit(&ks, move |v| v["crypto"]["kdf"]["params"]["c"] = c.into());
    assert_eq!(field_error(set_c(0)), "crypto.kdf.params.c");
    assert_eq!(
        field_error(set_c(u64::from(MAX_PBKDF2_ROUNDS) + 1)),
        "crypto.kdf.params.c"
    );
    assert_eq!(field_error(set_c(u64::MAX)), "crypto.kdf.params.c");
    assert_eq!(
        field_error(edit(&ks, |v| v["crypto"]["kdf"]["params"]["prf"] =
            "hmac-sha512".into())),
        "crypto.kdf.params.prf"
    );
    assert_eq!(
        field_error(edit(&ks, |v| {
            v["crypto"]["kdf"]["params"]
                .as_object_mut()
                .unwrap()
                .remove("prf");
        })),
        "crypto.kdf.params.prf"
    );
}

#[test]
fn encrypt_with_refuses_out_of_bounds_kdf() {
    let kdf = Kdf::Scrypt {
        log_n: 30,
        r: 8,
        p: 1,
        salt: vec![1; 32],
    };
    assert!(Keystore::encrypt_with(&vector_secret(), "pw", kdf, [0; 16], meta("")).is_err());
}

#[test]
fn unknown_fields_are_ignored() {
    let ks = fast_keystore("pw");
    let with_extra = edit(&ks, |v| {
        v["banyan_extra"] = "x".into();
        v["crypto"]["kdf"]["params"]["extra"] = 1.into();
    })
    .unwrap();
    assert_eq!(with_extra, ks);
}

#[test]
fn ed25519_seed_round_trips() {
    let mut rng = rand_core::OsRng;
    let sk = AccountSecretKey::generate(&mut rng);
    let pk = hex::encode(sk.public_key().as_bytes());
    let ks = Keystore::encrypt(
        &sk.to_bytes(),
        "pw",
        KdfPreset::InsecureFastForTestsOnly,
        meta(&pk),
        &mut rng,
    )
    .unwrap();
    let back = AccountSecretKey::from_bytes(&ks.decrypt("pw").unwrap());
    assert_eq!(hex::encode(back.public_key().as_bytes()), pk);
}
