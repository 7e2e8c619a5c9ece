#!/usr/bin/env bash
# Builds the test guest of tests/e2e/test_libvirt_guest.py from Debian packages: the Debian
# cloud kernel and a busybox initramfs whose /init plays the part of cloud-init.
#   usage: build-guest.sh OUTDIR   -> OUTDIR/vmlinuz, OUTDIR/initrd.img
# Idempotent (nothing to do when both exist). Needs busybox-static and cpio (installed when
# missing) and `apt-get download` access to the Debian archive.
#
# The guest prints on its serial console (ttyS0):
#   STRATA-GUEST-BOOTED kernel=<release>
#   STRATA-GUEST-CONFIG-DRIVE <device>           its config drive (label config-2) found
#   STRATA-GUEST-HOSTNAME <hostname>              from openstack/latest/meta_data.json
#   STRATA-GUEST-UUID <uuid>
#   STRATA-GUEST-USERDATA <line>                  each line of openstack/latest/user_data
#   STRATA-GUEST-NIC <name> <mac>
#   STRATA-GUEST-READY
# then, once a second, STRATA-GUEST-DISK-ADDED <dev> <sectors> <serial> / -REMOVED <dev> for
# hot-plugged virtio disks and STRATA-GUEST-NIC-ADDED <name> <mac> / -REMOVED <name> for NICs. The ACPI power button powers it off (clean shutdown).
set -euo pipefail
OUT=${1:?usage: build-guest.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.img" ]; then exit 0; fi

need=()
{ [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static; } || dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
BB=$(command -v busybox)

T=$(mktemp -d)
chmod 755 "$T"   # apt-get download runs as _apt
trap 'rm -rf "$T"' EXIT
cd "$T"
kpkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
KPKG=$(kpkg)
[ -n "$KPKG" ] || { apt-get -o DPkg::Lock::Timeout=600 update -qq; KPKG=$(kpkg); }
[ -n "$KPKG" ] || { echo "no linux-image-cloud-amd64 in the Debian archive" >&2; exit 1; }
timeout 600 apt-get download "$KPKG" >/dev/null
dpkg -x ./linux-image-*.deb k
KVER=$(ls k/lib/modules | head -1)
cp k/boot/vmlinuz-* "$T/vmlinuz"

R=root
mkdir -p $R/bin $R/sbin $R/etc/acpi/PWRF $R/proc $R/sys $R/dev $R/tmp $R/mnt $R/lib/mod $R/run
cp "$BB" $R/bin/busybox
for a in $($R/bin/busybox --list); do [ -e $R/bin/$a ] || ln -s busybox $R/bin/$a; done
# dependencies first
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover
virtio_net virtio_blk scsi_common scsi_mod cdrom sr_mod libata ata_piix isofs button evdev"
for m in $MODS; do
  f=$(find k/lib/modules/$KVER -name "$m.ko*" | head -1)
  [ -n "$f" ] || continue
  case $f in
    *.ko.xz) xz -dc "$f" >$R/lib/mod/$m.ko ;;
    *.ko.zst) zstd -qdc "$f" >$R/lib/mod/$m.ko ;;
    *) cp "$f" $R/lib/mod/$m.ko ;;
  esac
done
echo $MODS >$R/lib/mod/order

cat >$R/etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
echo "STRATA-GUEST-POWEROFF"
sync
poweroff -f
EOF
chmod +x $R/etc/acpi/PWRF/00000080

cat >$R/init <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $(cat /lib/mod/order); do [ -f /lib/mod/$m.ko ] && insmod /lib/mod/$m.ko 2>/dev/null; done
echo "STRATA-GUEST-BOOTED kernel=$(uname -r)"
found=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  for d in /dev/sr0 /dev/sr1 /dev/hdd /dev/vdb /dev/vdc; do
    [ -b $d ] || continue
    if mount -t iso9660 -o ro $d /mnt 2>/dev/null; then
      if [ -f /mnt/openstack/latest/meta_data.json ]; then found=$d; break 2; fi
      umount /mnt
    fi
  done
  sleep 1
done
if [ -n "$found" ]; then
  echo "STRATA-GUEST-CONFIG-DRIVE $found"
  md=/mnt/openstack/latest/meta_data.json
  echo "STRATA-GUEST-HOSTNAME $(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' $md)"
  echo "STRATA-GUEST-UUID $(sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p' $md)"
  [ -f /mnt/openstack/latest/user_data ] && while IFS= read -r l; do echo "STRATA-GUEST-USERDATA $l"; done </mnt/openstack/latest/user_data
  umount /mnt
else
  echo "STRATA-GUEST-NO-CONFIG-DRIVE"
fi
for i in /sys/class/net/*; do echo "STRATA-GUEST-NIC ${i##*/} $(cat $i/address)"; done
disks=""; for d in /sys/block/vd*; do [ -e $d ] && disks="$disks${d##*/}:$(cat $d/size),"; done
echo "STRATA-GUEST-SIZE cpus=$(grep -c ^processor /proc/cpuinfo) mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) disks=$disks"
# an ext4 label (superblock at 1024, label at +120) and a swap signature (end of page 0)
for d in /dev/vd?; do [ -b $d ] && echo "STRATA-GUEST-DISKSIG ${d##*/}" \
  "label=$(dd if=$d bs=1 skip=1144 count=16 2>/dev/null | tr -d '\000')" \
  "swap=$(dd if=$d bs=1 skip=4086 count=10 2>/dev/null | tr -d '\000')"; done
acpid -d -c /etc/acpi >/dev/console 2>&1 &
echo "STRATA-GUEST-READY"
known=" $(cd /sys/block && echo vd*) "
nics=" $(cd /sys/class/net && echo *) "
while true; do
  now=" $(cd /sys/block && echo vd*) "
  for d in $now; do case "$known" in *" $d "*) ;; *)
    [ -e /sys/block/$d ] && echo "STRATA-GUEST-DISK-ADDED $d $(cat /sys/block/$d/size) $(cat /sys/block/$d/serial 2>/dev/null)";; esac; done
  for d in $known; do case "$now" in *" $d "*) ;; *) [ "$d" = "vd*" ] || echo "STRATA-GUEST-DISK-REMOVED $d";; esac; done
  known=$now
  nnow=" $(cd /sys/class/net && echo *) "
  for n in $nnow; do case "$nics" in *" $n "*) ;; *)
    echo "STRATA-GUEST-NIC-ADDED $n $(cat /sys/class/net/$n/address 2>/dev/null)";; esac; done
  for n in $nics; do case "$nnow" in *" $n "*) ;; *) echo "STRATA-GUEST-NIC-REMOVED $n";; esac; done
  nics=$nnow
  sleep 1
done
EOF
chmod +x $R/init
(cd $R && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$T/initrd.img"
mv "$T/vmlinuz" "$T/initrd.img" "$OUT/"
