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
