#!/usr/bin/env bash
# What nginx allocates for one proxied WebSocket, for docs/scaling.md ("Where the floor is"): nginx,
# configured as the stack's, runs as a single process under gdb with breakpoints on its pool
# allocators; one client of the load generator opens a socket through it to the release chat, and
# the allocations of that connection's pools are summed.
#   cargo build --release -p chat -p chat-loadgen
#   chat/bench/nginx-pool.sh            # BENCH_NGINX_TEMPLATE=... for another template
# Needs gdb. nginx exports its pool functions, so no debug symbols are needed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"
# shellcheck source=scripts/lib/nginx.sh
source "$root/scripts/lib/nginx.sh"
command -v gdb >/dev/null || die "needs gdb (apt-get install gdb)"
bin="$root/target/release"
[[ -x "$bin/chat" && -x "$bin/chat-loadgen" ]] || die "build first: cargo build --release -p chat -p chat-loadgen"

dir="$(mktemp -d /tmp/chat-bench-nginx-pool.XXXXXX)"
chat_port="$(free_port)"
nginx_configure_for_chat_bench "$dir" "$chat_port"
nginx_port=$BENCH_NGINX_PORT
sed -i "s/^worker_processes.*/worker_processes 1;\nmaster_process off;/" "$dir/nginx.conf"

export JWT_SECRET=bench-secret-bench-secret-bench-secret-0123
CHAT_ADDR="127.0.0.1:$chat_port" RUST_LOG=warn "$bin/chat" &
chat=$!
# Each breakpoint prints the pool, the size and the caller, then lets nginx go on. ngx_pcalloc
# calls ngx_palloc, so only the latter two are counted.
{
  echo "set pagination off"
  cat <<'GDB'
break ngx_create_pool
commands
silent
printf "pool size=%ld caller=", $rdi
info symbol *(void**)$rsp
cont
end
GDB
  for allocator in ngx_palloc ngx_pnalloc ngx_pmemalign; do
    cat <<GDB
break $allocator
commands
silent
printf "alloc $allocator pool=%lx size=%ld caller=", \$rdi, \$rsi
info symbol *(void**)\$rsp
cont
end
GDB
  done
  echo "run"
} >"$dir/breakpoints.gdb"
gdb -q -batch -x "$dir/breakpoints.gdb" --args nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
  >"$dir/gdb.log" 2>&1 &
gdb_pid=$!
trap 'pkill -f "nginx -p $dir/" 2>/dev/null; kill "$gdb_pid" "$chat" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
wait_for_port "$nginx_port" 60 || die "nginx did not start under gdb; see $dir/gdb.log"
started=$(wc -l <"$dir/gdb.log")
"$bin/chat-loadgen" --url "ws://127.0.0.1:$nginx_port/ws" --duration 3 --clients 1 --rooms 1 --senders 0 \
  --warmup 0 ${LOADGEN_ARGS:+"$LOADGEN_ARGS"} >"$dir/loadgen.txt" &
sleep 2
open=$(wc -l <"$dir/gdb.log")
wait $!
grep -E "^connected" "$dir/loadgen.txt"
# Only what the socket allocated while it was open: the log line at its close is left out.
sed -n "$((started + 1)),${open}p" "$dir/gdb.log" | awk '
  /^pool size=/ { split($2, s, "="); pools++; pool_bytes += s[2]; print "  new pool of " s[2] " bytes" }
  /^alloc / && /pool=/ {
    split($3, p, "="); split($4, s, "="); bytes[p[2]] += s[2]; count[p[2]]++
  }
  END {
    for (pool in bytes) printf "  pool %s: %d allocations, %d bytes\n", pool, count[pool], bytes[pool]
    printf "  in all: %d pools of %d bytes together\n", pools, pool_bytes
  }' | sed 's/ in section .*//'
