# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # `dir` and `bin` come from the caller, which reads the FLEET_* results
# The benchmarks' fleet through nginx: a redis-server of its own, release chat replicas sharing it,
# nginx configured as the stack's in front (scripts/lib/nginx.sh), and a sampler of every measured
# process's CPU. Sourced by chat/bench/replicas.sh and chat/bench/capacity.sh, which call
# fleet_init first.
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/common.sh"
# shellcheck source=scripts/lib/nginx.sh
source "$ROOT/scripts/lib/nginx.sh"

# fleet_init <name>: the release binaries (`bin`), as many open files as allowed, the benchmarks'
# JWT secret, and a scratch folder (`dir`) removed at exit with everything started (KEEP=1 keeps
# the folder, for a look at the logs).
fleet_init() {
  bin="$ROOT/target/release"
  [[ -x "$bin/chat" && -x "$bin/chat-loadgen" ]] || die "build first: cargo build --release -p chat -p chat-loadgen"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  export JWT_SECRET=${JWT_SECRET:-bench-secret-bench-secret-bench-secret-0123}
  dir="$(mktemp -d "/tmp/chat-bench-$1.XXXXXX")"
  trap 'fleet_stop; [[ -n "${KEEP:-}" ]] || rm -rf "$dir"' EXIT
}

# Every process started, stopped by fleet_stop; "name pid" of every process whose CPU is measured.
fleet_pids=()
fleet_measured=()

fleet_stop() {
  for pid in "${fleet_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${fleet_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# fleet_start_redis: a redis-server on a free port, no snapshots; sets FLEET_REDIS_URL.
fleet_start_redis() {
  local port
  port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no --logfile "$dir/redis.log" &
  fleet_pids+=($!)
  fleet_measured+=("redis $!")
  wait_for_port "$port" 10 || die "redis-server did not start"
  FLEET_REDIS_URL="redis://127.0.0.1:$port"
}

# fleet_start_chats <n> [VAR=value...]: n release chat replicas (sharing FLEET_REDIS_URL when
# set), each with its metrics on a port of its own; waits until they share rooms. Sets
# FLEET_CHAT_PORTS and FLEET_CHAT_PIDS.
fleet_start_chats() {
  local replicas=$1 i port
  shift
  FLEET_CHAT_PORTS=()
  FLEET_CHAT_PIDS=()
  for i in $(seq "$replicas"); do
    port="$(free_port)"
    env ${FLEET_REDIS_URL:+REDIS_URL="$FLEET_REDIS_URL"} CHAT_ADDR="127.0.0.1:$port" \
      CHAT_METRICS_ADDR="127.0.0.1:$(free_port)" CHAT_MESSAGES_PER_SECOND=1000 CHAT_MESSAGES_BURST=1000 \
      CHAT_MAX_CONNECTIONS=20000 RUST_LOG=warn "$@" "$bin/chat" 2>"$dir/chat-$i.log" &
    fleet_pids+=($!)
    fleet_measured+=("chat-$i $!")
    FLEET_CHAT_PIDS+=($!)
    wait_for_port "$port" 10 || die "chat-$i did not start"
    FLEET_CHAT_PORTS+=("$port")
  done
  # Ready means sharing rooms through Redis (chat healthcheck says "degraded" until then).
  for port in "${FLEET_CHAT_PORTS[@]}"; do
    for _ in $(seq 50); do
      [[ -z "$(CHAT_ADDR="127.0.0.1:$port" "$bin/chat" healthcheck 2>&1)" ]] && break
      sleep 0.1
    done
  done
}

# fleet_start_nginx [listen options]: nginx in front of the replicas; sets FLEET_NGINX_PORT and
# FLEET_NGINX_PID and measures its workers.
fleet_start_nginx() {
  local worker
  BENCH_NGINX_LISTEN_OPTIONS=${1:-} nginx_start_for_chat_bench "$dir" "${FLEET_CHAT_PORTS[*]}"
  FLEET_NGINX_PORT=$BENCH_NGINX_PORT
  FLEET_NGINX_PID=$BENCH_NGINX_PID
  fleet_pids+=("$FLEET_NGINX_PID")
  for worker in $(pgrep -P "$FLEET_NGINX_PID"); do fleet_measured+=("nginx $worker"); done
}

# fleet_measure name pid: one more process whose CPU is sampled (e.g. a load generator).
fleet_measure() { fleet_measured+=("$1 $2"); }

# fleet_sample_cpu: samples utime + stime of every measured process into $dir/ticks, twice a
# second, until fleet_stop.
fleet_sample_cpu() {
  (
    while :; do
      local line="" entry pid
      for entry in "${fleet_measured[@]}"; do
        read -r _ pid <<<"$entry"
        line+=" $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
      done
      echo "$(date +%s.%N)$line"
      sleep 0.5
    done
  ) >"$dir/ticks" &
  fleet_pids+=($!)
}

# fleet_cpu_report <from> <to> <deliveries in the window>: CPU of each kind of process over
# [from, to] (epoch seconds), as a share of one core and per delivery.
fleet_cpu_report() {
  local names
  names="$(printf '%s\n' "${fleet_measured[@]}" | awk '{print $1}' | tr '\n' ' ')"
  awk -v from="$1" -v to="$2" -v delivered="$3" -v hz="$(getconf CLK_TCK)" -v names="$names" '
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
        printf "CPU per delivery (%d deliveries):", delivered
        for (j = 1; j <= k; j++) printf "  %s %.2f us", order[j], 1e6 * cpu[order[j]] / delivered
        printf "  (all %.2f us)\n", 1e6 * total / delivered
      }
    }' "$dir/ticks"
}

# fleet_rss name...: the summed RSS (KiB) of every measured process of these kinds.
fleet_rss() {
  local total=0 entry kind pid rss
  for entry in "${fleet_measured[@]}"; do
    read -r kind pid <<<"$entry"
    [[ " $* " == *" $kind "* || " $* " == *" ${kind%%-*} "* ]] || continue
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${rss:-0}))
  done
  echo "$total"
}
