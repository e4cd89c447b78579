#!/usr/bin/env bash
# The ticket requests of a reconnect storm, through nginx: a private release stack
# (scripts/stack: the MongoDB stand-in or MONGODB_URI, website, 2 chat replicas, Redis, nginx with
# the deployment's limits), PEOPLE people signed up, and PAGES open chat pages each asking for one
# ticket within the same 0.5-1 s, as after a chat restart (the page's first retry), from 10
# loopback addresses. The website answers tickets without the chat, so the chat is not restarted.
#   cargo build --release -p website -p chat -p chat-loadgen
#   chat/bench/storm.sh                 # PEOPLE=1000 PAGES=5: 5000 ticket requests
# Only the sign-ups' per-address limit is raised (NGINX_ACCOUNT_BURST), for the setup; the ticket
# limits are the deployment's. With the stand-in every ticket's budget write goes to SQLite: set
# MONGODB_URI to measure a real MongoDB.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
bin="$root/target/release"
[[ -x "$bin/ticket-storm" && -x "$bin/website" && -x "$bin/chat" ]] ||
  die "build first: cargo build --release -p website -p chat -p chat-loadgen"
people=${PEOPLE:-1000}
pages=${PAGES:-5}
export STACK_DIR="$root/target/storm-stack" STACK_PROFILE=release STACK_BUILD=0 CHAT_REPLICAS=2
HTTP_PORT="$(free_port)"
export HTTP_PORT NGINX_ACCOUNT_BURST=$((people + 100))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$root/scripts/stack" down >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
trap '"$root/scripts/stack" down >/dev/null 2>&1 || true' EXIT
"$root/scripts/stack" up >/dev/null
echo "== ticket storm through nginx: $people people x $pages pages ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run)"
"$bin/ticket-storm" --url "http://127.0.0.1:$HTTP_PORT" --people "$people" --pages "$pages" \
  --source-addrs 127.0.6.1-127.0.6.10
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
