#!/usr/bin/env bash
# Runs a chat/bench/run.sh scenario with nginx in front of the release chat server, configured
# exactly as the stack's (nginx/default.conf.template and nginx/nginx.conf, via
# scripts/lib/nginx.sh), so the figures can stand beside the direct ones.
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/nginx.sh fanout|idle|... [seconds]
# Every client of the load generator comes from 127.0.0.1, so nginx's per-address socket cap is
# raised for the run (NGINX_WS_PER_ADDRESS); everything else is the deployment's configuration.
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
PORT="$chat_port" LOADGEN_URL="ws://127.0.0.1:$nginx_port/ws" "$root/chat/bench/run.sh" "$@"
