#!/usr/bin/env bash
# Runs a chat/bench/run.sh scenario with nginx in front of the release chat server, configured
# exactly as the stack's (nginx/default.conf.template and nginx/nginx.conf, via
# scripts/lib/nginx.sh), so the figures can stand beside the direct ones.
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/nginx.sh fanout|idle|... [seconds]
# Every client of the load generator comes from 127.0.0.1, so nginx's per-address socket cap is
# raised for the run (NGINX_WS_PER_ADDRESS); everything else is the deployment's configuration.
# BENCH_NGINX_FRONT=stream or stream-js puts nginx's stream module on the port instead, for the
# comparison in docs/scaling.md (scripts/lib/nginx.sh, nginx_stream_front_for_chat_bench).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
# shellcheck source=scripts/lib/nginx.sh
source "$root/scripts/lib/nginx.sh"

dir="$(mktemp -d /tmp/chat-bench-nginx.XXXXXX)"
chat_port=${PORT:-9100}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nginx_start_for_chat_bench "$dir" "$chat_port"
nginx_port=$BENCH_NGINX_PORT
trap 'kill "$BENCH_NGINX_PID" 2>/dev/null; wait "$BENCH_NGINX_PID" 2>/dev/null; rm -rf "$dir"' EXIT
echo "== through nginx $(nginx -v 2>&1 | cut -d/ -f2) on 127.0.0.1:$nginx_port ($(grep -hE '^ *worker_(processes|connections)' "$dir/nginx.conf" | tr -s ' \n' ' '))"
# nginx's own memory: its workers' RSS before the clients come and at its highest during the run.
workers_rss() {
  local total=0 pid rss
  for pid in $(pgrep -P "$BENCH_NGINX_PID"); do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${rss:-0}))
  done
  echo "$total"
}
base=$(workers_rss)
(
  highest=$base
  while sleep 0.3; do
    now=$(workers_rss)
    if ((now > highest)); then highest=$now && echo "$highest" >"$dir/nginx-highest"; fi
  done
) &
sampler=$!
PORT="$chat_port" LOADGEN_URL="ws://127.0.0.1:$nginx_port/ws" "$root/chat/bench/run.sh" "$@" | tee "$dir/report"
kill "$sampler" 2>/dev/null || true
clients=$(sed -nE 's/^connected ([0-9]+) of.*/\1/p' "$dir/report" | head -1)
highest=$(cat "$dir/nginx-highest" 2>/dev/null || echo "$base")
if [[ -n "$clients" && "$clients" -gt 0 ]]; then
  echo "nginx workers' RSS: $base KiB before connecting, at most $highest KiB; per connection: $(awk -v d=$((highest - base)) -v n="$clients" 'BEGIN { printf "%.1f", d / n }') KiB"
fi
