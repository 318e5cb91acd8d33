#!/usr/bin/env bash
# Cross-target build check: the library and its examples must compile and be clippy-clean
# on every platform with a backend (macOS, Windows MSVC and GNU, FreeBSD) and on one
# without (NetBSD, where `snapshot()` returns `Error::Unsupported`).
#
# Only `cargo check`/`clippy`: nothing is linked or run. The decoders themselves are
# tested on the host by `cargo test --lib`; this proves the per-OS shims, the cfg
# dispatch and the examples build for each OS.
#
# Features: `--all-features` (= axum, otel, prometheus) everywhere; every dependency of
# the library builds on all the targets below. If one ever stops building, give that
# target its own feature list in FEATURES and say why.
#
# Examples pull in the dev-dependencies, and one of them (ring, behind the TLS tests'
# rustls/rcgen) compiles C in its build script even for `cargo check`. So:
# - apple, FreeBSD, NetBSD: clang compiles it freestanding (no target libc headers
#   needed; `RING_CORE_NOSTDLIBINC` is ring's own switch for that), with a stub
#   <TargetConditionals.h> for Apple. The objects are only type-checked, never linked.
# - windows-gnu: mingw-w64's gcc.
# - windows-msvc: library only. ring and alloca (criterion) need the MSVC C headers; the
#   examples' Windows code is the same `cfg(windows)` code checked on windows-gnu.
# The script installs clang, llvm and mingw-w64 with apt-get when they are missing;
# without them it checks the library only and says so.
#
# Usage: bash .ci/cross-check.sh [TARGET...]   (default: all targets below)
set -uo pipefail
cd "$(dirname "$0")/.."

TARGETS=(
  x86_64-apple-darwin
  aarch64-apple-darwin
  x86_64-pc-windows-msvc
  x86_64-pc-windows-gnu
  x86_64-unknown-freebsd
  x86_64-unknown-netbsd
)
if [ $# -gt 0 ]; then TARGETS=("$@"); fi

declare -A FEATURES=()
# e.g. FEATURES[x86_64-unknown-netbsd]="--no-default-features --features axum"

# Targets whose examples are not checked (see above).
declare -A LIB_ONLY=([x86_64-pc-windows-msvc]=1)

rustup target add "${TARGETS[@]}" >/dev/null 2>&1 || rustup target add "${TARGETS[@]}"

# C toolchains for the dev-dependencies' build scripts.
if ! command -v clang >/dev/null || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends clang llvm gcc-mingw-w64-x86-64 >/dev/null
  fi
fi
llvm_ar=$(command -v llvm-ar || ls /usr/bin/llvm-ar-* 2>/dev/null | head -n1 || true)
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
printf '#define TARGET_OS_MAC 1\n#define TARGET_OS_OSX 1\n#define TARGET_OS_IPHONE 0\n' \
  >"$stub/TargetConditionals.h"
freestanding="-ffreestanding -nostdlibinc -DRING_CORE_NOSTDLIBINC=1 -I$stub"

# Sets CC/AR/CFLAGS for target $1 (cc-rs reads CC_<triple>); returns 1 when the target
# has no usable C compiler here.
c_toolchain() {
  local t=$1 v=${1//-/_}
  case "$t" in
    *-windows-gnu) command -v x86_64-w64-mingw32-gcc >/dev/null ;;
    *-windows-msvc) return 1 ;;
    *)
      command -v clang >/dev/null && [ -n "$llvm_ar" ] || return 1
      export "CC_$v=clang" "AR_$v=$llvm_ar" "CFLAGS_$v=$freestanding"
      ;;
  esac
}

failed=()
for t in "${TARGETS[@]}"; do
  read -r -a feats <<<"${FEATURES[$t]:---all-features}"
  what=(--lib --examples)
  if [ -n "${LIB_ONLY[$t]:-}" ]; then
    what=(--lib)
  elif ! c_toolchain "$t"; then
    echo "note: no C cross-compiler for $t's dev-dependencies: checking the library only"
    what=(--lib)
  fi
  echo "=== $t (${what[*]} ${feats[*]}) ==="
  ok=1
  cargo check "${what[@]}" --target "$t" "${feats[@]}" || ok=0
  if [ "$ok" = 1 ]; then
    cargo clippy "${what[@]}" --target "$t" "${feats[@]}" -- -D warnings || ok=0
  fi
  if [ "$ok" = 1 ]; then echo "--- $t: ok"; else echo "--- $t: FAILED"; failed+=("$t"); fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "cross-check: ${#failed[@]} of ${#TARGETS[@]} targets failed: ${failed[*]}"
  exit 1
fi
echo "cross-check: all ${#TARGETS[@]} targets ok"
