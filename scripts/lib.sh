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

# ---------------------------------------------------------------------------
# A local Docker Swarm of several engine daemons (issue #16)
# ---------------------------------------------------------------------------
# Each node is a dockerd in its own network namespace, with its own config file,
# data root, exec root (so its own containerd), socket and pid file, under
# <dir>/node<i>/. The nodes sit on one private L2 segment: a bridge inside a
# "switch" namespace of its own (so no frame crosses the machine's firewall),
# veth-linked to each node and to the host. Node 1 is the swarm's only manager;
# the others join as workers. The machine's own Docker Engine is never touched
# beyond `docker save` of the images the nodes load.
#
# A cluster is named by its slot: 0-9 for the test instances (WEBSPLAT_TEST_INSTANCE),
# 10 for the dev cluster of `scripts/up --swarm`, 11 for `scripts/bench workspaces`. Everything it makes is derived from
# the slot, so two clusters never collide:
#   directory   .data/swarm-<slot> (tests) or .data/swarm (dev)
#   namespaces  wssw<slot>-sw (the switch), wssw<slot>-n<i> (node i)
#   host link   wssw<slot>h (host side), address 10.210.<slot>.1/24
#   node i      eth0 at 10.210.<slot>.(10+i), default route via the host
#   swarm pool  10.(220+slot).0.0/16 in /24s (overlay networks)
#   local pool  10.(240+slot).<i>.0/24 per node for the node's bridge networks
# State is written to <dir>/env (see swarm_write_env).

# swarm_slot_dir <slot> — the cluster's directory.
swarm_slot_dir() {
  if [ "$1" = 10 ]; then printf '%s\n' "$WS_DATA/swarm"; else printf '%s\n' "$WS_DATA/swarm-$1"; fi
}

_ws_swarm_names() {
  # Sets: sw_ns sw_host sw_net sw_dir for slot $1.
  sw_slot="$1"
  sw_ns="wssw$1"
  sw_host="wssw$1h"
  sw_net="10.210.$1"
  sw_dir="$(swarm_slot_dir "$1")"
}

_ws_swarm_node_pid() {
  # The live dockerd pid of node $2 in slot $1, or nothing.
  local pid comm
  pid="$(cat "$(swarm_slot_dir "$1")/node$2/docker.pid" 2>/dev/null)" || return 1
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
  [ "$comm" = dockerd ] || return 1
  printf '%s\n' "$pid"
}

# swarm_docker <slot> <i> docker-args… — the docker CLI against node i.
swarm_docker() {
  local slot="$1" i="$2"
  shift 2
  DOCKER_CONTEXT='' docker -H "unix://$(swarm_slot_dir "$slot")/node$i/docker.sock" "$@"
}

_ws_swarm_link_up() {
  # The switch namespace, its bridge, the host's link and node i's link.
  local slot="$1" n="$2" i
  _ws_swarm_names "$slot"
  if [ ! -e "/var/run/netns/$sw_ns-sw" ]; then
    ip netns add "$sw_ns-sw"
  fi
  ip -n "$sw_ns-sw" link set lo up
  if ! ip -n "$sw_ns-sw" link show br0 >/dev/null 2>&1; then
    ip -n "$sw_ns-sw" link add br0 type bridge
  fi
  ip -n "$sw_ns-sw" link set br0 up
  if ! ip link show "$sw_host" >/dev/null 2>&1; then
    ip link add "$sw_host" type veth peer name host netns "$sw_ns-sw"
  fi
  ip -n "$sw_ns-sw" link set host master br0 up
  ip addr replace "$sw_net.1/24" dev "$sw_host"
  ip link set "$sw_host" up
  for ((i = 1; i <= n; i++)); do
    if [ ! -e "/var/run/netns/$sw_ns-n$i" ]; then
      ip netns add "$sw_ns-n$i"
    fi
    ip -n "$sw_ns-n$i" link set lo up
    if ! ip -n "$sw_ns-n$i" link show eth0 >/dev/null 2>&1; then
      ip -n "$sw_ns-sw" link add "n$i" type veth peer name eth0 netns "$sw_ns-n$i"
    fi
    ip -n "$sw_ns-sw" link set "n$i" master br0 up
    ip -n "$sw_ns-n$i" addr replace "$sw_net.$((10 + i))/24" dev eth0
    ip -n "$sw_ns-n$i" link set eth0 up
    ip -n "$sw_ns-n$i" route replace default via "$sw_net.1"
  done
}

_ws_swarm_write_config() {
  local slot="$1" i="$2" dir
  dir="$(swarm_slot_dir "$slot")/node$i"
  mkdir -p "$dir"
  # Every setting here, none on the command line (dockerd refuses a setting given twice),
  # so the machine's /etc/docker/daemon.json is never read. no-new-privileges: the 20.10
  # service API cannot ask for it per service, so the daemon gives it to every task.
  cat >"$dir/daemon.json" <<JSON
{
  "storage-driver": "vfs",
  "iptables": true,
  "ip-forward": true,
  "bridge": "none",
  "no-new-privileges": true,
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "3" },
  "cgroup-parent": "wssw$slot-n$i",
  "containerd-namespace": "wssw$slot-n$i",
  "containerd-plugins-namespace": "wssw$slot-n$i-plugins",
  "default-address-pools": [ { "base": "10.$((240 + slot)).$i.0/24", "size": 26 } ],
  "features": { "buildkit": false }
}
JSON
}

# swarm_node_start <slot> <i> — start node i's daemon (again, with the same data) and wait
# until its API answers.
swarm_node_start() {
  local slot="$1" i="$2" dir pid t
  _ws_swarm_names "$slot"
  dir="$sw_dir/node$i"
  if pid="$(_ws_swarm_node_pid "$slot" "$i")"; then
    ws_log "swarm node $i already running (pid $pid)"
    return 0
  fi
  [ -e "/var/run/netns/$sw_ns-n$i" ] || { ws_err "no namespace $sw_ns-n$i (run scripts/swarm up)"; return 1; }
  _ws_swarm_write_config "$slot" "$i"
  # A daemon that died without stopping (a lost machine) keeps the swarm-scoped tenant
  # network's local instance in its network store, and every later task there then ends at
  # once with "network … exists" (moby/moby#37087). Its network store is dropped, so the
  # swarm makes the network again with the next task; the config network it is made from
  # is put back below. (`up` starts from no store at all.)
  # The machine's network comes back as after a reboot, too: the killed containers' network
  # namespaces (kept by bind mounts under the exec root) would still answer on the
  # addresses the new ones are given.
  if [ -e "$dir/docker.pid" ]; then
    rm -f "$dir/data/network/files/local-kv.db"
    _ws_swarm_umount_under "$dir/exec"
    rm -rf "$dir/exec"
    ip netns del "$sw_ns-n$i" 2>/dev/null || true
    _ws_swarm_link_up "$slot" "$i"
    ws_log "swarm node $i stopped uncleanly: its network is made afresh, as after a reboot"
  fi
  rm -f "$dir/docker.pid" "$dir/docker.sock"
  # nsenter --net, not `ip netns exec` (which remounts /sys and hides the cgroup mounts);
  # a UTS namespace of its own only so that the node's hostname names it.
  # DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1: a task uses the image the node holds instead of
  # first asking a registry for it (none is reachable; each ask would wait for DNS).
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid nsenter --net="/var/run/netns/$sw_ns-n$i" -- \
    unshare --uts -- sh -c 'hostname "$0" && exec "$@"' "$sw_ns-n$i" /usr/sbin/dockerd \
    --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
    -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
    </dev/null >>"$dir/dockerd.log" 2>&1 &
  for ((t = 0; t < 240; t++)); do
    if swarm_docker "$slot" "$i" version >/dev/null 2>&1; then
      _ws_swarm_firewall "$slot" "$i"
      _ws_swarm_tenant_network "$slot" "$i"
      ws_log "swarm node $i up (pid $(cat "$dir/docker.pid"), $sw_net.$((10 + i)))"
      return 0
    fi
    if ! kill -0 $! 2>/dev/null; then break; fi
    sleep 0.25
  done
  ws_err "swarm node $i did not start; tail of $dir/dockerd.log:"
  tail -n 20 "$dir/dockerd.log" >&2 || true
  return 1
}

# swarm_node_kill <slot> <i> — SIGKILL node i's daemon (its containerd and shims die with
# it: the machine is "lost"), data kept for swarm_node_start.
swarm_node_kill() {
  local slot="$1" i="$2" pid dir p
  dir="$(swarm_slot_dir "$slot")/node$i"
  _ws_swarm_kill_tree "$dir"
  ws_log "swarm node $i killed"
}

_ws_swarm_kill_tree() {
  # Kill dockerd and every process whose command line names this node's directory
  # (its containerd, the shims, docker-proxy), found by the pid file and /proc.
  local dir="$1" pid p pids=()
  pid="$(cat "$dir/docker.pid" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) pid="" ;; esac
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
    pids+=("$pid")
  fi
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [ "$p" = "$$" ] && continue
    if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$dir/"; then
      pids+=("$p")
    fi
  done
  # The node's containers (under its own cgroup parent): a lost machine runs nothing.
  local cg
  cg="$(_ws_swarm_cgroup "$dir")"
  if [ -n "$cg" ] && [ -d "/sys/fs/cgroup/pids/$cg" ]; then
    while read -r p; do pids+=("$p"); done < <(cat /sys/fs/cgroup/pids/"$cg"/*/cgroup.procs 2>/dev/null)
  fi
  [ "${#pids[@]}" -eq 0 ] && return 0
  kill -9 "${pids[@]}" 2>/dev/null || true
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  done
}

_ws_swarm_cgroup() {
  # The cgroup parent named in node dir $1's daemon.json.
  sed -n 's/^ *"cgroup-parent": "\([^"]*\)".*/\1/p' "$1/daemon.json" 2>/dev/null
}

_ws_swarm_rm_cgroups() {
  # The (empty) cgroups the node's containers left, in every hierarchy.
  local cg="$1" d
  [ -n "$cg" ] || return 0
  for d in /sys/fs/cgroup/*/"$cg"; do
    [ -d "$d" ] || continue
    find "$d" -depth -mindepth 1 -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$d" 2>/dev/null || true
  done
}

_ws_swarm_umount_under() {
  # Unmount (lazily, deepest first) everything mounted under $1.
  local dir="$1" m
  [ -d "$dir" ] || return 0
  awk '{print $5}' /proc/self/mountinfo | { grep -F -- "$dir/" || true; } | sort -r \
    | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# The tenants' network on every node: a swarm-scoped *bridge* network `websplat-tenants`
# made from a node-local config network `websplat-tenants-config` on each node (its own
# subnet 10.(230+slot).<i>.0/24, bridge `wstenants`, inter-container traffic off). An overlay
# would join every tenant of the pool on one L2 segment across nodes (they reach one another
# and Docker cannot turn that off); a bridge per node keeps them apart as on one engine,
# and the node firewall below keeps them off other nodes, the nodes' services and the world.
_ws_swarm_tenant_network() {
  local slot="$1" i="$2"
  if ! swarm_docker "$slot" "$i" network inspect websplat-tenants-config >/dev/null 2>&1; then
    swarm_docker "$slot" "$i" network create --config-only \
      --subnet "10.$((230 + slot)).$i.0/24" --gateway "10.$((230 + slot)).$i.1" \
      -o com.docker.network.bridge.name=wstenants \
      -o com.docker.network.bridge.enable_icc=false \
      websplat-tenants-config >/dev/null
  fi
}

# _ws_swarm_firewall <slot> <i> — node i's rules for the tenants' bridge (iptables in the
# node's own namespace; DOCKER-USER is where Docker leaves room for them, and they survive
# a daemon restart). A tenant may open connections only to the platform's address (its
# AI gateway door), answer the platform's connections (to its published port) and nothing
# else: not another node, not the node itself (its swarm ports, other tenants' published
# ports), not the world.
_ws_swarm_firewall() {
  local slot="$1" i="$2" platform ipt
  platform="10.210.$slot.1"
  ipt=(nsenter --net="/var/run/netns/wssw$slot-n$i" -- iptables -w 10)
  "${ipt[@]}" -N WEBSPLAT-TENANTS 2>/dev/null || "${ipt[@]}" -F WEBSPLAT-TENANTS
  "${ipt[@]}" -A WEBSPLAT-TENANTS -i wstenants -o wstenants -j RETURN
  "${ipt[@]}" -A WEBSPLAT-TENANTS -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  "${ipt[@]}" -A WEBSPLAT-TENANTS -i wstenants -d "$platform" -p tcp -j RETURN
  "${ipt[@]}" -A WEBSPLAT-TENANTS -i wstenants -j REJECT --reject-with icmp-port-unreachable
  "${ipt[@]}" -A WEBSPLAT-TENANTS -o wstenants -s "$platform" -p tcp -j RETURN
  "${ipt[@]}" -A WEBSPLAT-TENANTS -o wstenants -j DROP
  "${ipt[@]}" -C DOCKER-USER -j WEBSPLAT-TENANTS 2>/dev/null \
    || "${ipt[@]}" -I DOCKER-USER -j WEBSPLAT-TENANTS
  "${ipt[@]}" -N WEBSPLAT-TENANTS-IN 2>/dev/null || "${ipt[@]}" -F WEBSPLAT-TENANTS-IN
  "${ipt[@]}" -A WEBSPLAT-TENANTS-IN -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  "${ipt[@]}" -A WEBSPLAT-TENANTS-IN -j REJECT --reject-with icmp-port-unreachable
  "${ipt[@]}" -C INPUT -i wstenants -j WEBSPLAT-TENANTS-IN 2>/dev/null \
    || "${ipt[@]}" -I INPUT -i wstenants -j WEBSPLAT-TENANTS-IN
}

# swarm_write_env <slot> <n> — <dir>/env, a shell-style file the tests and the platform read:
#   WEBSPLAT_SWARM_SLOT=<slot>  WEBSPLAT_SWARM_NODES=<n>
#   WEBSPLAT_SWARM_MANAGER=unix://…/node1/docker.sock   (the endpoint of the pool)
#   WEBSPLAT_SWARM_HOST_ADDRESS=10.210.<slot>.1           (the host, as the nodes see it)
#   WEBSPLAT_SWARM_NETWORK=websplat-tenants               (the tenants' swarm network)
#   WEBSPLAT_SWARM_NODE_<i>_SOCKET / _ADDRESS / _PID / _ID / _NETNS
swarm_write_env() {
  local slot="$1" n="$2" i pid id tmp
  _ws_swarm_names "$slot"
  tmp="$sw_dir/env.tmp"
  {
    printf 'WEBSPLAT_SWARM_SLOT=%s\n' "$slot"
    printf 'WEBSPLAT_SWARM_NODES=%s\n' "$n"
    printf 'WEBSPLAT_SWARM_MANAGER=unix://%s/node1/docker.sock\n' "$sw_dir"
    printf 'WEBSPLAT_SWARM_HOST_ADDRESS=%s.1\n' "$sw_net"
    printf 'WEBSPLAT_SWARM_NETWORK=websplat-tenants\n'
    for ((i = 1; i <= n; i++)); do
      pid="$(_ws_swarm_node_pid "$slot" "$i" || true)"
      id="$(cat "$sw_dir/node$i/node.id" 2>/dev/null || true)"
      printf 'WEBSPLAT_SWARM_NODE_%s_SOCKET=unix://%s/node%s/docker.sock\n' "$i" "$sw_dir" "$i"
      printf 'WEBSPLAT_SWARM_NODE_%s_ADDRESS=%s.%s\n' "$i" "$sw_net" "$((10 + i))"
      printf 'WEBSPLAT_SWARM_NODE_%s_PID=%s\n' "$i" "$pid"
      printf 'WEBSPLAT_SWARM_NODE_%s_ID=%s\n' "$i" "$id"
      printf 'WEBSPLAT_SWARM_NODE_%s_NETNS=%s-n%s\n' "$i" "$sw_ns" "$i"
    done
  } >"$tmp"
  mv "$tmp" "$sw_dir/env"
}

# swarm_load_image <slot> <n> <image> — `docker save` from the machine's engine into each
# node (no registry is reachable), skipped on nodes that already hold the same image id.
swarm_load_image() {
  local slot="$1" n="$2" image="$3" want have i tar
  want="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null)" \
    || { ws_err "image $image is not on the machine's Docker Engine"; return 1; }
  tar="$(swarm_slot_dir "$slot")/image-$$.tar"
  for ((i = 1; i <= n; i++)); do
    have="$(swarm_docker "$slot" "$i" image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
    [ "$have" = "$want" ] && continue
    [ -f "$tar" ] || docker save -o "$tar" "$image"
    swarm_docker "$slot" "$i" load -q -i "$tar" >/dev/null || { rm -f "$tar"; return 1; }
  done
  rm -f "$tar"
  ws_log "image $image on all $n swarm nodes"
}

# swarm_up <slot> [n] — the cluster: links, daemons, swarm init/join, pool labels.
swarm_up() {
  local slot="$1" n="${2:-3}" i token id state
  _ws_swarm_names "$slot"
  ws_is_root || { ws_err "scripts/swarm needs root (network namespaces, dockerd)"; return 1; }
  mkdir -p "$sw_dir"
  echo "$n" >"$sw_dir/nodes"
  _ws_swarm_link_up "$slot" "$n"
  for ((i = 1; i <= n; i++)); do
    swarm_node_start "$slot" "$i" || return 1
  done
  state="$(swarm_docker "$slot" 1 info -f '{{.Swarm.LocalNodeState}}')"
  if [ "$state" != active ]; then
    ws_log "swarm init on node 1 ($sw_net.11)"
    swarm_docker "$slot" 1 swarm init --advertise-addr "$sw_net.11" --listen-addr "$sw_net.11:2377" \
      --default-addr-pool "10.$((220 + slot)).0.0/16" --default-addr-pool-mask-length 24 \
      --dispatcher-heartbeat 2s >/dev/null || return 1
  fi
  token="$(swarm_docker "$slot" 1 swarm join-token -q worker)"
  for ((i = 2; i <= n; i++)); do
    state="$(swarm_docker "$slot" "$i" info -f '{{.Swarm.LocalNodeState}}')"
    if [ "$state" != active ]; then
      ws_log "node $i joins as a worker"
      swarm_docker "$slot" "$i" swarm join --token "$token" --advertise-addr "$sw_net.$((10 + i))" \
        --listen-addr "$sw_net.$((10 + i)):2377" "$sw_net.11:2377" >/dev/null || return 1
    fi
  done
  for ((i = 1; i <= n; i++)); do
    _ws_swarm_tenant_network "$slot" "$i"
    id="$(swarm_docker "$slot" "$i" info -f '{{.Swarm.NodeID}}')"
    echo "$id" >"$sw_dir/node$i/node.id"
    swarm_docker "$slot" 1 node update --label-add websplat.pool=default \
      --label-add "websplat.node=$i" "$id" >/dev/null
  done
  if ! swarm_docker "$slot" 1 network inspect websplat-tenants >/dev/null 2>&1; then
    swarm_docker "$slot" 1 network create --driver bridge --scope swarm \
      --config-from websplat-tenants-config websplat-tenants >/dev/null
  fi
  swarm_write_env "$slot" "$n"
  ws_log "swarm of $n nodes up; state in $sw_dir/env"
}

# swarm_down <slot> — stop every node, remove namespaces, links, mounts and state.
# Idempotent; safe after a crash (works from the names, not from state).
swarm_down() {
  local slot="$1" d i ns
  _ws_swarm_names "$slot"
  if [ -d "$sw_dir" ]; then
    for d in "$sw_dir"/node*; do
      [ -d "$d" ] || continue
      _ws_swarm_kill_tree "$d"
      _ws_swarm_rm_cgroups "$(_ws_swarm_cgroup "$d")"
    done
    _ws_swarm_umount_under "$sw_dir"
  fi
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$sw_ns-(sw|n[0-9]+)\$"); do
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$sw_host" 2>/dev/null || true
  if [ -d "$sw_dir" ]; then
    _ws_swarm_umount_under "$sw_dir"
    rm -rf "$sw_dir" 2>/dev/null || { sleep 1; rm -rf "$sw_dir"; }
  fi
  ws_log "swarm $slot down"
}

# swarm_status <slot> — nodes, their daemons and the swarm's view of them.
swarm_status() {
  local slot="$1" n i pid
  _ws_swarm_names "$slot"
  [ -f "$sw_dir/nodes" ] || { ws_log "no swarm in $sw_dir"; return 1; }
  n="$(cat "$sw_dir/nodes")"
  for ((i = 1; i <= n; i++)); do
    if pid="$(_ws_swarm_node_pid "$slot" "$i")"; then
      printf 'node %s  %s.%s  dockerd pid %s\n' "$i" "$sw_net" "$((10 + i))" "$pid"
    else
      printf 'node %s  %s.%s  dockerd not running\n' "$i" "$sw_net" "$((10 + i))"
    fi
  done
  swarm_docker "$slot" 1 node ls 2>/dev/null || ws_log "manager (node 1) not answering"
}

# ensure_probe_image — websplat/probe:busybox on the machine's engine: Debian's static
# busybox FROM scratch, as the network isolation tests build it (busybox-static must be
# installed). Prints the tag.
ensure_probe_image() {
  local tag=websplat/probe:busybox ctx
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    [ -x /bin/busybox ] || { ws_err "/bin/busybox missing (apt-get install busybox-static)"; return 1; }
    ctx="$(mktemp -d)"
    cp /bin/busybox "$ctx/busybox"
    printf 'FROM scratch\nCOPY busybox /busybox\nUSER 65532:65532\nENTRYPOINT ["/busybox"]\n' \
      >"$ctx/Dockerfile"
    docker build -q -t "$tag" "$ctx" >/dev/null 2>&1 || { rm -rf "$ctx"; ws_err "cannot build $tag"; return 1; }
    rm -rf "$ctx"
  fi
  printf '%s\n' "$tag"
}
