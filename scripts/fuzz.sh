#!/usr/bin/env bash
# Build the fuzz targets (fuzz/, libFuzzer through libfuzzer-sys) and run each for a while.
#
# Usage: scripts/fuzz.sh [--time SECONDS] [--asan] [TARGET...]
#   --time SECONDS  how long each target runs (default 30; CI runs 10; a long run: 600 or more)
#   --asan          build with AddressSanitizer (needs a nightly toolchain: rustup toolchain
#                   install nightly); without it the targets still check every assertion,
#                   with overflow checks and debug assertions on
#   TARGET...       some of: wire_frame rpc_request consensus_message transaction block
#                   certificate state_proof ledger_block replica (default: all)
#
# Each target starts from its checked-in seeds (fuzz/corpus/<target>) plus what earlier runs
# on this machine found (BANYAN_FUZZ_CORPUS, default ~/.cache/banyan/fuzz-corpus/<target>),
# and adds what it finds to the latter. A crash stops the script with the input saved under
# fuzz/artifacts/<target>/ and the command that replays it. Ends with one line per target:
# runs, executions per second, coverage (edges) and features.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BANYAN_ROOT/fuzz"

ALL_TARGETS=(wire_frame rpc_request consensus_message transaction block certificate state_proof ledger_block replica)
SECONDS_EACH=30
ASAN=0
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) SECONDS_EACH="${2:?--time needs a number of seconds}"; shift 2 ;;
    --asan) ASAN=1; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see scripts/fuzz.sh --help)" ;;
    *)
      [[ " ${ALL_TARGETS[*]} " == *" $1 "* ]] || die "unknown fuzz target $1; targets: ${ALL_TARGETS[*]}"
      TARGETS+=("$1"); shift ;;
  esac
done
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] && [ "$SECONDS_EACH" -gt 0 ] || die "--time takes a whole number of seconds above 0, not '$SECONDS_EACH'"
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")

ensure_build_deps
export CARGO_TARGET_DIR="${BANYAN_FUZZ_TARGET_DIR:-$HOME/.cache/banyan/fuzz-target}"
CORPUS_ROOT="${BANYAN_FUZZ_CORPUS:-$HOME/.cache/banyan/fuzz-corpus}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"

# The instrumentation cargo-fuzz applies (sanitizer coverage for libFuzzer), set here so the
# stable toolchain builds the targets without cargo-fuzz installed.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
TOOLCHAIN=()
if [ "$ASAN" = 1 ]; then
  rustup toolchain list 2>/dev/null | grep -q '^nightly' \
    || die "--asan needs a nightly toolchain; install it with: rustup toolchain install nightly (or run without --asan)"
  TOOLCHAIN=(+nightly)
  RUSTFLAGS+=" -Zsanitizer=address"
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR-asan"
fi
export RUSTFLAGS

say "building fuzz targets (${TARGETS[*]}; build cache: $CARGO_TARGET_DIR)"
cargo "${TOOLCHAIN[@]}" build --release --locked --target "$TRIPLE" --bins \
  || die "building the fuzz targets failed (see above)"

summary=()
for t in "${TARGETS[@]}"; do
  work="$CORPUS_ROOT/$t"
  [ -d "corpus/$t" ] || die "the seed corpus fuzz/corpus/$t is missing; rebuild the seeds with: BANYAN_WRITE_FUZZ_CORPUS=1 cargo test --release --workspace --test fuzz_corpus"
  mkdir -p "$work" "artifacts/$t"
  log="$(mktemp)"
  say "fuzzing $t for ${SECONDS_EACH}s (seeds: fuzz/corpus/$t, found so far: $work)"
  if ! "$CARGO_TARGET_DIR/$TRIPLE/release/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/" "$work" "corpus/$t" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    crash="$(ls -t "artifacts/$t"/* 2>/dev/null | head -n 1 || true)"
    die "fuzz target $t failed${crash:+; the input is fuzz/$crash; replay it with: $CARGO_TARGET_DIR/$TRIPLE/release/$t fuzz/$crash}"
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
  ft="$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
  corpus="$(find "$work" -type f | wc -l)"
  summary+=("$(printf '%-18s runs %-10s exec/s %-7s cov %-6s ft %-6s corpus %s' "$t" "$runs" "$speed" "$cov" "$ft" "$corpus")")
  rm -f "$log"
done
say "fuzzing done, no crash:"
printf '    %s\n' "${summary[@]}" >&2
