# shellcheck shell=bash
# Shared helpers for the project's scripts. Source it; it defines functions only.
# Everything it installs goes into project-local folders (.venv), except missing Debian packages,
# which are installed only as root or with passwordless sudo (ensure_debian_packages; opt out with
# INSTALL_SYSTEM_PACKAGES=0) and otherwise named with the command that installs them.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Creates ./.venv and installs scripts/requirements.txt into it when it changed.
ensure_venv() {
  local stamp="$VENV/.requirements.sha"
  local want
  want="$(sha256sum "$ROOT/scripts/requirements.txt" | cut -d' ' -f1)"
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "installing Python test tools into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
    echo "$want" >"$stamp"
  fi
}

# Makes sure the named Debian packages are installed. Missing ones are installed with apt-get when
# we are root or have passwordless sudo (`sudo -n true`), after one line that names them; the
# variable INSTALL_SYSTEM_PACKAGES decides:
#   unset or auto  install when root or passwordless sudo allows it, else name them and fail
#   0              never install (opt out): name them with the command that installs them and fail
#   1              install, and fail when neither root nor passwordless sudo allows it (CI)
ensure_debian_packages() {
  local missing=() pkg mode=${INSTALL_SYSTEM_PACKAGES:-auto} as=root
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  local how="sudo apt-get install ${missing[*]}"
  case $mode in
    0 | no | false) die "missing system packages: ${missing[*]} — install them with: $how" ;;
    1 | yes | true | auto) ;;
    *) die "INSTALL_SYSTEM_PACKAGES is '$mode'; use 0 (never install), 1 (install) or auto (the default)" ;;
  esac
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      as=sudo
    else
      die "missing system packages: ${missing[*]} — install them with: $how" \
        "(run as root or with passwordless sudo and they are installed for you)"
    fi
  fi
  log "installing missing Debian packages: ${missing[*]} (apt-get; INSTALL_SYSTEM_PACKAGES=0 to opt out)"
  apt_install "$as" "${missing[@]}" || die "apt-get could not install: ${missing[*]} — try: $how"
}

# apt_install <root|sudo> <package...>: apt-get install as root or through `sudo -n`, quietly (its
# output is shown only when it fails). The package lists are refreshed first when there are none (a
# fresh image), and after a failed install (stale lists) before one more try.
apt_install() {
  local as_root=() apt output
  [[ $1 == sudo ]] && as_root=(sudo -n)
  shift
  apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq)
  output="$(mktemp)"
  if { [[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]] \
    && "${apt[@]}" install --no-install-recommends "$@"; } >>"$output" 2>&1 \
    || { "${apt[@]}" update && "${apt[@]}" install --no-install-recommends "$@"; } >>"$output" 2>&1; then
    rm -f "$output"
    return 0
  fi
  cat "$output" >&2
  rm -f "$output"
  return 1
}

# Prints a free TCP port on 127.0.0.1.
free_port() { free_ports 1; }

# free_ports <count>: prints that many distinct free TCP ports on 127.0.0.1, space-separated. All are
# bound at once before any is let go, so no port comes twice.
free_ports() {
  python3 -c '
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))' "$1"
}

# Waits until something accepts TCP connections on 127.0.0.1:$1 (at most $2 seconds, default 20).
wait_for_port() {
  local port=$1 deadline=$((SECONDS + ${2:-20}))
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.5)" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# --- the MongoDB stand-in (nx-27017) ---------------------------------------------------------
# Every start has state of its own, all in one folder, so that any number run at once (a stack,
# a test run, another stack): the data, the pid file (nx-27017 otherwise shares /tmp/nx_27017.pid
# and refuses to start while the process named there runs), the log, and the port, which the
# system picks when the stand-in binds (so two starts never race for one) unless one is asked for.

# mongo_standin_command <folder> [port] [log file]: sets MONGO_STANDIN_COMMAND to the command line
# of a stand-in with its data and pid file in <folder>, its log there too unless another is named,
# on <port> (default 0: a free one). Creates the folder.
mongo_standin_command() {
  local dir=$1 port=${2:-0} log_file=${3:-$1/nx-27017.log}
  ensure_venv
  mkdir -p "$dir"
  MONGO_STANDIN_COMMAND=("$VENV/bin/nx-27017" --host 127.0.0.1 --port "$port" --data-dir "$dir"
    --pid-file "$dir/nx-27017.pid" --log-file "$log_file")
}

# await_mongo_standin <pid> <folder> [seconds, default 30]: waits until the stand-in <pid> listens,
# then writes its port to <folder>/port and sets MONGODB_URI. Fails when it exits first or takes
# longer.
await_mongo_standin() {
  local pid=$1 dir=$2 deadline=$((SECONDS + ${3:-30})) port
  until port="$(listening_port "$pid" 2>/dev/null)" && [[ -n "$port" ]]; do
    kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
  echo "$port" >"$dir/port"
  MONGODB_URI="mongodb://127.0.0.1:$port"
}

# listening_port <pid>: the TCP port process <pid> listens on (Linux /proc), or nothing yet.
listening_port() {
  python3 - "$1" <<'PY'
import os, sys
pid = sys.argv[1]
sockets = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        sockets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    except OSError:
        pass
with open("/proc/net/tcp") as table:
    for line in list(table)[1:]:
        fields = line.split()
        if fields[3] == "0A" and f"socket:[{fields[9]}]" in sockets:  # 0A: LISTEN
            print(int(fields[1].rsplit(":", 1)[1], 16))
            break
PY
}

# start_mongo_standin <folder>: starts a stand-in in the background with its data, pid file and log
# in <folder> (see mongo_standin_command), on a free port. Sets and exports MONGODB_URI; sets
# MONGO_STANDIN_PID, for stop_mongo_standin.
start_mongo_standin() {
  local dir=$1
  mongo_standin_command "$dir"
  "${MONGO_STANDIN_COMMAND[@]}" >"$dir/stdout.log" 2>&1 &
  MONGO_STANDIN_PID=$!
  await_mongo_standin "$MONGO_STANDIN_PID" "$dir" 30 \
    || die "the MongoDB stand-in did not start; see $dir/nx-27017.log and $dir/stdout.log"
  export MONGODB_URI
  log "MongoDB stand-in (nx-27017) on $MONGODB_URI, its data in $dir"
}

# stack_database <stack folder>: the MongoDB URI (first line) and database name (second line) of the
# native stack that `scripts/stack up` set up in that folder: its own stand-in, or the MONGODB_URI
# it was given. Fails when there is no stack there.
stack_database() {
  (
    # shellcheck source=/dev/null
    source "$1/stack.env" 2>/dev/null || exit 1
    if [[ -n "${EXTERNAL_MONGODB_URI:-}" ]]; then
      echo "$EXTERNAL_MONGODB_URI"
    elif [[ -r "$1/mongo/port" ]]; then
      echo "mongodb://127.0.0.1:$(cat "$1/mongo/port")"
    else
      exit 1
    fi
    echo "${MONGODB_DB:-webchat}"
  )
}

stop_mongo_standin() {
  [[ -n "${MONGO_STANDIN_PID:-}" ]] || return 0
  kill "$MONGO_STANDIN_PID" 2>/dev/null || true
  wait "$MONGO_STANDIN_PID" 2>/dev/null || true
  MONGO_STANDIN_PID=
}
