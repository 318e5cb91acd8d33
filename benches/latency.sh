#!/usr/bin/env bash
# Request latency of plain vs instrumented axum hello-world (examples/hello_bench.rs) at a
# fixed request rate below saturation (open loop), in one run.
#
#   benches/latency.sh                                 # 3 rounds x 10 s per mode; ~1.5 minutes
#   ROUNDS=5 DURATION=8 MODES="plain instrumented every" benches/latency.sh
#
# Why open loop: wrk (benches/http_load.sh) is a closed loop that saturates the server, so
# its p99 is just connections / throughput and only restates the throughput loss. Here
# examples/latency_client.rs offers the same RATE (req/s, default 20000) to every server
# over CONNS keep-alive connections (default 32), each on a fixed, evenly phase-shifted
# schedule, and times each request from when it was meant to be sent, so a stall is
# charged to every request queued behind it (no coordinated omission). The first WARMUP
# seconds (default 2) of each run are not recorded. RATE must stay well below what the
# server does saturated (http_load.sh), or every mode just measures its queue.
#
# Needs taskset (util-linux) and curl; installs nothing. Builds hello_bench and the client
# in release mode once. The servers run side by side pinned to one CPU (SERVER_CPU,
# default 0) and the client to another (CLIENT_CPU, default 1); the client keeps its CPU
# busy to send on time. Modes alternate (A/B/A/B…) so drift in the machine's speed hits
# all alike. MODES (default "plain instrumented") picks the servers, the first one the
# baseline; hello_bench also has `every` (every request measured, not just 32 per second
# per connection), `listener`, `layer-bare` and `sampled`.
# CASES="keep-alive close" adds one connection per request (`Connection: close`, the
# latency includes the TCP handshake) at CLOSE_RATE (default 3000).
#
# Prints each run, then per case and mode the mean of the rounds' p50/p99/p99.9 and the
# change of each against the first mode. Target (issue 4, docs/performance.md): p99 of
# instrumented <= +5 % of plain on keep-alive. Needs a quiet machine: other processes on
# the two CPUs show up as milliseconds in the tail.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RATE=${RATE:-20000}
CLOSE_RATE=${CLOSE_RATE:-3000}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BASE_PORT=${BASE_PORT:-19200}
read -r -a modes <<<"${MODES:-plain instrumented}"
read -r -a cases <<<"${CASES:-keep-alive}"

for tool in taskset curl; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install util-linux curl)" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
cargo build --release --quiet --example hello_bench --example latency_client
bin=${CARGO_TARGET_DIR:-target}/release/examples

# shellcheck source=benches/hello_servers.sh
source benches/hello_servers.sh

# One client run: prints "rate_achieved p50 p90 p99 p999 max errors" (µs). The client
# exits 1 when it counted errors; the run is still shown, with its error count.
run() { # port rate extra-args...
    local server_port=$1 rate=$2
    shift 2
    local out
    out=$(taskset -c "$CLIENT_CPU" "$bin/latency_client" --addr "127.0.0.1:$server_port" \
        --connections "$CONNS" --rate "$rate" --duration "$DURATION" --warmup "$WARMUP" "$@") || true
    grep '^error' <<<"$out" >&2 || true
    awk '$1 == "RESULT" {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["rate_achieved"], v["p50_us"], v["p90_us"], v["p99_us"], v["p999_us"], v["max_us"], v["errors"]
        found = 1
    }
    END { if (!found) print "0 0 0 0 0 0 -1" }' <<<"$out"
}

summary=()
for case in "${cases[@]}"; do
    extra=()
    rate=$RATE
    if [ "$case" = close ]; then
        extra=(--close)
        rate=$CLOSE_RATE
    fi
    results=""
    for round in $(seq "$ROUNDS"); do
        for mode in "${modes[@]}"; do
            read -r achieved p50 p90 p99 p999 max errors < <(run "${port[$mode]}" "$rate" "${extra[@]}")
            printf '%-10s round %d %-12s %6.0f req/s  p50 %6d  p90 %6d  p99 %7d  p99.9 %7d  max %7d us  errors %s\n' \
                "$case" "$round" "$mode" "$achieved" "$p50" "$p90" "$p99" "$p999" "$max" "$errors"
            results+="$mode $p50 $p99 $p999 $achieved"$'\n'
        done
    done
    summary+=("$(printf '%s' "$results" | awk -v case="$case" -v order="${modes[*]}" '
        { p50[$1] += $2; p99[$1] += $3; p999[$1] += $4; rate[$1] += $5; n[$1]++ }
        END {
            k = split(order, m, " ");
            base = m[1];
            for (i = 1; i <= k; i++) {
                x = m[i];
                printf "%-10s %-12s %6.0f req/s  p50 %6.0f  p99 %7.0f  p99.9 %7.0f us", case, x,
                    rate[x] / n[x], p50[x] / n[x], p99[x] / n[x], p999[x] / n[x];
                if (i > 1)
                    printf "  | vs %s: p50 %+.1f %%, p99 %+.1f %%, p99.9 %+.1f %%", base,
                        100 * (p50[x] / p50[base] - 1), 100 * (p99[x] / p99[base] - 1),
                        100 * (p999[x] / p999[base] - 1);
                printf "\n";
            }
        }')")
done

echo
echo "summary ($ROUNDS rounds x ${DURATION} s after ${WARMUP} s warm-up, $CONNS connections, keep-alive $RATE req/s, server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU; mean of rounds):"
printf '%s\n' "${summary[@]}"
