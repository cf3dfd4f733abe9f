#!/usr/bin/env bash
# The README's test command (`make test`) runs this after installing the virtualenv.
# It makes sure PostgreSQL and Mosquitto are installed and running on loopback, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

apt_install() {
  echo "test.sh: installing $* with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
  fi
  if ! port_open 5432; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
  port_open 5432 || { echo "test.sh: PostgreSQL is not listening on 127.0.0.1:5432" >&2; exit 1; }
  # The test database, trust auth for postgres on loopback (a fresh install's default is peer/md5).
  if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "psql -c 'create database test'" >/dev/null 2>&1 || true
  fi
}

ensure_mosquitto() {
  if ! command -v mosquitto >/dev/null 2>&1; then
    apt_install mosquitto
  fi
  if ! port_open 1883; then
    as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
  fi
  for _ in $(seq 1 20); do port_open 1883 && break; sleep 0.5; done
  port_open 1883 || { echo "test.sh: Mosquitto is not listening on 127.0.0.1:1883" >&2; exit 1; }
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || apt_install chromium chromium-driver || \
    echo "test.sh: chromium could not be installed; browser tests will skip" >&2
}

ensure_postgres
ensure_mosquitto
ensure_chromium

# Two workers, one test file each: most tests wait on daemons and servers, so this halves the
# wall time on 2 cores; files keep their module-scoped daemons.
args=(-n 2 --dist loadfile -m "not slow")
if [ "${1:-}" = "--long" ]; then
  args=(-m "slow or not slow")
  # Every fault scenario writes what it counted here (tests/support/fault_report.py).
  export REFINERYIQ_FAULT_RESULTS="${REFINERYIQ_FAULT_RESULTS:-bench/results/faults}"
fi

set +e
"$BIN/python" -m pytest "${args[@]}" tests
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "test.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
