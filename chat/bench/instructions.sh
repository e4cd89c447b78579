#!/usr/bin/env bash
# Instructions per delivery, counted by valgrind's callgrind (the same for the same run however busy
# the machine is), of the RELEASE servers (built first) over one light fanout run each, in the
# order given:
#   chat/bench/instructions.sh [chat|chat-without-metrics|ceiling]...   (default: chat ceiling)
#   chat/bench/instructions.sh chat chat-without-metrics chat chat-without-metrics   # what metrics cost
#   SHAPE=rooms chat/bench/instructions.sh   (40 rooms x 5, every client 1 message/s: what comes once
#                                            per message weighs as in the rooms scenario)
#   CHAT_BIN=path                            (another build of the chat, for `chat`)
# The window counted starts once the 200 clients are connected and messages flow (callgrind_control
# -z) and ends with the run (-d): start-up is left out, the same for every server. User space only:
# the kernel's share (the sends) is the same for the same deliveries. Nothing scrapes /metrics
# meanwhile: under valgrind the process collector's first read crashes in rustix's auxv check
# (valgrind's auxiliary vector, not the program's).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release"
(cd "$root" && cargo build --release -q -p chat -p chat-loadgen --bins --example ceiling)
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
(($#)) || set -- chat ceiling
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export JWT_SECRET=bench-secret-bench-secret-bench-secret-0123
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# one <server> <n>: prints "<server> <instructions> <deliveries> <per delivery>".
one() {
  local which=$1 n=$2 port server loadgen
  port="$(free_port)"
  local callgrind=(valgrind --tool=callgrind --callgrind-out-file="$out/$which-$n.%p")
  case "$which" in
    chat | chat-without-metrics)
      local metrics=""
      [[ $which == chat ]] && metrics="127.0.0.1:$(free_port)"
      CHAT_ADDR="127.0.0.1:$port" CHAT_METRICS_ADDR="$metrics" CHAT_MESSAGES_PER_SECOND=1000 CHAT_MESSAGES_BURST=1000 \
        RUST_LOG=warn "${callgrind[@]}" "${CHAT_BIN:-$bin/chat}" 2>"$out/$which-$n.log" &
      ;;
    ceiling)
      CEILING_ADDR="127.0.0.1:$port" "${callgrind[@]}" "$bin/examples/ceiling" 2>"$out/$which-$n.log" &
      ;;
    *) echo "unknown server $which (chat, chat-without-metrics or ceiling)" >&2; exit 2 ;;
  esac
  server=$!
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  # 1000 deliveries/s for 20 s: 1 room x 200 clients, 5 messages/s from 4 senders; or 40 rooms x 5.
  local shape=(--rooms 1 --senders 4 --rate 5)
  [[ ${SHAPE:-fanout} == rooms ]] && shape=(--rooms 40 --senders 200 --per-sender-rate 1)
  "$bin/chat-loadgen" --url "ws://127.0.0.1:$port/ws" --clients 200 "${shape[@]}" \
    --duration 20 --warmup 3 --connect-rate 200 >"$out/$which-$n.txt" 2>&1 &
  loadgen=$!
  sleep 5
  callgrind_control -z "$server" >/dev/null
  wait "$loadgen"
  callgrind_control -d "$server" >/dev/null
  kill -TERM "$server"
  sleep 1
  kill -KILL "$server" 2>/dev/null || true # the ceiling has no graceful stop
  wait "$server" || true
  local instructions deliveries
  instructions="$(awk '/^totals:/ {print $2}' "$out/$which-$n".*.1)"
  deliveries="$(sed -n 's/.*delivered \([0-9]*\) .*/\1/p' "$out/$which-$n.txt")"
  printf '%s %s %s %s\n' "$which" "$instructions" "$deliveries" "$((instructions / deliveries))"
}

echo "server instructions deliveries per-delivery"
n=0
for which in "$@"; do
  n=$((n + 1))
  one "$which" "$n"
done
