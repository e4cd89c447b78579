#!/usr/bin/env bash
# The fanout scenario (1 room x 1000 clients, 100 msg/s from 10 senders) through nginx over N
# release chat replicas: N = 1 is one process without Redis, N > 1 adds a redis-server of its own
# (on a free port, no snapshots) and REDIS_URL to every replica. nginx is configured as the stack's
# (nginx/default.conf.template via scripts/lib/nginx.sh: least_conn over the replicas).
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/replicas.sh 1|2|3 [seconds]
# Besides chat-loadgen's report (loss, latency), it prints the CPU each process used while the
# load generator measured (chat replicas, redis-server, nginx's workers, the load generator), and
# that CPU per delivery. Extra chat-loadgen options: LOADGEN_ARGS.
set -euo pipefail
usage="usage: $0 <replicas 1..> [seconds]"
replicas=${1:?$usage}
seconds=${2:-25}
[[ $replicas =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }
# shellcheck source=chat/bench/lib/fleet.sh
source "$(dirname "$0")/lib/fleet.sh"
fleet_init replicas

if ((replicas > 1)); then
  fleet_start_redis
fi
fleet_start_chats "$replicas"
fleet_start_nginx ""
fleet_sample_cpu

echo "== fanout through nginx over $replicas chat replica(s)${FLEET_REDIS_URL:+ and Redis $(redis-server --version | grep -o 'v=[0-9.]*')} ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run)"
read -r -a extra <<<"${LOADGEN_ARGS:-}"
"$bin/chat-loadgen" --url "ws://127.0.0.1:$FLEET_NGINX_PORT/ws" --duration "$seconds" "${extra[@]}" \
  --server-pid "${FLEET_CHAT_PIDS[0]}" \
  --clients 1000 --rooms 1 --senders 10 --rate 100 | tee "$dir/report"
finished="$(date +%s.%N)"

# Sockets per replica (nginx logs a /ws line when a socket closes: at the load generator's exit).
sleep 1
echo "sockets per replica: $(grep -o '"upstream_addr":"[^"]*"' "$dir/access.log" | cut -d'"' -f4 | sort | uniq -c | awk '{printf "%s: %s  ", $2, $1}')"
# The measured window ends when the load generator stops measuring: at most a second or so before
# it exits (it then waits for messages in flight). CPU over [end - 1 - seconds, end - 1].
delivered="$(grep -o 'delivered [0-9]*' "$dir/report" | head -1 | awk '{print $2}')"
fleet_cpu_report "$(echo "$finished - 1 - $seconds" | bc)" "$(echo "$finished - 1" | bc)" "$delivered"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
