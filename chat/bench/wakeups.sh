#!/usr/bin/env bash
# How the chat's and the ceiling's worker threads hand work to each other in the fanout room
# (1 room × 1000, 100 messages/s): the server's system calls and context switches over a 5-second
# window of each run, counted by `perf stat` and given per 1000 frames sent. Counts, unlike the
# clock, barely move with this machine's drift, so they show a difference of scheduling that the
# CPU figures of compare.sh cannot resolve (chat/README.md, "Where the rest goes").
#   chat/bench/wakeups.sh [rounds]          (default 3; servers alternate: ceiling, chat, ...)
#   SERVERS="chat" chat/bench/wakeups.sh 1  (some of: ceiling chat)
#   CHAT_PREFIX="chrt -b 0" SERVERS=chat chat/bench/wakeups.sh   (the chat under a command, run.sh)
# Needs perf and the right to trace system calls (root, or kernel.perf_event_paranoid <= -1).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release"
rounds=${1:-3}
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }
(cd "$root" && cargo build --release -q -p chat -p chat-loadgen --bins --example ceiling)

events=syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_write
events+=,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,context-switches,cpu-migrations

count() {
  local server=$1 binary log pid label=$1
  if [[ $server == ceiling ]]; then
    binary="$bin/examples/ceiling"
  else
    binary="$bin/chat"
    [[ -z ${CHAT_PREFIX:-} ]] || label="$server ($CHAT_PREFIX)"
  fi
  log=$(mktemp)
  SERVER=$server "$root/chat/bench/run.sh" fanout 16 >"$log" 2>&1 &
  local run=$!
  # Counted once the clients are in and the senders have run for a while.
  sleep 8
  pid=$(pgrep -xf "$binary" | head -1)
  perf stat -x, -e "$events" -p "$pid" -- sleep 5 2>&1 >/dev/null |
    awk -F, -v server="$label" '
      { n[$3] = $1 }
      END {
        frames = n["syscalls:sys_enter_sendto"] + n["syscalls:sys_enter_sendmsg"]
        per = 1000 / frames
        printf "%s: sends %6d (of which sendmsg %5d) | per 1000 sends: eventfd writes %5.1f, futex %5.1f, epoll_wait %5.1f, context switches %5.1f, migrations %4.1f\n",
          server, frames, n["syscalls:sys_enter_sendmsg"], n["syscalls:sys_enter_write"] * per,
          n["syscalls:sys_enter_futex"] * per, n["syscalls:sys_enter_epoll_wait"] * per,
          n["context-switches"] * per, n["cpu-migrations"] * per
      }'
  wait "$run" || true
  grep -E "server CPU while measuring" "$log" | sed "s/^/         /"
  rm -f "$log"
  sleep 2
}

for _ in $(seq "$rounds"); do
  for server in ${SERVERS:-ceiling chat}; do
    count "$server"
  done
done
