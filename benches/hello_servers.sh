# Sourced by benches/http_load.sh, benches/latency.sh, benches/http_pair.sh and
# benches/latency_pair.sh (not run on its own): starts one examples/hello_bench server
# per mode in `modes`, pinned to CPU $SERVER_CPU, on ports $BASE_PORT, $BASE_PORT + 1,
# …, waits until each answers, and records its port in `port[mode]`;
# `start_hello_server` starts more. Every server is killed when the sourcing script
# exits (`hello_cleanup`).
# Needs: `bin` (the directory of the release examples), SERVER_CPU, BASE_PORT, `modes`.
# shellcheck shell=bash disable=SC2154 # bin, modes: set by the sourcing script

hello_pids=()
hello_cleanup() { for pid in "${hello_pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap hello_cleanup EXIT

declare -A port
start_hello_server() { # mode port [extra hello_bench args...]
    taskset -c "$SERVER_CPU" "$bin/hello_bench" --mode "$1" --port "$2" "${@:3}" &
    hello_pids+=($!)
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$2/" >/dev/null && return 0
        sleep 0.05
    done
    echo "server $1 did not start" >&2
    exit 1
}
for i in "${!modes[@]}"; do
    port[${modes[$i]}]=$((BASE_PORT + i))
    start_hello_server "${modes[$i]}" "${port[${modes[$i]}]}"
done
