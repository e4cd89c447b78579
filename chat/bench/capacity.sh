#!/usr/bin/env bash
# What one box carries through its one published port: nginx (configured as the stack's) in front
# of 2 release chat replicas sharing rooms through a redis-server, all on this machine.
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/capacity.sh            # SOCKETS=18000 CAP=9000 (CHAT_MAX_CONNECTIONS per replica)
# 1. SOCKETS - 1000 idle clients (rooms of 5) open at once, from two load generators spread over
#    loopback source addresses (one process holds at most 20 000 files here), then a 1000-member
#    room among them: SOCKETS open in all, every replica at CAP when SOCKETS = 2 x CAP.
# 2. Fanout in that room (50 messages/s: 50 000 deliveries/s) while everyone stays: loss, latency,
#    CPU per delivery of each process.
# 3. Before the fanout measures, 500 clients more, over the cap of both replicas: each refused
#    (503 from the chat, passed on by nginx to the other replica, then to the client), and how
#    fast; never 504.
# It prints memory per socket for nginx's workers, the chat replicas and the kernel (slab and TCP
# buffers), and the connect rate. nginx listens with `reuseport` so its two workers share the
# sockets evenly, each under the 20 000 open files a process may hold here.
set -euo pipefail
# shellcheck source=chat/bench/lib/fleet.sh
source "$(dirname "$0")/lib/fleet.sh"
sockets=${SOCKETS:-18000}
cap=${CAP:-9000}
idle=$((sockets - 1000))
((idle > 0 && idle % 2 == 0)) || die "SOCKETS must be an even number over 1000"
fleet_init capacity

# Kernel memory in KiB: slab (socket structures) plus the pages TCP buffers hold.
kernel_kib() {
  echo $(($(awk '/^Slab:/ {print $2}' /proc/meminfo) + $(awk '/^TCP:/ {print $NF}' /proc/net/sockstat) * 4))
}
# wait_line <file> <pattern> <seconds>: until a load generator printed the line.
wait_line() {
  for _ in $(seq $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "no '$2' in $1 after $3 s"
}

fleet_start_redis
fleet_start_chats 2 CHAT_MAX_CONNECTIONS="$cap"
fleet_start_nginx reuseport
url="ws://127.0.0.1:$FLEET_NGINX_PORT/ws"
echo "== $sockets sockets through nginx $(nginx -v 2>&1 | cut -d/ -f2) over 2 chat replicas (CHAT_MAX_CONNECTIONS=$cap each) and Redis ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run)"
sleep 1
nginx_before=$(fleet_rss nginx)
chat_before=$(fleet_rss chat)
kernel_before=$(kernel_kib)
run_for=$((idle / 1500 + 60))

# 1. The idle crowd, then the big room.
half=$((idle / 2))
for i in 1 2; do
  "$bin/chat-loadgen" --url "$url" --clients "$half" --rooms $((half / 5)) --senders 0 --warmup 0 \
    --duration "$run_for" --connect-rate 1500 --connect-parallel 500 \
    --source-addrs "127.0.$i.1-127.0.$i.8" >"$dir/idle-$i.txt" 2>&1 &
  fleet_pids+=($!)
  fleet_measure loadgen $!
done
wait_line "$dir/idle-1.txt" '^connected' "$run_for"
wait_line "$dir/idle-2.txt" '^connected' "$run_for"
grep -h '^connected\|opened nothing' "$dir"/idle-*.txt
fleet_sample_cpu
# Its measuring starts 1 s (settling) + 10 s (warm-up) after its `connected` line: room for step 3.
"$bin/chat-loadgen" --url "$url" --clients 1000 --rooms 1 --senders 10 --rate 50 --warmup 10 --duration 20 \
  --connect-rate 1000 --source-addrs 127.0.3.1-127.0.3.4 >"$dir/fanout.txt" 2>&1 &
fanout=$!
fleet_measure loadgen "$fanout"
wait_line "$dir/fanout.txt" '^connected' 60
measure_from=$(echo "$(date +%s.%N) + 11" | bc)
grep -h '^connected\|opened nothing' "$dir/fanout.txt"
open=$(($(sed -nE 's/^connected ([0-9]+) of.*/\1/p' "$dir"/idle-*.txt "$dir/fanout.txt" | paste -sd+ | bc)))
per_replica=""
for port in "${FLEET_CHAT_PORTS[@]}"; do
  per_replica+=" $(ss -Htn state established "( sport = :$port )" | wc -l)"
done
echo "open at once: $open of $sockets (per replica:$per_replica)"
nginx_now=$(fleet_rss nginx)
chat_now=$(fleet_rss chat)
kernel_now=$(kernel_kib)
echo "memory per open socket: nginx $(((nginx_now - nginx_before) * 100 / open))e-2 KiB, chat $(((chat_now - chat_before) * 100 / open))e-2 KiB, kernel $(((kernel_now - kernel_before) * 100 / open))e-2 KiB (its four TCP sockets: client and nginx, nginx and chat)" | sed -E 's/([0-9]+)([0-9]{2})e-2/\1.\2/g'

# 3. Over the cap, everyone still in.
"$bin/chat-loadgen" --url "$url" --clients 500 --rooms 100 --senders 0 --warmup 0 --duration 1 \
  --connect-rate 500 --source-addrs 127.0.4.1 >"$dir/over.txt" 2>&1 || true
echo "500 clients over the cap: $(grep -h '^connected\|opened nothing' "$dir/over.txt" | tr '\n' ' ')"

# 2. Fanout among them.
wait "$fanout" || true
measure_to=$(echo "$(date +%s.%N) - 1" | bc)
echo "fanout in the 1000-member room:"
grep -E '^(messages|latency|still|connections ended)' "$dir/fanout.txt"
fleet_cpu_report "$measure_from" "$measure_to" "$(grep -o 'delivered [0-9]*' "$dir/fanout.txt" | head -1 | awk '{print $2}')"
per_replica=""
for port in "${FLEET_CHAT_PORTS[@]}"; do
  per_replica+=" $(ss -Htn state established "( sport = :$port )" | wc -l)"
done
echo "the crowd after the fanout: open per replica:$per_replica (of $idle)"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
