//! `promtool check metrics`, shared by the tests that scrape /metrics.

/// Check the exposition with `promtool check metrics`.
pub fn check(body: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("BANYAN_SKIP_PROMTOOL").as_deref() == Ok("1") {
                eprintln!("promtool not found; skipped because BANYAN_SKIP_PROMTOOL=1");
                return;
            }
            panic!(
                "promtool is not on PATH: run scripts/test.sh (it installs the Debian package \
                 `prometheus`), or set BANYAN_SKIP_PROMTOOL=1 to skip this check"
            );
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
