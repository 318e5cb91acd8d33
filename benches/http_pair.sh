#!/usr/bin/env bash
# Two axum hello-world servers (examples/hello_bench.rs) sharing one CPU, loaded at the
# same time: the ratio of their throughputs is the ratio of their CPU cost per request,
# measured under the same conditions at the same instant.
#
#   benches/http_pair.sh                           # plain vs instrumented, keep-alive
#   A=plain B=trace-layer ROUNDS=30 benches/http_pair.sh
#   A=wrap-only B=instrumented benches/http_pair.sh     # against the floor of any body-wrapping layer
#   A=plain B=instrumented CLOSE=1 benches/http_pair.sh   # one connection per request
#
# Why: on a shared VM the machine's speed drifts by 10-20 % from one second to the next,
# so servers measured one after the other (benches/http_load.sh) differ by more than the
# effect being measured. Here both servers are pinned to SERVER_CPU (default 0) and each
# gets half of it from the scheduler; one wrk per server (-t1, CONNS connections each,
# default 32) runs at the same time on WRK_CPU (default 1). Whatever slows the CPU slows
# both; the server that needs more CPU per request serves proportionally fewer requests.
# Control: A=plain B=plain gives 99-101 % (rounds within +-5 %).
#
# Prints each round and the median (quartiles) of B's throughput as a share of A's.
# Target (issue 4, docs/performance.md): keep-alive >= 97 %, close >= 95 %.
# Extra server flags: A_ARGS, B_ARGS (e.g. B_ARGS="--max-measured-per-second 1").
# Needs wrk (`apt-get install wrk`), taskset (util-linux), curl, python3; installs
# nothing. Builds the example in release mode once.
set -euo pipefail

A=${A:-plain}
B=${B:-instrumented}
ROUNDS=${ROUNDS:-20}
DURATION=${DURATION:-2s}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
BASE_PORT=${BASE_PORT:-19400}
read -r -a a_args <<<"${A_ARGS:-}"
read -r -a b_args <<<"${B_ARGS:-}"
extra=()
[ -n "${CLOSE:-}" ] && extra=(-H "Connection: close")

for tool in wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
cargo build --release --quiet --example hello_bench
bin=${CARGO_TARGET_DIR:-target}/release/examples

modes=() # no automatic servers: two of the same mode must be able to run side by side
# shellcheck source=benches/hello_servers.sh
source benches/hello_servers.sh
start_hello_server "$A" "$BASE_PORT" "${a_args[@]}"
start_hello_server "$B" "$((BASE_PORT + 1))" "${b_args[@]}"

# One wrk run against a port; writes its requests/s to a file.
load() { # port out-file
    taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" "${extra[@]}" \
        "http://127.0.0.1:$1/" | awk '/Requests\/sec/ { print $2 }' >"$2"
}
out=$(mktemp -d)
trap 'hello_cleanup; rm -rf "$out"' EXIT

# Warm-up, not counted.
load "$BASE_PORT" "$out/a" & w=$!
load "$((BASE_PORT + 1))" "$out/b"
wait "$w"

case=keep-alive
[ -n "${CLOSE:-}" ] && case=close
for round in $(seq "$ROUNDS"); do
    # Alternate which wrk starts first.
    if [ $((round % 2)) = 1 ]; then
        load "$BASE_PORT" "$out/a" & w=$!
        load "$((BASE_PORT + 1))" "$out/b"
    else
        load "$((BASE_PORT + 1))" "$out/b" & w=$!
        load "$BASE_PORT" "$out/a"
    fi
    wait "$w"
    echo "$case round $round $A $(cat "$out/a") req/s $B $(cat "$out/b") req/s"
done | python3 -c '
import statistics, sys
shares = []
for line in sys.stdin:
    print(line, end="", flush=True)
    f = line.split()
    shares.append(float(f[7]) / float(f[4]))
q = statistics.quantiles(shares, n=4) if len(shares) > 1 else shares * 3
print(f"{sys.argv[1]}: {sys.argv[3]} / {sys.argv[2]} throughput, median of {len(shares)} "
      f"simultaneous rounds: {statistics.median(shares) * 100:.1f} % "
      f"(IQR {q[0] * 100:.1f}-{q[2] * 100:.1f}, min {min(shares) * 100:.1f}, "
      f"max {max(shares) * 100:.1f})")
' "$case" "$A" "$B"
