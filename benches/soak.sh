#!/usr/bin/env bash
# Soak: 10,000 concurrent keep-alive connections against the quickstart
# (examples/axum_quickstart.rs) with a 1 s tick, for a bounded time, on loopback.
#
#   benches/soak.sh                                  # 10k connections, ~90 s after the build
#   CONNECTIONS=2000 DURATION=20 IDLE=5 benches/soak.sh
#   IDLE=2 DURATION=12 ROUNDS=5 HEAP=1 benches/soak.sh   # leak check, ~2.5 min: the
#       server's glibc heap in use after each round (gdb calls malloc_stats()) must stay
#       flat; RSS alone can grow while the allocator keeps freed pages
#
# Builds the quickstart and examples/soak_client.rs in release once, then:
#   1. starts the quickstart (`--tick 1`, RUST_LOG=warn: the per-request INFO log line is
#      the application's choice, not the library's cost) and records its baseline:
#      VmRSS, open fds, CPU time (utime+stime), `tcp_connection_active` from /metrics;
#   2. soak_client opens CONNECTIONS connections (RAMP_RATE per second, default 2000; 0 =
#      all at once, which overflows the accept queue: SYNs dropped and retried after 1 s,
#      those connections then show a 1 s handshake RTT), holds them IDLE seconds without
#      requests (only the 1 s tick runs: the sampler's cost), then DURATION seconds in
#      which each sends GET / every INTERVAL seconds;
#   3. the client closes everything; after SETTLE seconds the fd count and
#      `tcp_connection_active` must be back to baseline.
# Prints a summary table (docs/soak.md has one); exits non-zero on any client error,
# server ERROR line, or fds/`tcp_connection_active` not back at the baseline. The client
# runs under `timeout` and the server under a watchdog, so every run is bounded (the
# default one takes ~1.5 minutes after the build).
#
# Needs curl; raises `ulimit -n` (to 65536 if the hard limit allows, else the hard
# limit) for both processes. 10k connections from one address to one port need 10k
# ephemeral ports: the script checks net.ipv4.ip_local_port_range. Loopback only.
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-10000}
IDLE=${IDLE:-15}
DURATION=${DURATION:-60}
INTERVAL=${INTERVAL:-5}
SETTLE=${SETTLE:-3}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-19300}
TICK=${TICK:-1}
RAMP_RATE=${RAMP_RATE:-2000}
addr=127.0.0.1:$PORT

command -v curl >/dev/null || { echo "needs curl" >&2; exit 2; }
cd "$(dirname "$0")/.."

# --- limits ----------------------------------------------------------------------------
want_fds=$((CONNECTIONS + 1024))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    echo "ulimit -n is $(ulimit -n), need $want_fds for $CONNECTIONS connections" >&2
    exit 2
fi
if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    if [ $((hi - lo + 1)) -lt "$CONNECTIONS" ]; then
        echo "ephemeral port range $lo-$hi is smaller than $CONNECTIONS" >&2
        exit 2
    fi
fi

# --- build -----------------------------------------------------------------------------
cargo build --release --quiet --example axum_quickstart --example soak_client
target=${CARGO_TARGET_DIR:-target}/release/examples
server_bin=$target/axum_quickstart
client_bin=$target/soak_client

work=$(mktemp -d)
server_pid=
watchdog_pid=
cleanup() {
    for pid in "$server_pid" "$watchdog_pid"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

# --- helpers ---------------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status"; }
fds() { find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
cpu_ticks() { # utime + stime (fields 14, 15; the command name in field 2 has no spaces)
    awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}
now() { date +%s.%N; }
# Listen-queue overflows, machine-wide (SYNs dropped while the accept queue was full: the
# client retries after 1 s). From /proc/net/netstat, TcpExt ListenOverflows.
overflows() {
    awk '$1 == "TcpExt:" { if (!n) { for (i = 2; i <= NF; i++) k[i] = $i; n = 1 }
        else for (i = 2; i <= NF; i++) if (k[i] == "ListenOverflows") print $i }' /proc/net/netstat 2>/dev/null || echo 0
}
# `tcp_connection_active` as the server reports it; the scrape's own connection counts.
active() {
    curl -fsS --max-time 5 "http://$addr/metrics" |
        awk '$1 ~ /^tcp_connection_active({|$)/ { sum += $2 } END { print sum + 0 }'
}
# glibc heap bytes in use (all arenas + mmap), read by calling malloc_stats() in the server
# with gdb (HEAP=1): unlike RSS, this drops when memory is freed, so it tells a leak from
# an allocator keeping freed pages.
heap_kb() {
    timeout 60 gdb -p "$server_pid" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || { echo "?"; return; }
    awk '/^Total \(incl. mmap\):/ { t = 1 } t && /^in use bytes/ { v = $NF; t = 0 } END { printf "%d", v / 1024 }' "$work/server.log"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --- server ----------------------------------------------------------------------------
RUST_LOG=${RUST_LOG:-warn} "$server_bin" --addr "$addr" --tick "$TICK" 2>"$work/server.log" &
server_pid=$!
# The server's own bound (the client runs under `timeout`; /proc must see the server itself).
(for _ in $(seq $((ROUNDS * (IDLE + DURATION + 90) + 60))); do sleep 1; done; kill "$server_pid" 2>/dev/null) &
watchdog_pid=$!
for _ in $(seq 100); do
    curl -fs --max-time 1 "http://$addr/" >/dev/null 2>&1 && break
    sleep 0.05
done
curl -fs --max-time 1 "http://$addr/" >/dev/null || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
# Every figure below is read from /proc/$server_pid: make sure that is the server.
[ "$(readlink "/proc/$server_pid/exe")" = "$(realpath "$server_bin")" ] ||
    { echo "pid $server_pid is not $server_bin" >&2; exit 1; }
sleep 1
base_rss=$(rss_kb)
base_fds=$(fds)
base_active=$(active)
base_ticks=$(cpu_ticks)
base_overflows=$(overflows)
echo "baseline: rss $(mib "$base_rss") MiB, $base_fds fds, tcp_connection_active $base_active"
if [ "${HEAP:-0}" = 1 ]; then
    command -v gdb >/dev/null || { echo "HEAP=1 needs gdb" >&2; exit 2; }
    base_heap=$(heap_kb)
    echo "baseline heap in use: $(mib "$base_heap") MiB"
fi

# --- one round: client run, then settle ---------------------------------------------------
# Wall-clock time of a client phase.
phase_at() { awk -v t0="$client_t0" -v p="$1" '$1 == "PHASE" && $2 == p { printf "%.3f", t0 + $3 }' "$work/client.out"; }
# CPU % of one core between two wall-clock times, from the samples inside the window.
window_cpu() {
    awk -v a="$1" -v b="$2" -v hz="$clk_tck" '
        $1 >= a && !s { s = 1; t0 = $1; k0 = $2 }
        $1 <= b { t1 = $1; k1 = $2 }
        END { if (s && t1 > t0) printf "%.1f", (k1 - k0) / hz / (t1 - t0) * 100; else print "?" }
    ' "$work/samples"
}
# Highest RSS sampled between two times (kB).
window_rss() {
    awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b && $3 > m { m = $3 } END { print m + 0 }' "$work/samples"
}

round() {
    : >"$work/samples"
    round_rss=$(rss_kb)
    client_t0=$(now)
    timeout $((IDLE + DURATION + 90)) "$client_bin" --addr "$addr" --connections "$CONNECTIONS" \
        --idle "$IDLE" --duration "$DURATION" --interval "$INTERVAL" --rate "$RAMP_RATE" \
        >"$work/client.out" 2>&1 &
    client_pid=$!

    # Sample the server every 0.2 s ("time cpu_ticks rss_kb"); phases are located
    # afterwards from the client's own timestamps (`PHASE name seconds-since-start`).
    held_fds=0
    held_active=
    while kill -0 "$client_pid" 2>/dev/null; do
        echo "$(now) $(cpu_ticks) $(rss_kb)" >>"$work/samples"
        if [ -z "$held_active" ] && grep -q '^PHASE idle ' "$work/client.out"; then
            held_fds=$(fds)
            held_active=$(active)
            grep -m1 '^connected=' "$work/client.out" || true
            echo "holding: $held_fds fds, tcp_connection_active $held_active, rss $(mib "$(rss_kb)") MiB"
            if [ "${HEAP:-0}" = 1 ]; then # pauses the server ~1 s, while no request is sent
                held_heap=$(heap_kb)
                echo "holding: heap in use $(mib "$held_heap") MiB"
            fi
        fi
        sleep 0.2
    done
    client_status=0
    wait "$client_pid" || client_status=$?
    echo "$(now) $(cpu_ticks) $(rss_kb)" >>"$work/samples"
    hwm=$(hwm_kb)

    sleep "$SETTLE"
    end_rss=$(rss_kb)
    end_fds=$(fds)
    end_active=$(active)

    t_idle=$(phase_at idle)
    t_active=$(phase_at active)
    t_close=$(phase_at close)
    idle_cpu=$(window_cpu "${t_idle:-0}" "${t_active:-0}")
    active_cpu=$(window_cpu "${t_active:-0}" "${t_close:-0}")
    idle_rss=$(window_rss "${t_idle:-0}" "${t_active:-0}")
    peak_rss=$(window_rss 0 9e18)
    [ "$hwm" -gt "$peak_rss" ] && peak_rss=$hwm
    result=$(grep '^RESULT ' "$work/client.out" || true)
    grep -E '^(error: |slow requests)' "$work/client.out" || true
}

ok=1
for r in $(seq "$ROUNDS"); do
    [ "$ROUNDS" -gt 1 ] && echo "--- round $r of $ROUNDS"
    round_heap=${last_heap:-${base_heap:-0}}
    round
    [ "$client_status" -eq 0 ] || ok=0
    [ "$end_fds" -eq "$base_fds" ] || ok=0
    [ "$end_active" = "$base_active" ] || ok=0
    rounds_rss="${rounds_rss:+$rounds_rss / }$(mib "$end_rss")"
    if [ "${HEAP:-0}" = 1 ]; then
        h=$(heap_kb)
        last_heap=$h
        rounds_heap="${rounds_heap:+$rounds_heap / }$(mib "$h")"
    fi
    echo "after round $r: client exit $client_status, $end_fds fds, tcp_connection_active $end_active, rss $(mib "$end_rss") MiB"
done
end_ticks=$(cpu_ticks)
end_overflows=$(overflows)

# --- report (the last round) ---------------------------------------------------------------
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
# Above the RSS at the round's start (the baseline in round 1).
per_conn() { awk -v p="$1" -v b="$round_rss" -v n="$CONNECTIONS" 'BEGIN { printf "%.1f", (p - b) / n }'; }
warns=$(grep -c ' WARN ' "$work/server.log" || true)
errs=$(grep -c ' ERROR ' "$work/server.log" || true)
[ "$errs" -eq 0 ] || ok=0
if [ "$warns" -gt 0 ] || [ "$errs" -gt 0 ]; then
    echo "server log, first WARN/ERROR lines:"
    awk '/ (WARN|ERROR) / && n++ < 3 { print substr($0, 1, 400) }' "$work/server.log"
fi

printf '\n%-44s %s\n' "soak: $CONNECTIONS connections, tick $([ "$TICK" = 0 ] && echo off || echo "${TICK}s")" "value"
printf '%-44s %s\n' "--------------------------------------------" "--------------------"
printf '%-44s %s\n' "connected / connect errors" "$(field connected) / $(field connect_errors)"
printf '%-44s %s\n' "requests / 200 / non-200" "$(field requests) / $(field ok) / $(field non_200)"
printf '%-44s %s\n' "request errors / timeouts / closed early" "$(field request_errors) / $(field timeouts) / $(field closed_early)"
printf '%-44s %s\n' "latency p50 / p99 / max (us)" "$(field p50_us) / $(field p99_us) / $(field max_us)"
printf '%-44s %s\n' "RSS baseline / idle-held / peak (MiB)" "$(mib "$base_rss") / $(mib "$idle_rss") / $(mib "$peak_rss")"
printf '%-44s %s\n' "RSS after close, per round (MiB)" "$rounds_rss"
[ -n "${held_heap:-}" ] && printf '%-44s %s\n' "heap per idle connection (KiB, last round)" \
    "$(awk -v h="$held_heap" -v b="$round_heap" -v n="$CONNECTIONS" 'BEGIN { printf "%.2f", (h - b) / n }')"
[ -n "${rounds_heap:-}" ] && printf '%-44s %s\n' "heap in use: baseline, after each round (MiB)" "$(mib "$base_heap") | $rounds_heap"
printf '%-44s %s\n' "RSS per connection, idle / peak (KiB)" "$(per_conn "$idle_rss") / $(per_conn "$peak_rss")"
printf '%-44s %s\n' "CPU, idle connections + ${TICK}s tick (% core)" "$idle_cpu"
printf '%-44s %s\n' "CPU, 1 req/${INTERVAL}s per connection (% core)" "$active_cpu"
printf '%-44s %s\n' "CPU time, whole run (s)" "$(awk -v a="$base_ticks" -v b="$end_ticks" -v hz="$clk_tck" 'BEGIN { printf "%.1f", (b - a) / hz }')"
printf '%-44s %s\n' "fds baseline / holding / after close" "$base_fds / $held_fds / $end_fds"
printf '%-44s %s\n' "tcp_connection_active baseline/holding/after" "$base_active / ${held_active:-?} / $end_active"
printf '%-44s %s\n' "listen-queue overflows (machine, all rounds)" "$((end_overflows - base_overflows))"
printf '%-44s %s\n' "server log WARN / ERROR lines" "$warns / $errs"
printf '%-44s %s\n' "result" "$([ $ok = 1 ] && echo PASS || echo FAIL)"

if [ $ok != 1 ]; then
    echo "--- client ---" >&2
    tail -20 "$work/client.out" >&2
    echo "--- server log (tail) ---" >&2
    tail -20 "$work/server.log" >&2
    exit 1
fi
