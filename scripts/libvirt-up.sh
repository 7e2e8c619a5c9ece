#!/usr/bin/env bash
# Starts libvirt (monolithic libvirtd + virtlogd) by hand, without systemd, for the libvirt
# hypervisor driver and its tests; installs it first when missing. Idempotent: a running
# libvirtd is reused.
#   usage: scripts/libvirt-up.sh          start (or reuse); prints the URI on the last line
#          scripts/libvirt-up.sh --down   stop the daemons this script started (by PID)
#
# What this machine kind needs (see docs/operator-guide.md, "libvirt"):
#   - installing qemu-system-x86 removes a preinstalled newer qemu-utils: qemu-img is put back;
#   - QEMU must run as root (qemu.conf user/group): with the packaged libvirt-qemu user,
#     libvirtd finds /dev/kvm (0600 root) unusable for that user, discards its capability cache
#     on every call and re-probes QEMU for seconds each time;
#   - the packaged 'default' NAT network must not autostart (no traffic off the machine).
set -uo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
V="timeout 60 virsh -q"
LOG=${STRATA_LIBVIRT_LOG:-/var/tmp/strata-libvirtd.log}
STARTED=/run/strata-libvirt.started   # present when this script started the daemons

if [ "${1:-}" = "--down" ]; then
  [ -f $STARTED ] || exit 0
  for p in /run/libvirtd.pid /run/virtlogd.pid; do
    [ -s $p ] && kill "$(cat $p)" 2>/dev/null && echo "stopped $(basename $p .pid) (pid $(cat $p))"
  done
  rm -f $STARTED
  exit 0
fi

need=()
command -v libvirtd >/dev/null || need+=(libvirt-daemon-system)
command -v virsh >/dev/null || need+=(libvirt-clients)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v genisoimage >/dev/null || need+=(genisoimage)   # config drives, as Nova builds them
if [ ${#need[@]} -gt 0 ]; then
  echo "installing from Debian: ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null || exit 1
fi
command -v qemu-img >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends qemu-utils >/dev/null

rm -f /etc/libvirt/qemu/networks/autostart/default.xml
mkdir -p /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt
grep -q '^user = "root"' /etc/libvirt/qemu.conf || printf 'user = "root"\ngroup = "root"\n' >>/etc/libvirt/qemu.conf

if ! $V version >/dev/null 2>&1; then
  { [ -s /run/virtlogd.pid ] && kill -0 "$(cat /run/virtlogd.pid)" 2>/dev/null; } || virtlogd -d
  libvirtd -d --pid-file /run/libvirtd.pid 2>>"$LOG"
  touch $STARTED
  for _ in $(seq 1 150); do $V version >/dev/null 2>&1 && break; sleep 0.2; done
fi
$V version >/dev/null 2>&1 || { echo "libvirtd did not come up; see $LOG" >&2; exit 1; }
echo "libvirtd up (pid $(cat /run/libvirtd.pid 2>/dev/null))"
echo qemu:///system
