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
nginx_port="$(free_port)"
# No website behind it: only /ws is measured (port 9, "discard", is never listened on here).
nginx_native_upstreams 9 "$chat_port"
NGINX_LISTEN="127.0.0.1:$nginx_port" NGINX_RESOLVER=127.0.0.1 NGINX_ACCESS_LOG="$dir/access.log" \
  NGINX_WS_PER_ADDRESS=20000 nginx_render_template "$dir/default.conf"
nginx_write_main_conf "$dir" "$dir/default.conf"
nginx_test_conf "$dir"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" &
nginx_pid=$!
trap 'kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null; rm -rf "$dir"' EXIT
wait_for_port "$nginx_port" 10 || die "nginx did not start; see $dir/error.log"
echo "== through nginx $(nginx -v 2>&1 | cut -d/ -f2) on 127.0.0.1:$nginx_port ($(grep -hE '^ *worker_(processes|connections)' "$dir/nginx.conf" | tr -s ' \n' ' '))"
PORT="$chat_port" LOADGEN_URL="ws://127.0.0.1:$nginx_port/ws" "$root/chat/bench/run.sh" "$@"
