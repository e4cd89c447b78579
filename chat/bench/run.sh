#!/usr/bin/env bash
# Runs one load scenario against a freshly started RELEASE chat server and prints the report.
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/run.sh fanout|fanout-half|heavy|rooms|sparse|idle|idle10000|join1000|join5000|restart [seconds]
# Extra chat-loadgen options can be passed in LOADGEN_ARGS (e.g. LOADGEN_ARGS="--threads 1"), and
# CHAT_PREFIX runs the chat under a command (e.g. CHAT_PREFIX="chrt -b 0": its threads SCHED_BATCH),
# CHAT_BIN another build of it (default target/release/chat); CEILING_PREFIX runs the ceiling under one.
# The clients connect to the server directly, or to LOADGEN_URL when set (chat/bench/nginx.sh
# puts nginx in between that way).
# The server and chat-loadgen run on this machine, on 127.0.0.1, with raised limits for the
# senders (CHAT_MESSAGES_PER_SECOND) and as many open files as the hard limit allows.
set -euo pipefail
usage="usage: $0 fanout|fanout-half|heavy|rooms|sparse|idle|idle10000|join1000|join5000|restart [seconds]"
scenario=${1:?$usage}
seconds=${2:-25}
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release"
[[ -x "$bin/chat" && -x "$bin/chat-loadgen" ]] || { echo "build first: cargo build --release -p chat -p chat-loadgen" >&2; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
port=${PORT:-9100}
export JWT_SECRET=${JWT_SECRET:-bench-secret-bench-secret-bench-secret-0123}

server=""
# SERVER=ceiling runs the benchmarks' ceiling (chat/examples/ceiling.rs) instead of the chat.
start_server() {
  if [[ "${SERVER:-chat}" == ceiling ]]; then
    [[ -x "$bin/examples/ceiling" ]] || { echo "build first: cargo build --release -p chat --example ceiling" >&2; exit 1; }
    CEILING_ADDR="127.0.0.1:$port" ${CEILING_PREFIX:-} "$bin/examples/ceiling" &
  else
    CHAT_ADDR="127.0.0.1:$port" CHAT_MESSAGES_PER_SECOND=1000 CHAT_MESSAGES_BURST=1000 \
      CHAT_MAX_CONNECTIONS=20000 RUST_LOG=warn ${CHAT_PREFIX:-} "${CHAT_BIN:-$bin/chat}" &
  fi
  server=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
}
stop_server() {
  if [[ -n "$server" ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
}
trap stop_server EXIT
start_server

common=(--url "${LOADGEN_URL:-ws://127.0.0.1:$port/ws}" --duration "$seconds")
read -r -a extra <<<"${LOADGEN_ARGS:-}"
common+=("${extra[@]}")
echo "== $scenario on ${SERVER:-chat} ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run)"
case "$scenario" in
  # 1 room x 1000 clients, 100 messages/s from 10 senders: 100 000 deliveries/s offered.
  fanout) "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients 1000 --rooms 1 --senders 10 --rate 100 ;;
  # The same room at half the rate, 50 000 deliveries/s: two servers side by side (side-by-side.sh).
  fanout-half) "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients 1000 --rooms 1 --senders 10 --rate 50 ;;
  # 1 room x 1000 clients, 500 messages/s from 50 senders: 500 000 deliveries/s offered.
  heavy) "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients 1000 --rooms 1 --senders 50 --rate 500 ;;
  # 200 rooms x 5 clients, every client sends 1 message/s.
  rooms) "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients 1000 --rooms 200 --senders 1000 --per-sender-rate 1 ;;
  # Many small rooms: 2000 rooms x 5 clients, each client 1 message every 5 s (10 000 deliveries/s).
  sparse) "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients 10000 --rooms 2000 --senders 10000 --per-sender-rate 0.2 --connect-rate 1000 ;;
  # 5000 connections (1000 rooms x 5) that only answer pings.
  idle) "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients 5000 --rooms 1000 --senders 0 --warmup 0 --connect-rate 1000 ;;
  # The documented capacity of one process: 10 000 connections (2000 rooms x 5), idle.
  idle10000) "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients 10000 --rooms 2000 --senders 0 --warmup 0 --connect-rate 1000 ;;
  # A join burst: 1000 or 5000 clients join one room at 10 000 joins/s, then stay for `seconds`.
  join1000 | join5000)
    "$bin/chat-loadgen" "${common[@]}" --server-pid "$server" --clients "${scenario#join}" --rooms 1 --senders 0 \
      --warmup 0 --connect-rate 10000 --connect-parallel 1000 ;;
  # 1000 clients in one room; 5 s in, the server is restarted (SIGTERM, then started again on
  # the same port) and every client reconnects after 0.5-1 s, as the chat page does.
  restart)
    "$bin/chat-loadgen" "${common[@]}" --clients 1000 --rooms 1 --senders 0 --warmup 0 \
      --connect-rate 10000 --connect-parallel 1000 --reconnect-delay-ms 500-1000 &
    loadgen=$!
    sleep 5
    echo "restarting the server (pid $server)"
    stop_server
    start_server
    echo "server started again (pid $server)"
    wait "$loadgen"
    ;;
  *) echo "unknown scenario $scenario; $usage" >&2; exit 2 ;;
esac
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
