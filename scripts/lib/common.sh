# shellcheck shell=bash
# Shared helpers for the project's scripts. Source it; it defines functions only.
# Everything it installs goes into project-local folders (.venv); system packages are only
# named, with the command that installs them, unless the caller opts in (CI, as root).

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

# Installs the named Debian packages that are missing when INSTALL_SYSTEM_PACKAGES=1 and we are
# root; otherwise names them with the command that installs them and fails.
ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ "${INSTALL_SYSTEM_PACKAGES:-0}" == 1 && "$(id -u)" == 0 ]]; then
    log "installing Debian packages: ${missing[*]}"
    if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]]; then
      apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  else
    die "missing system packages: ${missing[*]} — install them with: sudo apt-get install ${missing[*]}"
  fi
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something accepts TCP connections on 127.0.0.1:$1 (at most $2 seconds, default 20).
wait_for_port() {
  local port=$1 deadline=$((SECONDS + ${2:-20}))
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.5)" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Starts the MongoDB stand-in (nx-27017) in the background on a free port with its data under $1.
# Sets MONGO_STANDIN_PID and MONGODB_URI. The caller stops it (stop_mongo_standin).
start_mongo_standin() {
  local data_dir=$1 port
  ensure_venv
  mkdir -p "$data_dir"
  port="$(free_port)"
  "$VENV/bin/nx-27017" --host 127.0.0.1 --port "$port" --data-dir "$data_dir" \
    --log-file "$data_dir/nx-27017.log" --pid-file "$data_dir/nx-27017.pid" >"$data_dir/stdout.log" 2>&1 &
  MONGO_STANDIN_PID=$!
  wait_for_port "$port" 30 || die "the MongoDB stand-in did not start; see $data_dir/nx-27017.log"
  export MONGODB_URI="mongodb://127.0.0.1:$port"
  log "MongoDB stand-in (nx-27017) on $MONGODB_URI"
}

stop_mongo_standin() {
  [[ -n "${MONGO_STANDIN_PID:-}" ]] || return 0
  kill "$MONGO_STANDIN_PID" 2>/dev/null || true
  wait "$MONGO_STANDIN_PID" 2>/dev/null || true
  MONGO_STANDIN_PID=
}
