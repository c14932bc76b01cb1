#!/usr/bin/env bash
# A local Citus cluster (a coordinator and two workers) for trying polo's
# PostgreSQL store on Citus by hand. NOT run by CI: CI keeps to plain
# PostgreSQL (see docs/postgres.md, "Schema and Citus").
#
# Usage:
#   scripts/citus-cluster.sh start    # initdb if needed, start, join the workers
#   scripts/citus-cluster.sh stop     # stop all three instances
#   scripts/citus-cluster.sh status   # what runs, and the coordinator's node list
#
# Every command is idempotent: `start` on a running cluster only checks it.
#
# What it needs: PostgreSQL 15's server binaries (Debian: /usr/lib/postgresql/15/bin,
# override with PG_BIN) and the Citus extension installed into that PostgreSQL.
# Citus is not packaged for this machine; build it from source, e.g. v13.2.2:
#
#   apt-get install -y postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev \
#       libzstd-dev libkrb5-dev libssl-dev
#   git clone --branch v13.2.2 https://github.com/citusdata/citus && cd citus
#   # Debian's PostgreSQL 15.20 exports have_createdb_privilege(), which Citus
#   # 13.2.2 also defines as a static function for PG < 16: rename Citus's copy
#   # with one line before it (the only compatibility change needed):
#   perl -0pi -e 's/(static inline bool\nhave_createdb_privilege\(void\))/#define have_createdb_privilege citus_compat_have_createdb_privilege\n$1/' \
#       src/include/pg_version_compat.h
#   ./configure && make -j2 && make install
#
# The instances (data under CITUS_DIR, default /work/citus):
#   coordinator  127.0.0.1:9700  $CITUS_DIR/coord
#   worker 1     127.0.0.1:9701  $CITUS_DIR/w1
#   worker 2     127.0.0.1:9702  $CITUS_DIR/w2
# each with shared_preload_libraries='citus', trust auth for local and
# 127.0.0.1 connections, superuser `postgres`, and `CREATE EXTENSION citus` in
# the `postgres` database. The coordinator knows itself
# (citus_set_coordinator_host) and both workers (citus_add_node). The
# machine's own PostgreSQL on 5432 is never touched.
#
# Run it as root (it drops to the `postgres` OS user, as initdb refuses root)
# or as the user that should own the data directories.
#
# polo on it:
#   cargo run -p polo -- --database-url postgres://postgres@127.0.0.1:9700/postgres user list
#   POLO_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:9700/postgres POLO_TEST_CITUS=1 \
#       cargo test -p polo-store-postgres --test conformance -- --test-threads=2
set -euo pipefail

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
CITUS_DIR="${CITUS_DIR:-/work/citus}"
NODES=("coord:9700" "w1:9701" "w2:9702")

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

psql_at() {
    local port=$1
    shift
    as_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

running() {
    as_owner "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$1" status >/dev/null 2>&1
}

init_node() {
    local name=$1 port=$2 dir="$CITUS_DIR/$1"
    if [ -f "$dir/PG_VERSION" ]; then
        return
    fi
    echo "initdb $dir (port $port)"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$CITUS_DIR" "$dir"
    fi
    as_owner "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<EOF

# scripts/citus-cluster.sh
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'citus'
max_connections = 200
shared_buffers = 64MB
wal_level = logical
max_prepared_transactions = 200
EOF
}

start_node() {
    local name=$1 port=$2 dir="$CITUS_DIR/$1"
    if running "$name"; then
        return
    fi
    echo "starting $name on 127.0.0.1:$port"
    as_owner "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
}

cmd_start() {
    if [ ! -f "$("$PG_BIN/pg_config" --sharedir)/extension/citus.control" ]; then
        echo "FATAL: the citus extension is not installed into $PG_BIN's PostgreSQL (see the top of $0)" >&2
        exit 1
    fi
    mkdir -p "$CITUS_DIR"
    for node in "${NODES[@]}"; do
        init_node "${node%%:*}" "${node##*:}"
        start_node "${node%%:*}" "${node##*:}"
        psql_at "${node##*:}" -c "CREATE EXTENSION IF NOT EXISTS citus"
    done
    psql_at 9700 -o /dev/null <<'EOF'
SELECT citus_set_coordinator_host('127.0.0.1', 9700);
SELECT citus_add_node('127.0.0.1', 9701);
SELECT citus_add_node('127.0.0.1', 9702);
EOF
    cmd_status
}

cmd_stop() {
    for node in "${NODES[@]}"; do
        local name=${node%%:*}
        if running "$name"; then
            echo "stopping $name"
            as_owner "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$name" -m fast -w stop >/dev/null
        fi
    done
}

cmd_status() {
    for node in "${NODES[@]}"; do
        local name=${node%%:*}
        if running "$name"; then echo "$name: running on 127.0.0.1:${node##*:}"; else echo "$name: stopped"; fi
    done
    if running coord; then
        psql_at 9700 -c "SELECT citus_version()" \
            -c "SELECT nodename, nodeport, noderole, isactive FROM pg_dist_node ORDER BY nodeport"
    fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
