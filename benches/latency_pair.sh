#!/usr/bin/env bash
# Request latency of two axum hello-world servers (examples/hello_bench.rs) sharing one
# CPU, loaded at the same time by one open-loop client at a fixed rate each: the p99 of
# both under the same client, machine and moments.
#
#   benches/latency_pair.sh                                # plain vs instrumented, 20 rounds x 5 s
#   A=plain B=every RATE=8000 ROUNDS=10 benches/latency_pair.sh
#   A=wrap-only B=instrumented benches/latency_pair.sh      # against the floor of any body-wrapping layer
#   CLOSE=1 RATE=1500 benches/latency_pair.sh              # one connection per request (handshake included)
#
# Why: latencies measured one server after the other (benches/latency.sh) move with the
# machine: on a shared VM two runs of the same server differ in p99 by more than the +5 %
# being checked. Here examples/latency_client.rs is given both servers (`--addr` twice):
# CONNS keep-alive connections to each, RATE req/s to each (default 10000: both servers
# on SERVER_CPU then carry the load of one server at 20000 req/s), their requests
# interleaved on one schedule, each timed from when it was meant to be sent (no
# coordinated omission). The order of the two servers on that schedule alternates from
# round to round. RATE must stay well below what the two do saturated together
# (benches/http_pair.sh), or both just measure their queues.
#
# Prints each round and, for p50, p99 and p99.9, the median (quartiles) of B's latency as
# a share of A's over the rounds. Target (issue 4, docs/performance.md): keep-alive p99
# of instrumented <= 105 % of plain. The client spins on CLIENT_CPU (default 1) to send
# on time. Needs taskset (util-linux), curl, python3; installs nothing. Builds the two
# examples in release mode once.
set -euo pipefail

A=${A:-plain}
B=${B:-instrumented}
ROUNDS=${ROUNDS:-20}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
RATE=${RATE:-10000}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BASE_PORT=${BASE_PORT:-19500}
read -r -a a_args <<<"${A_ARGS:-}"
read -r -a b_args <<<"${B_ARGS:-}"
extra=()
case=keep-alive
if [ -n "${CLOSE:-}" ]; then
    extra=(--close)
    case=close
fi

for tool in taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
cargo build --release --quiet --example hello_bench --example latency_client
bin=${CARGO_TARGET_DIR:-target}/release/examples

modes=() # no automatic servers: two of the same mode must be able to run side by side
# shellcheck source=benches/hello_servers.sh
source benches/hello_servers.sh
a_port=$BASE_PORT
b_port=$((BASE_PORT + 1))
start_hello_server "$A" "$a_port" "${a_args[@]}"
start_hello_server "$B" "$b_port" "${b_args[@]}"

# One client run against both servers, `first` first on the schedule; prints
# "a_p50 a_p99 a_p999 b_p50 b_p99 b_p999 errors" (µs). The client exits 1 when it
# counted errors; the round is still shown, with its error count.
run() { # first-port second-port
    local out
    out=$(taskset -c "$CLIENT_CPU" "$bin/latency_client" --addr "127.0.0.1:$1" \
        --addr "127.0.0.1:$2" --connections "$CONNS" --rate "$RATE" \
        --duration "$DURATION" --warmup "$WARMUP" "${extra[@]}") || true
    grep '^error' <<<"$out" >&2 || true
    awk -v a="127.0.0.1:$a_port" -v b="127.0.0.1:$b_port" '$1 == "RESULT" {
        delete v
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        r[v["addr"]] = v["p50_us"] " " v["p99_us"] " " v["p999_us"]
        errors += v["errors"]
    }
    END {
        if (!(a in r) || !(b in r)) { print "0 0 0 0 0 0 -1"; exit }
        print r[a], r[b], errors + 0
    }' <<<"$out"
}

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        line=$(run "$a_port" "$b_port")
    else
        line=$(run "$b_port" "$a_port")
    fi
    echo "round $round $A p50/p99/p99.9 $(cut -d' ' -f1-3 <<<"$line") us" \
        "$B $(cut -d' ' -f4-6 <<<"$line") us errors $(cut -d' ' -f7 <<<"$line")"
done | python3 -c '
import statistics, sys
ratios = {"p50": [], "p99": [], "p99.9": []}
bad = 0
for line in sys.stdin:
    print(line, end="", flush=True)
    f = line.split()
    a, b, errors = [int(x) for x in f[4:7]], [int(x) for x in f[9:12]], int(f[14])
    if errors != 0 or 0 in a:
        bad += 1
        continue
    for name, x, y in zip(ratios, a, b):
        ratios[name].append(y / x)
n = len(ratios["p50"])
print(f"{sys.argv[1]}, {sys.argv[3]} vs {sys.argv[2]} at {sys.argv[4]} req/s each, "
      f"{n} simultaneous rounds ({bad} with errors left out):")
for name, r in ratios.items():
    if not r:
        continue
    q = statistics.quantiles(r, n=4) if len(r) > 1 else r * 3
    print(f"  {name}: {sys.argv[3]} / {sys.argv[2]} median {statistics.median(r) * 100:.1f} % "
          f"(IQR {q[0] * 100:.1f}-{q[2] * 100:.1f}, min {min(r) * 100:.1f}, max {max(r) * 100:.1f})")
' "$case" "$A" "$B" "$RATE"
