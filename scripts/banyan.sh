#!/usr/bin/env bash
# Install what is missing, build the `banyan` binary (release) if needed, and run it.
# Usage: scripts/banyan.sh <banyan arguments...>     e.g. scripts/banyan.sh keys generate --dir keys
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BANYAN_ROOT"

ensure_build_deps
say "building banyan (release; build cache: $CARGO_TARGET_DIR)"
cargo build --release --locked -p banyan-node --bin banyan
exec "$CARGO_TARGET_DIR/release/banyan" "$@"
