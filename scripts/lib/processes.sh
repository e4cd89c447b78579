# shellcheck shell=bash
# The stack's processes: started in a session of their own with their output in logs/<name>.log,
# recorded in pids/<name>.pid, checked, waited for and stopped only while they are the processes
# that were started. Source it after setting LOGS and PIDS (the folders) and sourcing common.sh.

# A pid file holds "<pid> <start time>": the start time (field 22 of /proc/<pid>/stat) tells our
# process from an unrelated one that got the same pid after ours ended.
start_time_of() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# Prints the pid of <service> when the process recorded for it is still the one we started.
running_pid() {
  local file="$PIDS/$1.pid" pid started
  [[ -r "$file" ]] || return 1
  read -r pid started <"$file" || return 1
  [[ -n "$pid" && "$(start_time_of "$pid")" == "$started" ]] || return 1
  echo "$pid"
}

# spawn <service> <command...>: runs it in its own session (so a Ctrl-C meant for the caller's
# terminal does not reach it), output appended to logs/<service>.log, and records its pid.
spawn() {
  local name=$1 pid
  shift
  mkdir -p "$LOGS" "$PIDS"
  printf '\n--- %s: starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  pid=$!
  echo "$pid $(start_time_of "$pid")" >"$PIDS/$name.pid"
}

# Whether process <pid> has not exited (a zombie, exited but not yet reaped, has).
alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)"
  [[ -n "$state" && "$state" != Z ]]
}

# stop <name...>: SIGTERM to each, then SIGKILL to any still running after 10 s; only ever the
# recorded processes. Several names stop together.
stop() {
  local name pid deadline
  local -A stopping=()
  for name in "$@"; do
    if pid="$(running_pid "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      stopping[$name]=$pid
    fi
  done
  deadline=$((SECONDS + 10))
  for name in "${!stopping[@]}"; do
    pid=${stopping[$name]}
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$pid"; then
      log "$name did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  done
  for name in "$@"; do rm -f "$PIDS/$name.pid"; done
}

# The names of the processes with a pid file, whether they still run or not.
recorded() {
  local file
  for file in "$PIDS"/*.pid; do
    if [[ -e $file ]]; then basename "$file" .pid; fi
  done
}

# Fails, showing the end of its log, when <service> is no longer running.
expect_running() {
  running_pid "$1" >/dev/null && return 0
  tail -n 30 "$LOGS/$1.log" >&2 2>/dev/null || true
  die "$1 exited; its log is $LOGS/$1.log"
}

# wait_until <service> <seconds> <check command...>: retries the check while the service runs.
wait_until() {
  local name=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    expect_running "$name"
    ((SECONDS < deadline)) || die "$name did not become ready in time; see $LOGS/$name.log"
    sleep 0.2
  done
}

# http_status <url>: the HTTP status code, or 000 when nothing answers.
http_status() {
  python3 - "$1" <<'PY'
import sys, urllib.error, urllib.request
# Straight to 127.0.0.1: never through a proxy named in the environment.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    print(opener.open(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

is_ready() { [[ "$(http_status "$1")" == 200 ]]; }
port_open() { wait_for_port "$1" 0 2>/dev/null; }
