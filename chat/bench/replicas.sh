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
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
# shellcheck source=scripts/lib/nginx.sh
source "$root/scripts/lib/nginx.sh"
bin="$root/target/release"
[[ -x "$bin/chat" && -x "$bin/chat-loadgen" ]] || die "build first: cargo build --release -p chat -p chat-loadgen"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export JWT_SECRET=${JWT_SECRET:-bench-secret-bench-secret-bench-secret-0123}
dir="$(mktemp -d /tmp/chat-bench-replicas.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# name pid, one per measured process
measured=()
redis_url=""
if ((replicas > 1)); then
  redis_port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir" --save "" --appendonly no \
    --logfile "$dir/redis.log" &
  pids+=($!)
  measured+=("redis $!")
  wait_for_port "$redis_port" 10 || die "redis-server did not start"
  redis_url="redis://127.0.0.1:$redis_port"
fi

ports=()
for i in $(seq "$replicas"); do
  port="$(free_port)"
  # Each replica's metrics on a port of its own (the default would clash between replicas).
  env ${redis_url:+REDIS_URL="$redis_url"} CHAT_ADDR="127.0.0.1:$port" CHAT_METRICS_ADDR="127.0.0.1:$(free_port)" \
    CHAT_MESSAGES_PER_SECOND=1000 CHAT_MESSAGES_BURST=1000 CHAT_MAX_CONNECTIONS=20000 RUST_LOG=warn \
    "$bin/chat" 2>"$dir/chat-$i.log" &
  pids+=($!)
  measured+=("chat-$i $!")
  wait_for_port "$port" 10 || die "chat-$i did not start"
  ports+=("$port")
done
# Ready means sharing rooms through Redis (chat healthcheck says "degraded" until then).
for port in "${ports[@]}"; do
  for _ in $(seq 50); do
    [[ -z "$(CHAT_ADDR="127.0.0.1:$port" "$bin/chat" healthcheck 2>&1)" ]] && break
    sleep 0.1
  done
done

nginx_start_for_chat_bench "$dir" "${ports[*]}"
nginx_port=$BENCH_NGINX_PORT
nginx_pid=$BENCH_NGINX_PID
pids+=("$nginx_pid")
for worker in $(pgrep -P "$nginx_pid"); do measured+=("nginx $worker"); done

# utime + stime of every measured process, twice a second, with the time.
ticks() {
  local line="" pid
  for entry in "${measured[@]}"; do
    read -r _ pid <<<"$entry"
    line+=" $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
  done
  echo "$(date +%s.%N)$line"
}
( while :; do ticks; sleep 0.5; done ) >"$dir/ticks" &
sampler=$!
pids+=("$sampler")

echo "== fanout through nginx over $replicas chat replica(s)${redis_url:+ and Redis $(redis-server --version | grep -o 'v=[0-9.]*')} ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run)"
read -r -a extra <<<"${LOADGEN_ARGS:-}"
"$bin/chat-loadgen" --url "ws://127.0.0.1:$nginx_port/ws" --duration "$seconds" "${extra[@]}" \
  --server-pid "${pids[$((replicas > 1 ? 1 : 0))]}" \
  --clients 1000 --rooms 1 --senders 10 --rate 100 | tee "$dir/report"
finished="$(date +%s.%N)"
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

# Sockets per replica (nginx logs a /ws line when a socket closes: at the load generator's exit).
sleep 1
echo "sockets per replica: $(grep -o '"upstream_addr":"[^"]*"' "$dir/access.log" | cut -d'"' -f4 | sort | uniq -c | awk '{printf "%s: %s  ", $2, $1}')"
# The measured window ends when the load generator stops measuring: at most a second or so before
# it exits (it then waits for messages in flight). CPU over [end - 1 - seconds, end - 1].
delivered="$(grep -o 'delivered [0-9]*' "$dir/report" | head -1 | awk '{print $2}')"
names="$(printf '%s\n' "${measured[@]}" | awk '{print $1}' | tr '\n' ' ')"
awk -v from="$(echo "$finished - 1 - $seconds" | bc)" -v to="$(echo "$finished - 1" | bc)" \
  -v hz="$(getconf CLK_TCK)" -v delivered="$delivered" -v names="$names" '
  { t = $1; if (t <= from) { for (i = 2; i <= NF; i++) a[i] = $i; ta = t }
             if (t <= to)   { for (i = 2; i <= NF; i++) b[i] = $i; tb = t } }
  END {
    n = split(names, name, " "); span = tb - ta
    printf "CPU while measuring (%.1f s):", span
    for (i = 1; i <= n; i++) {
      key = name[i]; cpu[key] += (b[i + 1] - a[i + 1]) / hz; total += (b[i + 1] - a[i + 1]) / hz
      if (!(key in seen)) { seen[key] = 1; order[++k] = key }
    }
    for (j = 1; j <= k; j++) printf "  %s %.0f %%", order[j], 100 * cpu[order[j]] / span
    printf "  (all %.0f %% of one core)\n", 100 * total / span
    if (delivered > 0) {
      printf "CPU per delivery (deliveries of the whole run, %d):", delivered
      for (j = 1; j <= k; j++) printf "  %s %.2f us", order[j], 1e6 * cpu[order[j]] / (delivered * span / '"$seconds"')
      printf "  (all %.2f us)\n", 1e6 * total / (delivered * span / '"$seconds"')
    }
  }' "$dir/ticks"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
