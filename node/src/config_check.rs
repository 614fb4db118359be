//! `banyan config validate`: check a node's config file without starting the node.
//!
//! Everything `banyan start` reads before it opens the store is checked, and every problem
//! is reported (not only the first) with the line of the file it is on and what to do about
//! it: the TOML syntax and keys, the values, the key directory (and the keys' decryption when
//! the password is at hand), the genesis, the listen addresses (each port is bound for an
//! instant and released, to find one that is taken) and the peers' identities. Nothing is
//! written.

use crate::config::{read_small, NodeConfig};
use crate::key_dir::KeyPaths;
use anyhow::{bail, Result};
use serde::Serialize;
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::path::Path;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `banyan start` would fail, or the node could not work.
    Error,
    /// The node would start, but probably not as meant.
    Warning,
}

/// One problem in a config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The line of the file it is on (1-based), when it is on one.
    pub line: Option<usize>,
    /// The key at fault (`section.key` inside a table), or what was checked.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// What `banyan config validate` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The file checked.
    pub file: String,
    /// What was checked and found good.
    pub checked: Vec<String>,
    /// Problems, in file order where they have a line.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

/// Check the config at `path`.
pub fn check(path: &Path) -> Report {
    let mut report = Report {
        file: path.display().to_string(),
        ..Report::default()
    };
    let text = match read_small(path) {
        Ok(t) => t,
        Err(e) => {
            report.findings.push(Finding {
                severity: Severity::Error,
                line: None,
                key: "file".into(),
                message: format!("{e:#}"),
                fix: "pass the node directory `banyan init` made (--home DIR) or the config \
                      file itself (--config FILE); create one with `banyan init`"
                    .into(),
            });
            return report;
        }
    };
    let cfg = match NodeConfig::parse(&text, path) {
        Ok(cfg) => cfg,
        Err(e) => {
            report.findings.push(syntax_finding(&text, &e));
            return report;
        }
    };
    report
        .checked
        .push("syntax: every key known, every value of its type".into());
    Checker {
        text: &text,
        cfg: &cfg,
        report: &mut report,
    }
    .run();
    report.findings.sort_by_key(|f| {
        (
            f.line.unwrap_or(usize::MAX),
            f.severity == Severity::Warning,
        )
    });
    report
}

/// Check the config at `path` and print the report to `out`; fails if it found an error.
pub fn run(path: &Path, json: bool, out: &mut dyn Write) -> Result<()> {
    let report = check(path);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "checking {}", report.file)?;
        for c in &report.checked {
            writeln!(out, "ok: {c}")?;
        }
        for f in &report.findings {
            let what = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            match f.line {
                Some(line) => writeln!(
                    out,
                    "{what}: {}:{line}: {}: {}",
                    report.file, f.key, f.message
                )?,
                None => writeln!(out, "{what}: {}: {}: {}", report.file, f.key, f.message)?,
            }
            writeln!(out, "  fix: {}", f.fix)?;
        }
    }
    out.flush()?;
    match report.errors() {
        0 => Ok(()),
        n => bail!(
            "{n} error{} in {}; fix {} and run `banyan config validate` again",
            if n == 1 { "" } else { "s" },
            report.file,
            if n == 1 { "it" } else { "them" }
        ),
    }
}

/// A TOML or type error, with its line and the fix for its kind.
fn syntax_finding(text: &str, e: &toml::de::Error) -> Finding {
    let line = e.span().map(|span| line_of_offset(text, span.start));
    let message = e.message().trim().to_string();
    let source = line
        .and_then(|l| text.lines().nth(l - 1))
        .map(|l| format!(" (`{}`)", l.trim()))
        .unwrap_or_default();
    let fix = if message.starts_with("unknown field") {
        "delete this key or correct its spelling: the keys this place takes are listed above"
            .to_string()
    } else if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        format!(
            "add `{field} = ...` (`banyan init --force` rewrites a complete config and keeps \
             the data)"
        )
    } else if message.contains("socket address") {
        "write the address as \"HOST:PORT\" with a port from 1 to 65535, e.g. \
         \"127.0.0.1:8545\""
            .to_string()
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "give the key a value of the type named above (strings in double quotes, numbers \
         bare)"
            .to_string()
    } else {
        "correct the TOML at this line (https://toml.io)".to_string()
    };
    // The key the line sets, when it sets one.
    let key = line
        .and_then(|l| text.lines().nth(l - 1))
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('['))
        .unwrap_or("syntax");
    Finding {
        severity: Severity::Error,
        line,
        key: key.to_string(),
        message: format!("{message}{source}"),
        fix,
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The 1-based line where `key` is set in `section` (`None`: the top level).
fn key_line(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<&str> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = Some(t.trim_matches(|c| c == '[' || c == ']').trim());
            continue;
        }
        if current == section {
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// The 1-based line of the `n`-th (0-based) `[[table]]` header.
fn table_line(text: &str, table: &str, n: usize) -> Option<usize> {
    let header = format!("[[{table}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .nth(n)
        .map(|(i, _)| i + 1)
        .or_else(|| key_line(text, None, table))
}

struct Checker<'a> {
    text: &'a str,
    cfg: &'a NodeConfig,
    report: &'a mut Report,
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, key: &str, message: String, fix: &str) {
        let (section, name) = match key.split_once('.') {
            Some((s, k)) => (Some(s), k),
            None => (None, key),
        };
        self.report.findings.push(Finding {
            severity,
            line: key_line(self.text, section, name),
            key: key.to_string(),
            message,
            fix: fix.to_string(),
        });
    }

    fn run(&mut self) {
        self.values();
        self.keys();
        self.genesis();
        self.data_dir();
        self.addresses();
        self.peers();
    }

    fn values(&mut self) {
        let problems = self.cfg.value_problems();
        let rpc = self.cfg.rpc.problem();
        if problems.is_empty() && rpc.is_none() {
            self.report
                .checked
                .push("values: threads, test chains and [rpc] limits in range".into());
        }
        for p in problems {
            let key = match p.section {
                Some(s) => format!("{s}.{}", p.key),
                None => p.key.to_string(),
            };
            self.push(
                Severity::Error,
                &key,
                p.message,
                "change the value as the message says",
            );
        }
        if let Some((key, why)) = rpc {
            self.push(
                Severity::Error,
                &format!("rpc.{key}"),
                why,
                "change the value as the message says, or delete the key to use its default",
            );
        }
    }

    fn keys(&mut self) {
        let dir = &self.cfg.keys_dir;
        let files = match KeyPaths::new(dir).open() {
            Ok(files) => files,
            Err(e) => {
                self.push(
                    Severity::Error,
                    "keys_dir",
                    format!("{e:#}"),
                    "point keys_dir at the directory `banyan keys generate` made (relative \
                     paths are read from the config's directory), or create keys there with \
                     `banyan keys generate --dir DIR`",
                );
                return;
            }
        };
        let password = match (
            &self.cfg.password_file,
            std::env::var_os(crate::cli::PASSWORD_ENV),
        ) {
            (Some(file), _) => match crate::cli::password_from(Some(file), dir) {
                Ok(p) => p,
                Err(e) => {
                    self.push(
                        Severity::Error,
                        "password_file",
                        format!("{e:#}"),
                        "write the keystore password into that file (mode 0600), or delete \
                         the key and set BANYAN_KEYSTORE_PASSWORD when starting the node",
                    );
                    return;
                }
            },
            (None, Some(_)) => match crate::cli::password_from(None, dir) {
                Ok(p) => p,
                Err(e) => {
                    self.push(
                        Severity::Error,
                        "keys_dir",
                        format!("{e:#}"),
                        "set BANYAN_KEYSTORE_PASSWORD to the keystore password",
                    );
                    return;
                }
            },
            (None, None) => {
                self.push(
                    Severity::Warning,
                    "password_file",
                    format!(
                        "the keys in {} were found but not decrypted: the config names no \
                         password_file and {} is not set, so `banyan start` will prompt for \
                         the password (and fail without a terminal)",
                        dir.display(),
                        crate::cli::PASSWORD_ENV
                    ),
                    "add `password_file = \"FILE\"` (a file of mode 0600 holding the \
                     password), or set the environment variable when starting the node",
                );
                return;
            }
        };
        match files.decrypt(&password) {
            Ok((_, public)) => {
                let weak = if files.has_weak_kdf() {
                    " (weak test KDF: for devnets only)"
                } else {
                    ""
                };
                self.report.checked.push(format!(
                    "keys: {} decrypt and match; validator {}{weak}",
                    dir.display(),
                    public.validator_id.to_hex()
                ));
            }
            Err(e) => {
                let key = if self.cfg.password_file.is_some() {
                    "password_file"
                } else {
                    "keys_dir"
                };
                self.push(
                    Severity::Error,
                    key,
                    format!("{e:#}"),
                    "give the password these keys were made with",
                );
            }
        }
    }

    fn genesis(&mut self) {
        match banyan_mainchain::Genesis::from_file(&self.cfg.genesis) {
            Ok(g) => self.report.checked.push(format!(
                "genesis: {} (network {})",
                self.cfg.genesis.display(),
                g.network().to_hex()
            )),
            Err(e) => self.push(
                Severity::Error,
                "genesis",
                e.to_string(),
                "point genesis at the network's genesis.json, the same file every validator \
                 of the network uses",
            ),
        }
    }

    fn data_dir(&mut self) {
        let dir = &self.cfg.data_dir;
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => self
                .report
                .checked
                .push(format!("data_dir: {}", dir.display())),
            Ok(_) => self.push(
                Severity::Error,
                "data_dir",
                format!("{} exists and is not a directory", dir.display()),
                "point data_dir at a directory (it is created if missing)",
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => self.report.checked.push(format!(
                "data_dir: {} (created at the first start)",
                dir.display()
            )),
            Err(e) => self.push(
                Severity::Error,
                "data_dir",
                format!("cannot inspect {}: {e}", dir.display()),
                "give the node's user access to the directory",
            ),
        }
    }

    fn addresses(&mut self) {
        let cfg = self.cfg;
        let all = [
            ("p2p_listen", cfg.p2p_listen, false),
            ("rpc_listen", cfg.rpc_listen, true),
            ("metrics_listen", cfg.metrics_listen, true),
        ];
        let mut good = 0;
        for (key, addr, tcp) in all {
            if addr.port() == 0 {
                self.push(
                    Severity::Error,
                    key,
                    format!("{addr} has port 0, so the system picks another port at every start"),
                    "choose a fixed port that peers and clients can be told, e.g. 7000 for \
                     p2p_listen, 8545 for rpc_listen, 9100 for metrics_listen",
                );
                continue;
            }
            if tcp && !addr.ip().is_loopback() {
                let why = if key == "rpc_listen" && cfg.rpc.admin {
                    " with the admin methods on ([rpc] admin = true)"
                } else {
                    ""
                };
                self.push(
                    Severity::Warning,
                    key,
                    format!("{addr} is reachable from other machines{why}"),
                    "bind 127.0.0.1 unless a proxy or firewall guards the port",
                );
            }
            match try_bind(addr, tcp) {
                Ok(()) => good += 1,
                Err(e) if e.kind() == ErrorKind::AddrInUse => self.push(
                    Severity::Warning,
                    key,
                    format!("{addr} is in use by another process (is this node running?)"),
                    "stop the process holding it (`ss -ltnup` names it) or choose another port",
                ),
                Err(e) if e.kind() == ErrorKind::AddrNotAvailable => self.push(
                    Severity::Error,
                    key,
                    format!("{} is not an address of this machine", addr.ip()),
                    "use an address of this machine (`ip -brief address`), 127.0.0.1, or \
                     0.0.0.0 for every interface",
                ),
                Err(e) if e.kind() == ErrorKind::PermissionDenied => self.push(
                    Severity::Error,
                    key,
                    format!("binding {addr} is not permitted for this user"),
                    "choose a port above 1023",
                ),
                Err(e) => self.push(
                    Severity::Warning,
                    key,
                    format!("cannot try {addr}: {e}"),
                    "check the address",
                ),
            }
        }
        if cfg.rpc_listen.port() != 0 && clash(cfg.rpc_listen, cfg.metrics_listen) {
            self.push(
                Severity::Error,
                "metrics_listen",
                format!(
                    "{} is also rpc_listen ({}); both are TCP servers",
                    cfg.metrics_listen, cfg.rpc_listen
                ),
                "give metrics_listen a port of its own, e.g. 9100",
            );
        } else if good == all.len() {
            self.report.checked.push(format!(
                "addresses: p2p {} (UDP), rpc {}, metrics {} are free",
                cfg.p2p_listen, cfg.rpc_listen, cfg.metrics_listen
            ));
        }
    }

    fn peers(&mut self) {
        let mut bad = 0;
        for (i, peer) in self.cfg.peers.iter().enumerate() {
            if let Err(e) = peer.verify() {
                bad += 1;
                self.report.findings.push(Finding {
                    severity: Severity::Error,
                    line: table_line(self.text, "peers", i),
                    key: format!("peers[{i}]"),
                    message: format!("{e:#}"),
                    fix: "copy the peer's identity.json again (its node directory holds it); \
                          it must not be edited by hand"
                        .into(),
                });
            }
        }
        if bad == 0 {
            self.report.checked.push(format!(
                "peers: {} identities, each signed by its validator key",
                self.cfg.peers.len()
            ));
        }
    }
}

/// Bind `addr` for an instant (TCP when `tcp`, else UDP) and release it.
fn try_bind(addr: SocketAddr, tcp: bool) -> std::io::Result<()> {
    if tcp {
        std::net::TcpListener::bind(addr).map(drop)
    } else {
        std::net::UdpSocket::bind(addr).map(drop)
    }
}

/// Whether two TCP listen addresses would collide.
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"v0\"\nkeys_dir = \"keys\"\n\n[rpc]\nmax_batch = 0\n\n[[peers]]\nname = \"a\"\n\n[[peers]]\nname = \"b\"\n";

    #[test]
    fn lines_of_keys_tables_and_offsets() {
        assert_eq!(key_line(TEXT, None, "keys_dir"), Some(2));
        assert_eq!(key_line(TEXT, Some("rpc"), "max_batch"), Some(5));
        assert_eq!(key_line(TEXT, None, "max_batch"), None);
        // A key of the same name in another table is not the top-level one.
        assert_eq!(key_line(TEXT, None, "name"), Some(1));
        assert_eq!(table_line(TEXT, "peers", 1), Some(10));
        assert_eq!(line_of_offset(TEXT, 0), 1);
        assert_eq!(line_of_offset(TEXT, TEXT.find("keys").unwrap_or(0)), 2);
        assert_eq!(line_of_offset(TEXT, usize::MAX), TEXT.lines().count() + 1);
    }

    #[test]
    fn addresses_clash_on_the_same_port_of_one_interface() {
        let a: SocketAddr = "127.0.0.1:8545".parse().expect("address");
        assert!(clash(a, "127.0.0.1:8545".parse().expect("address")));
        assert!(clash(a, "0.0.0.0:8545".parse().expect("address")));
        assert!(!clash(a, "127.0.0.2:8545".parse().expect("address")));
        assert!(!clash(a, "127.0.0.1:9100".parse().expect("address")));
    }
}
