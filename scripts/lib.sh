# Shared by the entry scripts: system packages, toolchain checks, the persistent build cache.
# Sourced, not run.

set -euo pipefail

BANYAN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One build cache per user, reused by every run (a cold release build with RocksDB takes
# about ten minutes on two cores). Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/banyan/target}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Install the Debian packages given as arguments, only those missing. Checked on every run,
# whatever the build cache holds, so a warm cache never hides a missing install step.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing system packages: ${missing[*]}; this script installs them with apt-get (Debian/Ubuntu). Install them with your package manager and run again."
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing system packages: ${missing[*]}; run as root or install them: apt-get install -y ${missing[*]}"
    sudo=(sudo)
  fi
  say "installing missing system packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    || die "apt-get update failed; check that the Debian package mirrors are reachable"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed; install them by hand and run again"
}

ensure_toolchain() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust with rustup (https://rustup.rs) and run again"
  if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
      rustup component list --installed 2>/dev/null | grep -q "^$c" || {
        say "installing rustup component $c"
        rustup component add "$c" || die "rustup component add $c failed"
      }
    done
  fi
}

# What every build needs: a C/C++ compiler and libclang for RocksDB's bindgen.
ensure_build_deps() {
  ensure_packages clang libclang-dev
  ensure_toolchain
}
