#!/usr/bin/env bash
# Install what is missing, then check formatting and lints and run the whole test suite.
# Usage: scripts/test.sh            (CI runs exactly this, through .ci/run)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BANYAN_ROOT"

ensure_build_deps
# promtool (Debian package prometheus): the node tests check /metrics with `promtool check metrics`.
ensure_packages prometheus

say "cargo fmt --check"
cargo fmt --all -- --check || die "formatting differs; run: cargo fmt --all"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check || die "formatting differs in fuzz/; run: cargo fmt --manifest-path fuzz/Cargo.toml"

say "cargo clippy (release, all targets, warnings denied; build cache: $CARGO_TARGET_DIR)"
cargo clippy --release --workspace --all-targets --locked -- -D warnings

say "cargo test (release)"
cargo test --release --workspace --locked

# Every fuzz target, briefly, from its seeds and what earlier runs here found (the long mode:
# scripts/fuzz.sh --time 600).
bash scripts/fuzz.sh --time "${BANYAN_FUZZ_SECONDS:-10}"
