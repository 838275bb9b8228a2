# A private PostgreSQL cluster for a test script that starts orchestratord
# itself. Source it after setting `work` (a temporary directory):
#
#   private_pg_start          initdb and start it on a free port; sets
#                             pg_conninfo (libpq conninfo for --database_url)
#   private_pg_ctl ARGS...    pg_ctl on it as its owner (e.g. restart -m fast -w)
#   private_pg_stop           stop it at once; never fails (for a trap)
#   free_port                 a free TCP port on 127.0.0.1
# shellcheck shell=bash

pg_bin="$(dirname "$(find /usr/lib/postgresql -path '*/bin/pg_ctl' | sort -V | tail -n1)")"
if [ "$(id -u)" -eq 0 ]; then pg_owner=postgres; else pg_owner="$(id -un)"; fi

pg_as_owner() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

private_pg_ctl() {
  pg_as_owner "$pg_bin/pg_ctl" "$@" -D "$work/pg" -l "$work/pg/server.log" \
    -o "-p $pg_port -k $work/sock -c listen_addresses=''"
}

private_pg_start() {
  chmod 755 "$work"
  pg_port="$(free_port)"
  mkdir -p "$work/pg" "$work/sock"
  chown "$pg_owner" "$work/pg" "$work/sock"
  pg_as_owner "$pg_bin/initdb" -D "$work/pg" -U "$pg_owner" -A trust >/dev/null
  private_pg_ctl start -w >/dev/null
  pg_conninfo="host=$work/sock port=$pg_port dbname=postgres user=$pg_owner"
}

private_pg_stop() {
  [ -d "$work/pg" ] || return 0
  pg_as_owner "$pg_bin/pg_ctl" stop -D "$work/pg" -m immediate >/dev/null 2>&1 || true
}
