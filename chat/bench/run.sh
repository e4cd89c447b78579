#!/usr/bin/env bash
# Runs one load scenario against a freshly started RELEASE chat server and prints the report.
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/run.sh fanout|heavy|rooms|idle [seconds]
# Extra chat-loadgen options can be passed in LOADGEN_ARGS (e.g. LOADGEN_ARGS="--threads 1").
# The server and chat-loadgen run on this machine, on 127.0.0.1, with raised limits for the
# senders (CHAT_MESSAGES_PER_SECOND) and as many open files as the hard limit allows.
set -euo pipefail
scenario=${1:?usage: $0 fanout|heavy|rooms|idle [seconds]}
seconds=${2:-25}
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release"
[[ -x "$bin/chat" && -x "$bin/chat-loadgen" ]] || { echo "build first: cargo build --release -p chat -p chat-loadgen" >&2; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
port=${PORT:-9100}
export JWT_SECRET=${JWT_SECRET:-bench-secret-bench-secret-bench-secret-0123}

CHAT_ADDR="127.0.0.1:$port" CHAT_MESSAGES_PER_SECOND=1000 CHAT_MESSAGES_BURST=1000 \
  CHAT_MAX_CONNECTIONS=20000 RUST_LOG=warn "$bin/chat" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

common=(--url "ws://127.0.0.1:$port/ws" --duration "$seconds" --server-pid "$server")
read -r -a extra <<<"${LOADGEN_ARGS:-}"
common+=("${extra[@]}")
echo "== $scenario ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run)"
case "$scenario" in
  # 1 room x 1000 clients, 100 messages/s from 10 senders: 100 000 deliveries/s offered.
  fanout) "$bin/chat-loadgen" "${common[@]}" --clients 1000 --rooms 1 --senders 10 --rate 100 ;;
  # 1 room x 1000 clients, 500 messages/s from 50 senders: 500 000 deliveries/s offered.
  heavy) "$bin/chat-loadgen" "${common[@]}" --clients 1000 --rooms 1 --senders 50 --rate 500 ;;
  # 200 rooms x 5 clients, every client sends 1 message/s.
  rooms) "$bin/chat-loadgen" "${common[@]}" --clients 1000 --rooms 200 --senders 1000 --per-sender-rate 1 ;;
  # 5000 connections (1000 rooms x 5) that only answer pings.
  idle) "$bin/chat-loadgen" "${common[@]}" --clients 5000 --rooms 1000 --senders 0 --warmup 0 --connect-rate 1000 ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
