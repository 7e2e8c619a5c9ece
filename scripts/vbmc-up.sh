#!/usr/bin/env bash
# VirtualBMC (pyghmi's IPMI 2.0 / lanplus BMC in front of libvirt domains): the independent
# IPMI server implementation strata-ipmi's client is tested against (crates/ipmi/tests/
# virtualbmc.rs). Installs what is missing, then starts (or reuses) one vbmcd whose state lives
# in STATE_DIR. Idempotent. Needs libvirtd (scripts/libvirt-up.sh is run when it is not up).
#
#   usage: scripts/vbmc-up.sh [STATE_DIR]          install + start vbmcd [default /var/tmp/strata-vbmc]
#          scripts/vbmc-up.sh --install            install only (venv, ipmitool), start nothing
#          scripts/vbmc-up.sh --down [STATE_DIR]   stop the BMCs and the vbmcd started there (by PID)
#   env:   STRATA_VBMC_VENV          the venv [default /var/tmp/strata-vbmc-venv]
#          STRATA_VBMC_SERVER_PORT   vbmcd's control port (ZeroMQ, TCP on loopback) [default 50891]
#          STRATA_VBMC_NO_INSTALL=1  fail rather than install what is missing (what tests set)
# Prints, last, the VIRTUALBMC_CONFIG=... line that points `vbmc` at this daemon; then:
#   VIRTUALBMC_CONFIG=... $STRATA_VBMC_VENV/bin/vbmc add DOMAIN --port 6230 --address 127.0.0.1 \
#       --username admin --password password --libvirt-uri qemu:///system
#   VIRTUALBMC_CONFIG=... $STRATA_VBMC_VENV/bin/vbmc start DOMAIN
#   ipmitool -I lanplus -H 127.0.0.1 -p 6230 -U admin -P password power status
#
# What this machine kind needs (found by shared/recipes/vbmc-up.sh):
#   - vbmcd dies with "[Errno 2] No such file or directory: '<config_dir>'" unless config_dir
#     exists;
#   - in daemon mode vbmcd 3.3 writes "0" into its pid_file: run it with --foreground under nohup
#     and keep our own pidfile;
#   - libvirt-python has no wheel here: it builds from the sdist, which needs libvirt-dev and
#     pkg-config;
#   - while vbmcd is down each `vbmc` call blocks for 5 s (its server_response_timeout).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STRATA_VBMC_VENV:-/var/tmp/strata-vbmc-venv}
SERVER_PORT=${STRATA_VBMC_SERVER_PORT:-50891}
MODE=up
case "${1:-}" in
  --down) MODE=down; shift ;;
  --install) MODE=install; shift ;;
esac
WD=${1:-/var/tmp/strata-vbmc}

stop_daemon() {
  local conf=$WD/virtualbmc.conf pid
  [ -f "$conf" ] || return 0
  if [ -x "$VENV/bin/vbmc" ] && [ -s "$WD/vbmcd.pid" ] && kill -0 "$(cat "$WD/vbmcd.pid")" 2>/dev/null; then
    # Each BMC is a child process of vbmcd: stop them through it first.
    for dom in $(VIRTUALBMC_CONFIG=$conf timeout 20 "$VENV/bin/vbmc" list -f value -c 'Domain name' 2>/dev/null); do
      VIRTUALBMC_CONFIG=$conf timeout 20 "$VENV/bin/vbmc" stop "$dom" >/dev/null 2>&1 || true
    done
  fi
  if [ -s "$WD/vbmcd.pid" ]; then
    pid=$(cat "$WD/vbmcd.pid")
    if kill "$pid" 2>/dev/null; then
      # Gone before we return: a restart reuses its control port.
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "stopped vbmcd (pid $pid)"
    fi
    rm -f "$WD/vbmcd.pid"
  fi
}

if [ $MODE = down ]; then
  stop_daemon
  exit 0
fi

# --- install (ipmitool, the venv) ------------------------------------------------------------------
need=()
command -v ipmitool >/dev/null || need+=(ipmitool)
if [ ! -x "$VENV/bin/vbmcd" ]; then
  pkg-config --exists libvirt 2>/dev/null || need+=(libvirt-dev pkg-config)
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ] || { [ ! -x "$VENV/bin/vbmcd" ] && [ "${STRATA_VBMC_NO_INSTALL:-0}" = 1 ]; }; then
  if [ "${STRATA_VBMC_NO_INSTALL:-0}" = 1 ]; then
    echo "missing (and STRATA_VBMC_NO_INSTALL=1): ${need[*]} $([ -x "$VENV/bin/vbmcd" ] || echo "$VENV")" >&2
    exit 1
  fi
  echo "installing from Debian: ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${need[@]}" >/dev/null || exit 1
fi
if [ ! -x "$VENV/bin/vbmcd" ]; then
  echo "creating $VENV (virtualbmc, libvirt-python)"
  python3 -m venv "$VENV" || exit 1
  timeout 900 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    virtualbmc libvirt-python || { rm -rf "$VENV"; exit 1; }
fi
[ $MODE = install ] && { echo "installed: $VENV/bin/vbmcd"; exit 0; }

# --- libvirt, then vbmcd -----------------------------------------------------------------------------
timeout 30 virsh -c qemu:///system -q version >/dev/null 2>&1 || bash "$ROOT/scripts/libvirt-up.sh" || exit 1

mkdir -p "$WD/conf"   # config_dir must exist, or vbmcd dies
WD=$(cd "$WD" && pwd)
CONF=$WD/virtualbmc.conf
cat >"$CONF.new" <<EOF
[default]
config_dir = $WD/conf
pid_file = $WD/vbmcd-own.pid
server_port = $SERVER_PORT
[log]
logfile = $WD/vbmcd.log
EOF
if [ -s "$WD/vbmcd.pid" ] && kill -0 "$(cat "$WD/vbmcd.pid")" 2>/dev/null && cmp -s "$CONF" "$CONF.new"; then
  rm -f "$CONF.new"
  echo "vbmcd already running (pid $(cat "$WD/vbmcd.pid"))"
else
  stop_daemon
  mv "$CONF.new" "$CONF"
  VIRTUALBMC_CONFIG=$CONF nohup "$VENV/bin/vbmcd" --foreground >>"$WD/vbmcd.out" 2>&1 &
  echo $! >"$WD/vbmcd.pid"
  # Up when `vbmc list` answers (it talks to vbmcd over its control port).
  ok=0
  for _ in $(seq 1 100); do
    kill -0 "$(cat "$WD/vbmcd.pid")" 2>/dev/null || break
    if VIRTUALBMC_CONFIG=$CONF timeout 10 "$VENV/bin/vbmc" list >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  [ $ok = 1 ] || { echo "vbmcd did not come up; see $WD/vbmcd.log and $WD/vbmcd.out" >&2; exit 1; }
  echo "vbmcd up (pid $(cat "$WD/vbmcd.pid"), control port $SERVER_PORT)"
fi
echo "VIRTUALBMC_CONFIG=$CONF"
