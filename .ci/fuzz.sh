#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 20) each,
# starting from the committed corpus (new inputs go to a temporary directory, so the
# tree stays clean). A crash fails the script and leaves the input in fuzz/artifacts/.
#
#   bash .ci/fuzz.sh                    # all targets, 20 s each
#   FUZZ_SECONDS=60 bash .ci/fuzz.sh    # longer
#
# Not an `extra-*.sh` step of .ci/run on purpose: on a fresh 2-core machine it costs
# ~8 minutes (measured: cargo install cargo-fuzz 1.6 min, the ASan release build of the
# targets 4.3 min, the runs 1.8 min; docs/fuzzing.md), and `cargo test` already runs the
# decoders' arbitrary-bytes tests on stable. Run it by hand, or from .ci/run when the
# budget allows.
#
# Toolchain: nightly when rustup has it (or can install it); otherwise the stable
# toolchain with RUSTC_BOOTSTRAP=1, which accepts the -Z sanitizer flags cargo-fuzz
# passes (its x86_64 Linux sysroot ships the ASan runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-20}
start=$(date +%s)
say() { echo "[fuzz $(($(date +%s) - start))s] $*"; }

toolchain=nightly
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "installing the nightly toolchain"
    if ! rustup toolchain install nightly --profile minimal; then
        say "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
        toolchain=stable
        export RUSTC_BOOTSTRAP=1
    fi
fi
# FUZZ_TARGET_DIR: build somewhere else than fuzz/target (e.g. to time a fresh build).
target_dir=()
[ -n "${FUZZ_TARGET_DIR:-}" ] && target_dir=(--target-dir "$FUZZ_TARGET_DIR")
fuzz() { # subcommand args...
    local sub=$1
    shift
    cargo "+$toolchain" fuzz "$sub" "${target_dir[@]}" "$@"
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
say "$(cargo fuzz --version), $(rustup run "$toolchain" rustc --version)"

cd fuzz
mapfile -t targets < <(cargo "+$toolchain" fuzz list)
say "building ${#targets[@]} targets"
fuzz build -O

new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$new/$t"
    say "$t: ${secs}s"
    # First corpus directory gets the new inputs; the committed one is only read.
    if fuzz run -O "$t" "$new/$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$new/$t.log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$new/$t.log" || true
    else
        failed+=("$t")
        tail -60 "$new/$t.log"
    fi
done
say "done"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
