//! The command line's conventions, through the real binary: shell completions that the
//! shells accept, `banyan config validate` on a good config and on broken ones (each error
//! naming its line and the fix), and `banyan start --log-format json` writing one JSON object
//! per line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_banyan");

fn banyan(args: &[&str]) -> Output {
    Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run banyan")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_parse_in_their_shells() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef banyan"),
        ("fish", "complete -c banyan"),
    ] {
        let out = banyan(&["completions", shell]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "completions {shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell} script lacks {marker:?}");
        // Every command is offered, down to the new ones.
        for word in ["devnet", "sidechain", "validate", "completions"] {
            assert!(
                stdout.contains(word),
                "{shell} script does not offer {word}"
            );
        }
        let file = dir.path().join(format!("banyan.{shell}"));
        std::fs::write(&file, &stdout).expect("write script");
        if shell == "bash" {
            let check = Command::new("bash")
                .arg("-n")
                .arg(&file)
                .output()
                .expect("run bash -n");
            assert!(
                check.status.success(),
                "bash -n refuses the script: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            // Sourced for real, the completion function answers for a partial command.
            let script = format!(
                "source {}; COMP_WORDS=(banyan dev); COMP_CWORD=1; COMP_LINE='banyan dev'; \
                 COMP_POINT=10; _banyan banyan dev banyan; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                file.display()
            );
            let run = Command::new("bash")
                .args(["-c", &script])
                .output()
                .expect("run bash");
            let replies = String::from_utf8_lossy(&run.stdout);
            assert!(
                replies.lines().any(|l| l == "devnet"),
                "bash completion of `banyan dev` offered {replies:?} ({})",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
    let out = banyan(&["completions", "tcsh"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("possible values: bash, zsh, fish"));
}

/// A one-validator devnet made by `banyan devnet --init-only`; the node directory.
fn one_node(dir: &Path) -> PathBuf {
    let root = dir.join("net");
    let out = Command::new(EXE)
        .args([
            "devnet",
            "--init-only",
            "--no-demo",
            "--validators",
            "1",
            "--dir",
        ])
        .arg(&root)
        .output()
        .expect("run banyan devnet --init-only");
    assert!(out.status.success(), "devnet --init-only: {}", text(&out).1);
    root.join("v0")
}

/// Write `config.toml` with `edit` applied into a sibling file; validate it.
fn validate_edited(home: &Path, name: &str, edit: impl Fn(&str) -> String) -> (bool, String) {
    let good = std::fs::read_to_string(home.join("config.toml")).expect("read config");
    let file = home.join(name);
    std::fs::write(&file, edit(&good)).expect("write config");
    let out = banyan(&[
        "config",
        "validate",
        "--config",
        file.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
}

fn replace_line(text: &str, prefix: &str, with: &str) -> String {
    text.lines()
        .map(|l| if l.starts_with(prefix) { with } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn config_validate_names_the_line_and_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = one_node(dir.path());
    let good = std::fs::read_to_string(home.join("config.toml")).expect("read config");

    // Good: every check passes, the keys decrypt (the devnet's config names its password).
    let out = banyan(&[
        "config",
        "validate",
        "--home",
        home.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "good config refused: {stdout}{stderr}"
    );
    for ok in [
        "ok: syntax",
        "ok: values",
        "ok: keys:",
        "ok: genesis:",
        "ok: addresses:",
    ] {
        assert!(stdout.contains(ok), "no {ok:?} in {stdout}");
    }
    assert!(!stdout.contains("error:"), "{stdout}");

    // JSON output of the same.
    let out = banyan(&[
        "config",
        "validate",
        "--json",
        "--home",
        home.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(0));

    // A bad port: the line, the key and how to write an address.
    let rpc_line = line_of(&good, "rpc_listen");
    let (ok, said) = validate_edited(&home, "bad_port.toml", |t| {
        replace_line(t, "rpc_listen", "rpc_listen = \"127.0.0.1:70000\"")
    });
    assert!(!ok, "a port above 65535 passed: {said}");
    assert!(
        said.contains(&format!("bad_port.toml:{rpc_line}: rpc_listen:")),
        "{said}"
    );
    assert!(said.contains("invalid socket address"), "{said}");
    assert!(
        said.contains("fix: write the address as \"HOST:PORT\""),
        "{said}"
    );

    // Port 0 parses but cannot be told to peers.
    let p2p_line = line_of(&good, "p2p_listen");
    let (ok, said) = validate_edited(&home, "port_zero.toml", |t| {
        replace_line(t, "p2p_listen", "p2p_listen = \"127.0.0.1:0\"")
    });
    assert!(!ok, "port 0 passed: {said}");
    assert!(
        said.contains(&format!("port_zero.toml:{p2p_line}: p2p_listen:")),
        "{said}"
    );
    assert!(said.contains("fix: choose a fixed port"), "{said}");

    // An unknown key: its line, the keys the place takes, and to delete or respell it.
    let (ok, said) = validate_edited(&home, "unknown.toml", |t| {
        format!("# a node\nexecution_thread = 4\n{t}")
    });
    let unknown_line = 2;
    assert!(!ok, "an unknown key passed: {said}");
    assert!(
        said.contains(&format!("unknown.toml:{unknown_line}: execution_thread:")),
        "{said}"
    );
    assert!(said.contains("unknown field `execution_thread`"), "{said}");
    assert!(said.contains("`execution_threads`"), "{said}");
    assert!(
        said.contains("fix: delete this key or correct its spelling"),
        "{said}"
    );

    // A missing key file: the keys_dir line, which file, and how to make keys.
    let keys_line = line_of(&good, "keys_dir");
    let keystore = home.join("keys").join("validator.bls.json");
    let kept = home.join("validator.bls.json.kept");
    std::fs::rename(&keystore, &kept).expect("move the keystore away");
    let out = banyan(&[
        "config",
        "validate",
        "--home",
        home.to_str().expect("utf-8"),
    ]);
    std::fs::rename(&kept, &keystore).expect("put the keystore back");
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "a missing keystore passed: {stdout}");
    assert!(
        stdout.contains(&format!("config.toml:{keys_line}: keys_dir:")),
        "{stdout}"
    );
    assert!(stdout.contains("validator.bls.json is missing"), "{stdout}");
    assert!(stdout.contains("banyan keys generate --dir"), "{stdout}");
    assert!(
        stderr.contains("1 error in") && stderr.contains("run `banyan config validate` again"),
        "{stderr}"
    );

    // A wrong password is caught too, on the password_file line.
    let pw_line = line_of(&good, "password_file");
    let wrong = home.join("wrong-password");
    std::fs::write(&wrong, "not the password\n").expect("write password");
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let (ok, said) = validate_edited(&home, "wrong_pw.toml", |t| {
        replace_line(t, "password_file", "password_file = \"wrong-password\"")
    });
    assert!(!ok, "a wrong password passed: {said}");
    assert!(
        said.contains(&format!("wrong_pw.toml:{pw_line}: password_file:")),
        "{said}"
    );
    assert!(said.contains("cannot decrypt"), "{said}");
}

#[test]
fn start_logs_json_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = one_node(dir.path());
    let log = home.join("node.json.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(EXE)
        .args(["start", "--log-format", "json", "--home"])
        .arg(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("start the node");
    // A single validator commits on its own: wait for a few log lines.
    let start = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= 3 || start.elapsed() > Duration::from_secs(60) {
            break lines;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the node exited ({status}): {text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.len() >= 3, "the node logged only {lines:?}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(v.get(field).is_some(), "no {field} in {line}");
        }
        assert!(
            v.get("message").is_some(),
            "no message in {line} (events are flattened)"
        );
    }
}
