#!/usr/bin/env bash
# What the chat's metrics cost per delivery: the instructions the RELEASE server executes, counted by
# valgrind's callgrind (the same for the same run however busy the machine is), over the same light
# fanout run with CHAT_METRICS_ADDR set (metrics on) and empty (off), alternating, twice each.
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/metrics_cost.sh [runs per mode, default 2]
# The window counted starts once the 200 clients are connected and messages flow (callgrind_control
# -z) and ends with the run (-d): start-up is left out, the same in both modes. Nothing scrapes
# /metrics meanwhile: under valgrind the process collector's first read crashes in rustix's auxv
# check (valgrind's auxiliary vector, not the program's).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release"
[[ -x "$bin/chat" && -x "$bin/chat-loadgen" ]] || { echo "build first: cargo build --release -p chat -p chat-loadgen" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
runs=${1:-2}
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export JWT_SECRET=bench-secret-bench-secret-bench-secret-0123
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# one <on|off> <n>: prints "<mode> <instructions> <deliveries>".
one() {
  local mode=$1 n=$2 port metrics="" server loadgen
  port="$(free_port)"
  if [[ $mode == on ]]; then metrics="127.0.0.1:$(free_port)"; fi
  CHAT_ADDR="127.0.0.1:$port" CHAT_METRICS_ADDR="$metrics" CHAT_MESSAGES_PER_SECOND=1000 CHAT_MESSAGES_BURST=1000 \
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/$mode-$n.%p" "$bin/chat" 2>"$out/$mode-$n.log" &
  server=$!
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  # 1 room x 200 clients, 5 messages/s from 4 senders: 1000 deliveries/s for 20 s.
  "$bin/chat-loadgen" --url "ws://127.0.0.1:$port/ws" --clients 200 --rooms 1 --senders 4 --rate 5 \
    --duration 20 --warmup 3 --connect-rate 200 >"$out/$mode-$n.txt" 2>&1 &
  loadgen=$!
  sleep 5
  callgrind_control -z "$server" >/dev/null
  wait "$loadgen"
  callgrind_control -d "$server" >/dev/null
  kill -TERM "$server"
  wait "$server" || true
  printf '%s %s %s\n' "$mode" "$(awk '/^totals:/ {print $2}' "$out/$mode-$n".*.1)" \
    "$(sed -n 's/.*delivered \([0-9]*\) .*/\1/p' "$out/$mode-$n.txt")"
}

for n in $(seq "$runs"); do
  one on "$n"
  one off "$n"
done
