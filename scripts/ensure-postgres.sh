#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at $OMS_PG_HOST:$OMS_PG_PORT.
# 1. one answers: nothing to do;
# 2. a Debian cluster exists but is stopped: start it;
# 3. otherwise: install the server if missing and run a project-local,
#    trust-auth cluster under .run/pgdata (the system's config is untouched).
source "$(dirname "$0")/common.sh"

command -v pg_isready >/dev/null || apt_install postgresql-client
ready() { pg_isready -q -h "$OMS_PG_HOST" -p "$OMS_PG_PORT"; }
ready && exit 0

if command -v pg_lsclusters >/dev/null && [ -n "$(pg_lsclusters -h 2>/dev/null | awk -v p="$OMS_PG_PORT" '$3==p')" ]; then
  read -r ver name _ < <(pg_lsclusters -h | awk -v p="$OMS_PG_PORT" '$3==p')
  log "starting PostgreSQL cluster $ver/$name"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || true
  wait_for 30 ready && exit 0
fi

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ]; then
  # Keep the package from creating and starting a password-auth cluster of its own.
  if [ -f /etc/postgresql-common/createcluster.conf ] || [ ! -e /etc/postgresql-common ]; then
    as_root mkdir -p /etc/postgresql-common
    grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf 2>/dev/null ||
      echo 'create_main_cluster = false' | as_root tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  apt_install postgresql
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

data="$RUN_DIR/pgdata-$OMS_PG_PORT"
# Postgres refuses to run as root; use the postgres account then.
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$data/PG_VERSION" ]; then
  log "creating a local trust-auth PostgreSQL cluster in $data"
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  run_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 >/dev/null
fi
log "starting local PostgreSQL on $OMS_PG_HOST:$OMS_PG_PORT"
run_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-h $OMS_PG_HOST -p $OMS_PG_PORT -k /tmp -c max_connections=300" start >/dev/null
wait_for 30 ready || die "PostgreSQL did not start; see $data/server.log"
