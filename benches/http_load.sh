#!/usr/bin/env bash
# Instrumented vs plain axum hello-world (examples/hello_bench.rs) under wrk, in one run.
#
#   benches/http_load.sh            # 3 rounds x 5 s per case; ~2 minutes
#   ROUNDS=5 DURATION=10s benches/http_load.sh
#
# Needs wrk (`apt-get install wrk`) and taskset (util-linux); installs nothing. Builds the
# example in release mode once. Both servers run side by side pinned to one CPU
# (SERVER_CPU, default 0) and wrk to another (WRK_CPU, default 1), so that client and
# server do not fight over a core. Plain and instrumented alternate (A/B/A/B…) so drift
# in the machine's speed hits both alike.
#
# Two cases:
#   keep-alive  wrk -t$THREADS -c$CONNS: many requests per connection;
#   close       the same with `Connection: close`: one connection per request, so the
#               listener's accept and close snapshots are paid on every request.
#
# Prints each run, then per case: the mean requests/s and p99 of each mode, and for
# every mode after the first the median (and quartiles) over rounds of its throughput
# against the first mode's in the same round, and the median p99 change. Paired rounds:
# on a shared VM two runs of the same server differ by 10-20 %, more than the effect.
# Targets (docs/performance.md): keep-alive >= 97 % throughput and p99 <= +5 %;
# close >= 95 % throughput.
#
# MODES (default "plain instrumented") picks the servers, first one the baseline;
# `instrumented` is the README's default setup (at most 32 measured requests per second
# per connection). The example also has `every` (every request measured), `listener`
# (TcpInfoListener only) and `layer-bare` (every request, no default observers), to see
# where the cost goes, and `sampled` (every 8th request).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
BASE_PORT=${BASE_PORT:-19100}
read -r -a modes <<<"${MODES:-plain instrumented}"

for tool in wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk util-linux curl)" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
cargo build --release --quiet --example hello_bench
bin=${CARGO_TARGET_DIR:-target}/release/examples

# shellcheck source=benches/hello_servers.sh
source benches/hello_servers.sh

# One wrk run: prints "requests_per_s p99_us".
run() { # port extra-args...
    local server_port=$1
    shift
    taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" \
        "http://127.0.0.1:$server_port/" | awk '
        function us(v) {
            if (v ~ /us$/) return v + 0;
            if (v ~ /ms$/) return v * 1000;
            if (v ~ /s$/) return v * 1000000;
            return v;
        }
        $1 == "99%" { p99 = us($2) }
        $1 == "Requests/sec:" { rps = $2 }
        $0 ~ /Socket errors/ { errors = $0 }
        END {
            if (errors != "") print errors > "/dev/stderr";
            printf "%s %s\n", rps, p99
        }'
}

summary=()
for case in keep-alive close; do
    extra=()
    [ "$case" = close ] && extra=(-H "Connection: close")
    # Warm-up, not counted.
    for mode in "${modes[@]}"; do run "${port[$mode]}" "${extra[@]}" >/dev/null; done
    results=""
    for round in $(seq "$ROUNDS"); do
        for mode in "${modes[@]}"; do
            read -r rps p99 < <(run "${port[$mode]}" "${extra[@]}")
            printf '%-10s round %d %-12s %10.0f req/s  p99 %8.0f us\n' "$case" "$round" "$mode" "$rps" "$p99"
            results+="$mode $rps $p99"$'\n'
        done
    done
    summary+=("$(printf '%s' "$results" | awk -v case="$case" -v order="${modes[*]}" '
        # Per round, each mode against the first one run in that same round: this
        # machine drifts by more than the effect between rounds, so the median of the
        # paired ratios says more than a ratio of means.
        function sort(a, n,    i, j, t) {
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        }
        function q(a, n, p) { return a[int(p * (n - 1)) + 1] }
        BEGIN { k = split(order, m, " "); base = m[1] }
        {
            rps[$1] += $2; p99[$1] += $3; n[$1]++;
            if ($1 == base) { round++; b_rps = $2; b_p99 = $3 }
            else { tr[$1, round] = $2 / b_rps; lr[$1, round] = $3 / b_p99 }
        }
        END {
            for (i = 1; i <= k; i++) {
                mo = m[i];
                printf "%-10s %-12s %8.0f req/s  p99 %8.0f us", case, mo, rps[mo] / n[mo], p99[mo] / n[mo];
                if (i > 1) {
                    for (r = 1; r <= round; r++) { t[r] = tr[mo, r]; l[r] = lr[mo, r] }
                    sort(t, round); sort(l, round);
                    printf "  | vs %s, median of %d paired rounds: throughput %.1f %% (IQR %.1f-%.1f), p99 %+.1f %%",
                        base, round, 100 * q(t, round, 0.5), 100 * q(t, round, 0.25), 100 * q(t, round, 0.75),
                        100 * (q(l, round, 0.5) - 1);
                }
                printf "\n";
            }
        }')")
done

echo
echo "summary ($ROUNDS rounds x $DURATION, wrk -t$THREADS -c$CONNS, server on CPU $SERVER_CPU, wrk on CPU $WRK_CPU):"
printf '%s\n' "${summary[@]}"
