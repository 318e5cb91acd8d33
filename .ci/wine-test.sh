#!/usr/bin/env bash
# Runs the library's unit tests as a Windows program under Wine: cross-compiled for
# x86_64-pc-windows-gnu with mingw-w64, executed by wine64.
#
# What this proves: the Windows shim links and runs (WSAIoctl(SIO_TCP_INFO) probing
# v2 → v1 → v0, the error classification), and every decoder test passes in a Windows
# binary. What it cannot prove: that state/MSS come back right from a real Windows
# kernel — Wine (8.0 in Debian 12) does not implement SIO_TCP_INFO ("unimplemented
# ioctl _WSAIORW(IOC_VENDOR, 39)"), so the loopback test accepts `Unsupported` when
# CONNIVER_UNDER_WINE is set, and checks state/MSS everywhere else.
#
# Wine 8 also lacks bcryptprimitives.dll (ProcessPrng), which Rust's std imports since
# 1.78; a 10-line stub built with mingw stands in for it (RtlGenRandom behind it).
#
# Usage: bash .ci/wine-test.sh   (installs wine64 and mingw-w64 with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)
if [ ! -x "$WINE" ] || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends wine64 gcc-mingw-w64-x86-64 >/dev/null
  WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)
fi
rustup target add "$TARGET" >/dev/null 2>&1 || rustup target add "$TARGET"

WINESERVER=$(command -v wineserver || echo "${WINE%/*}/wineserver")
work=$(mktemp -d)
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# Stop this prefix's wineserver (it lingers a few seconds) before removing the prefix.
cleanup() {
  "$WINESERVER" -k >/dev/null 2>&1 || true
  "$WINESERVER" -w >/dev/null 2>&1 || true
  rm -rf "$work" || true
}
trap cleanup EXIT

# ProcessPrng stub for Wine < 9.
cat >"$work/prng.c" <<'C'
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
C
printf 'LIBRARY bcryptprimitives\nEXPORTS\n    ProcessPrng\n' >"$work/prng.def"
x86_64-w64-mingw32-gcc -O2 -shared -o "$work/bcryptprimitives.dll" \
  "$work/prng.c" "$work/prng.def" -ladvapi32

"$WINE" wineboot --init >/dev/null 2>&1 || true
sys32="$WINEPREFIX/drive_c/windows/system32"
[ -f "$sys32/bcryptprimitives.dll" ] || cp "$work/bcryptprimitives.dll" "$sys32/"

export CONNIVER_UNDER_WINE=1
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
cargo test --lib --target "$TARGET" -- --nocapture
