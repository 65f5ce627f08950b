# shellcheck shell=bash
# Shared helpers for scripts/up, scripts/down and scripts/test.
#
# Source it from bash:  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Safe under `set -euo pipefail`. Every helper prints short progress lines
# prefixed with "==> " and returns non-zero (after printing why) on failure.

# Repository root (the directory above scripts/) and the git-ignored data dir.
ws_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
WS_DATA="$ws_root/.data"
export ws_root WS_DATA

# How long to wait for another apt-get/dpkg to release its locks (seconds).
: "${WS_APT_LOCK_TIMEOUT:=300}"
# Set to 1 once this process has run `apt-get update`.
_ws_apt_updated=0

ws_log() { printf '==> %s\n' "$*"; }
ws_err() { printf '==> error: %s\n' "$*" >&2; }

ws_is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------

_ws_pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# True while some process holds one of apt's/dpkg's locks. dpkg and apt use
# fcntl locks, which flock(1) cannot see, so look the lock files' inodes up in
# /proc/locks instead (no extra tools needed).
_ws_apt_locked() {
  local f ino
  [ -r /proc/locks ] || return 1
  for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock \
    /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
    [ -e "$f" ] || continue
    ino="$(stat -c %i "$f" 2>/dev/null)" || continue
    if grep -Eq "[[:space:]][0-9a-f]+:[0-9a-f]+:${ino}[[:space:]]" /proc/locks; then
      return 0
    fi
  done
  return 1
}

_ws_wait_apt_locks() {
  local waited=0
  if _ws_apt_locked; then
    ws_log "waiting for another apt-get/dpkg to finish (up to ${WS_APT_LOCK_TIMEOUT}s)"
    while _ws_apt_locked; do
      if [ "$waited" -ge "$WS_APT_LOCK_TIMEOUT" ]; then
        ws_err "apt/dpkg lock still held after ${WS_APT_LOCK_TIMEOUT}s; trying anyway"
        return 0
      fi
      sleep 2
      waited=$((waited + 2))
    done
  fi
}

# Run apt-get non-interactively; wait for the dpkg lock instead of failing
# (both our own check and apt's DPkg::Lock::Timeout), and retry a few times in
# case someone grabbed a lock between our check and apt-get's.
_ws_apt_get() {
  local sudo=() try
  ws_is_root || sudo=(sudo)
  for try in 1 2 3; do
    _ws_wait_apt_locks
    if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -y \
      -o DPkg::Lock::Timeout="$WS_APT_LOCK_TIMEOUT" \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "$@" </dev/null; then
      return 0
    fi
    [ "$try" -lt 3 ] && { ws_log "apt-get $1 failed; retrying in 5s"; sleep 5; }
  done
  ws_err "apt-get $* failed"
  return 1
}

# ensure_apt_packages pkg... — install only the packages that are missing.
ensure_apt_packages() {
  local p missing=()
  for p in "$@"; do
    _ws_pkg_installed "$p" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  ws_log "installing Debian packages: ${missing[*]}"
  if [ "$_ws_apt_updated" -eq 0 ]; then
    _ws_apt_get update || return 1
    _ws_apt_updated=1
  fi
  _ws_apt_get install "${missing[@]}" >/dev/null || return 1
  for p in "${missing[@]}"; do
    _ws_pkg_installed "$p" || { ws_err "package $p did not install"; return 1; }
  done
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# pg_bin_dir — newest /usr/lib/postgresql/*/bin.
# ensure_python_venv DIR CHECK PACKAGE...: a Python virtual environment in DIR with the
# pinned PACKAGEs from PyPI, made (again) unless the shell test CHECK already holds.
ensure_python_venv() {
  local dir="$1" check="$2"
  shift 2
  if eval "$check" 2>/dev/null; then return 0; fi
  ws_log "creating Python venv with $* in $dir"
  command -v python3 >/dev/null || ensure_apt_packages python3
  rm -rf "$dir"
  if ! python3 -m venv "$dir" >/dev/null 2>&1; then
    rm -rf "$dir"
    ensure_apt_packages python3-venv
    python3 -m venv "$dir"
  fi
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
  eval "$check" || { ws_err "$dir: '$check' does not hold after installing $*"; return 1; }
}

pg_bin_dir() {
  local d
  d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null \
    | sort -V | tail -n 1)"
  if [ -z "$d" ] || [ ! -x "$d/pg_ctl" ]; then
    ws_err "no PostgreSQL found under /usr/lib/postgresql (install the 'postgresql' package)"
    return 1
  fi
  printf '%s\n' "$d"
}

# Run a server-side PostgreSQL command: as the `postgres` system user when we
# are root (PostgreSQL refuses to run as root), else as ourselves.
_ws_pg_run() {
  # Run from / so the postgres user never trips over an unreadable cwd.
  if ws_is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# As root, the `postgres` user must be able to reach <dir>: give o+x (traverse
# only, no listing) to any ancestor directory that lacks it (e.g. /root).
_ws_pg_make_reachable() {
  local dir="$1"
  ws_is_root || return 0
  runuser -u postgres -- test -x "$dir" 2>/dev/null && return 0
  # Top-down, so a failing test means that very directory lacks the bit.
  local rest="${dir#/}" d=""
  while [ -n "$rest" ]; do
    d="$d/${rest%%/*}"
    case "$rest" in */*) rest="${rest#*/}" ;; *) rest="" ;; esac
    if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
      ws_log "granting traverse (o+x) on $d so the postgres user can reach its data"
      chmod o+x "$d"
    fi
  done
}

# Unix sockets are limited to ~107 bytes; fall back to a short /tmp dir when
# <dir>/.s.PGSQL.<port> would be too long.
_ws_pg_socket_dir() {
  local dir="$1" port="$2"
  if [ "$((${#dir} + 16))" -lt 100 ]; then
    printf '%s\n' "$dir"
  else
    printf '/tmp/websplat-pg-%s\n' "$port"
  fi
}

# True if the postmaster named in <dir>/postmaster.pid is alive and really is
# a postgres process (not a recycled PID, as after a container restart).
_ws_pg_running() {
  local pid comm
  [ -f "$1/postmaster.pid" ] || return 1
  pid="$(head -n 1 "$1/postmaster.pid" 2>/dev/null)" || return 1
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
  [ "$comm" = postgres ]
}

# start_postgres <dir> <port> [--no-fsync]
#   Private PostgreSQL cluster in <dir> (kept across runs), listening on
#   127.0.0.1:<port>, superuser `websplat`, trust auth. --no-fsync turns off
#   fsync/synchronous_commit/full_page_writes (throwaway test instance only).
start_postgres() {
  local dir="$1" port="$2" flag="${3:-}" fsync=on bin sockdir out owner i
  case "$flag" in
    "") ;;
    --no-fsync) fsync=off ;;
    *) ws_err "start_postgres: unknown flag '$flag'"; return 1 ;;
  esac
  bin="$(pg_bin_dir)" || return 1
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd -P)"
  owner="$(id -un)"
  if ws_is_root; then
    owner=postgres
    getent passwd postgres >/dev/null || { ws_err "no 'postgres' system user"; return 1; }
    chown postgres:postgres "$dir"
    _ws_pg_make_reachable "$dir"
  fi
  chmod 700 "$dir"

  if [ ! -f "$dir/PG_VERSION" ]; then
    # Not a cluster (yet): clear leftovers of an earlier failed attempt.
    find "$dir" -mindepth 1 -delete
    local locale=C
    if locale -a 2>/dev/null | grep -Eqix 'c\.utf-?8'; then locale=C.UTF-8; fi
    ws_log "initialising PostgreSQL cluster in $dir"
    if ! out="$(_ws_pg_run "$bin/initdb" -D "$dir" -U websplat --auth=trust \
      -E UTF8 --locale="$locale" 2>&1)"; then
      printf '%s\n' "$out" >&2
      ws_err "initdb failed for $dir"
      return 1
    fi
    printf "\ninclude_if_exists = 'websplat.conf'\n" >>"$dir/postgresql.conf"
  fi

  sockdir="$(_ws_pg_socket_dir "$dir" "$port")"
  if [ "$sockdir" != "$dir" ]; then
    mkdir -p "$sockdir"
    ws_is_root && chown postgres:postgres "$sockdir"
    chmod 700 "$sockdir"
  fi
  # Rewritten on every start so changes to port/flags take effect on restart.
  cat >"$dir/websplat.conf" <<EOF
# Managed by scripts/lib.sh (start_postgres); rewritten on every start.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 300
fsync = $fsync
synchronous_commit = $fsync
full_page_writes = $fsync
EOF
  ws_is_root && chown "$owner" "$dir/websplat.conf"

  if _ws_pg_running "$dir"; then
    ws_log "PostgreSQL already running ($dir)"
  else
    if [ -f "$dir/postmaster.pid" ]; then
      # Left by a crash or an earlier machine; its PID may now belong to an
      # unrelated process, which would make PostgreSQL refuse to start.
      ws_log "removing stale $dir/postmaster.pid"
      rm -f "$dir/postmaster.pid"
    fi
    ws_log "starting PostgreSQL on 127.0.0.1:$port ($dir)"
    if ! _ws_pg_run "$bin/pg_ctl" start -D "$dir" -w -t 60 -s -l "$dir/server.log" >/dev/null; then
      ws_err "PostgreSQL failed to start; tail of $dir/server.log:"
      tail -n 30 "$dir/server.log" >&2 || true
      return 1
    fi
  fi

  for ((i = 0; i < 60; i++)); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
      return 0
    fi
    sleep 0.5
  done
  ws_err "PostgreSQL not ready on 127.0.0.1:$port after 30s; tail of $dir/server.log:"
  tail -n 30 "$dir/server.log" >&2 || true
  return 1
}

# stop_postgres <dir> — fast shutdown; data kept. No-op if not running.
stop_postgres() {
  local dir="$1" bin
  [ -f "$dir/PG_VERSION" ] || return 0
  bin="$(pg_bin_dir)" || return 1
  if _ws_pg_running "$dir"; then
    ws_log "stopping PostgreSQL ($dir)"
    _ws_pg_run "$bin/pg_ctl" stop -D "$dir" -m fast -w -s
  fi
}

# _ws_psql <port> <sql> — run SQL as `websplat` against database `postgres`.
_ws_psql() {
  local port="$1" sql="$2" bin
  bin="$(pg_bin_dir)" || return 1
  PGCONNECT_TIMEOUT=10 "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
    -U websplat -d postgres -tA -c "$sql"
}

# ensure_createdb <port> <name> — create database <name> unless it exists.
ensure_createdb() {
  local port="$1" name="$2" exists
  exists="$(_ws_psql "$port" "SELECT 1 FROM pg_database WHERE datname = '${name//\'/\'\'}'")" \
    || return 1
  if [ "$exists" = "1" ]; then
    ws_log "database $name exists"
  else
    ws_log "creating database $name"
    _ws_psql "$port" "CREATE DATABASE \"${name//\"/\"\"}\"" || return 1
  fi
}

# drop_databases_like <port> <LIKE pattern> — drop every matching database,
# kicking out leftover connections. Example pattern: 'test\_%'.
drop_databases_like() {
  local port="$1" pattern="$2" names name n=0
  names="$(_ws_psql "$port" \
    "SELECT datname FROM pg_database WHERE datname LIKE '${pattern//\'/\'\'}'")" || return 1
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    _ws_psql "$port" "DROP DATABASE IF EXISTS \"${name//\"/\"\"}\" WITH (FORCE)" || return 1
    n=$((n + 1))
  done <<<"$names"
  ws_log "dropped $n database(s) matching '$pattern'"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

_ws_redis_pong() {
  [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]
}

# redis_password <file> — the password in <file>, made (random, mode 600) if missing.
# Exported as REDISCLI_AUTH, which redis-cli (and so the functions below) use.
redis_password() {
  local file="$1"
  if [ ! -s "$file" ]; then
    mkdir -p "$(dirname "$file")"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$file")
  fi
  REDISCLI_AUTH="$(cat "$file")"
  export REDISCLI_AUTH
}

# start_redis <dir> <port> [--ephemeral]
#   redis-server on 127.0.0.1:<port>, files in <dir>. Default: append-only
#   file persistence (dev, data kept). --ephemeral: no persistence (tests).
#   With REDISCLI_AUTH set (redis_password), Redis requires that password; it is
#   written to a config file of mode 600, never on the command line.
start_redis() {
  local dir="$1" port="$2" flag="${3:-}" persist i
  case "$flag" in
    "") persist=(--appendonly yes) ;;
    --ephemeral) persist=(--save '' --appendonly no) ;;
    *) ws_err "start_redis: unknown flag '$flag'"; return 1 ;;
  esac
  command -v redis-server >/dev/null || { ws_err "redis-server not installed"; return 1; }
  if _ws_redis_pong "$port"; then
    ws_log "Redis already running on 127.0.0.1:$port"
    return 0
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd -P)"
  local conf="$dir/redis.conf"
  (umask 077 && : >"$conf")
  if [ -n "${REDISCLI_AUTH:-}" ]; then
    printf 'requirepass "%s"\n' "$REDISCLI_AUTH" >"$conf"
  fi
  ws_log "starting Redis on 127.0.0.1:$port ($dir)"
  if ! redis-server "$conf" --bind 127.0.0.1 --port "$port" --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    "${persist[@]}" </dev/null; then
    ws_err "redis-server failed to start; tail of $dir/redis.log:"
    tail -n 30 "$dir/redis.log" >&2 || true
    return 1
  fi
  for ((i = 0; i < 60; i++)); do
    _ws_redis_pong "$port" && return 0
    sleep 0.5
  done
  ws_err "Redis not answering on 127.0.0.1:$port after 30s; tail of $dir/redis.log:"
  tail -n 30 "$dir/redis.log" >&2 || true
  return 1
}

# stop_redis <port> — SHUTDOWN NOSAVE (the append-only file is still flushed);
# errors ignored; waits briefly until it is gone.
stop_redis() {
  local port="$1" i
  _ws_redis_pong "$port" || return 0
  ws_log "stopping Redis on 127.0.0.1:$port"
  redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  for ((i = 0; i < 40; i++)); do
    _ws_redis_pong "$port" || return 0
    sleep 0.25
  done
  return 0
}
