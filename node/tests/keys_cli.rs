//! Runs the real `banyan` binary: `keys generate` and `keys show` in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PASSWORD: &str = "correct horse battery staple\n";

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    password_file: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let password_file = tmp.path().join("password.txt");
    fs::write(&password_file, PASSWORD).unwrap();
    fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).unwrap();
    Env {
        dir: tmp.path().join("keys"),
        password_file,
        _tmp: tmp,
    }
}

/// The binary with a clean password environment and no terminal on stdin.
fn banyan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_banyan"))
        .args(args)
        .env_remove("BANYAN_KEYSTORE_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn generate(e: &Env, extra: &[&str]) -> Output {
    let mut args = vec![
        "keys",
        "generate",
        "--dir",
        s(&e.dir),
        "--password-file",
        s(&e.password_file),
        "--insecure-fast-kdf",
        "--json",
    ];
    args.extend_from_slice(extra);
    banyan(&args)
}

fn show_json(e: &Env) -> serde_json::Value {
    let o = banyan(&[
        "keys",
        "show",
        "--dir",
        s(&e.dir),
        "--password-file",
        s(&e.password_file),
        "--json",
    ]);
    assert!(o.status.success(), "show failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn json_of(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "command failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn assert_fails_with(o: &Output, needles: &[&str]) {
    assert!(!o.status.success(), "expected failure, got success");
    assert!(o.stdout.is_empty(), "nothing on stdout on failure");
    let err = stderr(o);
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

#[test]
fn version_and_help() {
    let o = banyan(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        format!("banyan {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["--help"][..],
        &["keys", "--help"],
        &["keys", "generate", "--help"],
        &["keys", "show", "--help"],
    ] {
        let o = banyan(args);
        assert!(o.status.success(), "{args:?}");
        assert!(String::from_utf8(o.stdout)
            .unwrap()
            .contains("Usage: banyan"));
    }
    assert!(!banyan(&[]).status.success());
    assert!(!banyan(&["keys", "generate"]).status.success());
}

#[test]
fn generate_then_show_round_trip() {
    let e = env();
    let generated = json_of(&generate(&e, &[]));
    for field in [
        "validator_id",
        "bls_pubkey",
        "bls_pop",
        "account_pubkey",
        "account_address",
        "network_pubkey",
    ] {
        assert!(generated[field].is_string(), "{field}");
    }
    assert_ne!(
        generated["network_pubkey"], generated["account_pubkey"],
        "the network key is a key of its own"
    );
    assert_eq!(generated["bls_pubkey"].as_str().unwrap().len(), 96);
    assert_eq!(generated["bls_pop"].as_str().unwrap().len(), 192);
    assert_eq!(show_json(&e), generated);

    // The password may also come from the environment; text output names the same keys.
    let o = Command::new(env!("CARGO_BIN_EXE_banyan"))
        .args(["keys", "show", "--dir", s(&e.dir)])
        .env("BANYAN_KEYSTORE_PASSWORD", PASSWORD.trim_end())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for field in [
        "validator_id",
        "bls_pubkey",
        "bls_pop",
        "account_address",
        "network_pubkey",
    ] {
        assert!(text.contains(generated[field].as_str().unwrap()), "{field}");
    }
    assert!(
        !text.contains("crypto"),
        "no secrets or keystore content printed"
    );
}

#[test]
fn files_and_modes() {
    let e = env();
    let generated = json_of(&generate(&e, &[]));
    assert_eq!(mode(&e.dir), 0o700);
    let bls = e.dir.join("validator.bls.json");
    let account = e.dir.join("account.ed25519.json");
    let pop = e.dir.join("validator.bls.pop.json");
    assert_eq!(mode(&bls), 0o600);
    let network = e.dir.join("network.ed25519.json");
    assert_eq!(mode(&account), 0o600);
    assert_eq!(mode(&network), 0o600);
    assert_eq!(mode(&pop), 0o644);
    // Nothing else (no leftover temporary files).
    assert_eq!(fs::read_dir(&e.dir).unwrap().count(), 4);

    let bls_json: serde_json::Value = serde_json::from_slice(&fs::read(&bls).unwrap()).unwrap();
    assert_eq!(bls_json["version"], 4);
    assert_eq!(bls_json["description"], "banyan validator BLS key");
    assert_eq!(bls_json["pubkey"], generated["bls_pubkey"]);
    assert_eq!(bls_json["crypto"]["kdf"]["function"], "scrypt");
    let account_json: serde_json::Value =
        serde_json::from_slice(&fs::read(&account).unwrap()).unwrap();
    assert_eq!(account_json["description"], "banyan account ed25519 key");
    assert_eq!(account_json["pubkey"], generated["account_pubkey"]);
    assert_eq!(account_json["path"], "");
    let network_json: serde_json::Value =
        serde_json::from_slice(&fs::read(&network).unwrap()).unwrap();
    assert_eq!(
        network_json["description"],
        "banyan node network (QUIC/TLS) ed25519 key"
    );
    assert_eq!(network_json["pubkey"], generated["network_pubkey"]);
    let pop_json: serde_json::Value = serde_json::from_slice(&fs::read(&pop).unwrap()).unwrap();
    assert_eq!(pop_json["pubkey"], generated["bls_pubkey"]);
    assert_eq!(pop_json["pop"], generated["bls_pop"]);
}

#[test]
fn overwrite_needs_force() {
    let e = env();
    let first = json_of(&generate(&e, &[]));
    let o = generate(&e, &[]);
    assert_fails_with(&o, &["already exist", "--force"]);
    assert_eq!(show_json(&e), first, "refused generate left the keys alone");

    let second = json_of(&generate(&e, &["--force"]));
    assert_ne!(second["bls_pubkey"], first["bls_pubkey"]);
    assert_eq!(show_json(&e), second);
    assert_eq!(mode(&e.dir.join("validator.bls.json")), 0o600);
}

#[test]
fn wrong_password_is_a_clear_error() {
    let e = env();
    json_of(&generate(&e, &[]));
    fs::write(&e.password_file, "not the password").unwrap();
    let o = banyan(&[
        "keys",
        "show",
        "--dir",
        s(&e.dir),
        "--password-file",
        s(&e.password_file),
    ]);
    assert_fails_with(&o, &["wrong password", "validator.bls.json"]);
}

#[test]
fn password_file_open_to_others_is_refused() {
    let e = env();
    json_of(&generate(&e, &[]));
    fs::set_permissions(&e.password_file, fs::Permissions::from_mode(0o644)).unwrap();
    let o = banyan(&[
        "keys",
        "show",
        "--dir",
        s(&e.dir),
        "--password-file",
        s(&e.password_file),
    ]);
    assert_fails_with(&o, &["password file", "0644", "chmod 600"]);
}

#[test]
fn keystore_open_to_others_is_refused() {
    let e = env();
    json_of(&generate(&e, &[]));
    let account = e.dir.join("account.ed25519.json");
    fs::set_permissions(&account, fs::Permissions::from_mode(0o640)).unwrap();
    let o = banyan(&[
        "keys",
        "show",
        "--dir",
        s(&e.dir),
        "--password-file",
        s(&e.password_file),
    ]);
    assert_fails_with(&o, &["0640", "chmod 600", "account.ed25519.json"]);
}

#[test]
fn key_dir_open_to_others_is_refused() {
    let e = env();
    fs::create_dir(&e.dir).unwrap();
    fs::set_permissions(&e.dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_fails_with(&generate(&e, &[]), &["chmod 700"]);
}

#[test]
fn missing_password_source_is_explained() {
    let e = env();
    let o = banyan(&[
        "keys",
        "generate",
        "--dir",
        s(&e.dir),
        "--insecure-fast-kdf",
    ]);
    assert_fails_with(&o, &["--password-file", "BANYAN_KEYSTORE_PASSWORD"]);
    assert!(!e.dir.exists(), "nothing written without a password");
}

#[test]
fn empty_password_needs_insecure_flag() {
    let e = env();
    fs::write(&e.password_file, "\n").unwrap();
    let o = banyan(&[
        "keys",
        "generate",
        "--dir",
        s(&e.dir),
        "--password-file",
        s(&e.password_file),
    ]);
    assert_fails_with(&o, &["password is empty", "--insecure-fast-kdf"]);
    json_of(&generate(&e, &[]));
    show_json(&e);
}

#[test]
fn show_without_keys_says_how_to_make_them() {
    let e = env();
    let o = banyan(&[
        "keys",
        "show",
        "--dir",
        s(&e.dir),
        "--password-file",
        s(&e.password_file),
    ]);
    assert_fails_with(&o, &["banyan keys generate"]);
}

#[test]
fn mixed_or_tampered_files_are_refused() {
    let a = env();
    let b = env();
    json_of(&generate(&a, &[]));
    json_of(&generate(&b, &[]));
    // A proof of possession of another validator.
    fs::copy(
        b.dir.join("validator.bls.pop.json"),
        a.dir.join("validator.bls.pop.json"),
    )
    .unwrap();
    let o = banyan(&[
        "keys",
        "show",
        "--dir",
        s(&a.dir),
        "--password-file",
        s(&a.password_file),
    ]);
    assert_fails_with(&o, &["different validators"]);

    // A keystore whose `pubkey` field was changed to another valid key.
    let c = env();
    json_of(&generate(&c, &[]));
    let path = c.dir.join("validator.bls.json");
    let mut ks: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let pop: serde_json::Value =
        serde_json::from_slice(&fs::read(b.dir.join("validator.bls.pop.json")).unwrap()).unwrap();
    ks["pubkey"] = pop["pubkey"].clone();
    fs::write(&path, ks.to_string()).unwrap();
    fs::copy(
        b.dir.join("validator.bls.pop.json"),
        c.dir.join("validator.bls.pop.json"),
    )
    .unwrap();
    let o = banyan(&[
        "keys",
        "show",
        "--dir",
        s(&c.dir),
        "--password-file",
        s(&c.password_file),
    ]);
    assert_fails_with(&o, &["validator.bls.json", "was altered"]);
}
