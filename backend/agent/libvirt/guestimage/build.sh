#!/usr/bin/env bash
# build.sh builds the tiny guest the libvirt driver's tests boot: a Debian
# kernel and a ~1 MB initramfs of busybox-static, for direct kernel boot
# (no disk). Everything comes out of .deb files fetched with
# `apt-get download`, so nothing is installed on the machine.
#
# Usage: build.sh [CACHE_DIR]
#   CACHE_DIR defaults to $XENMANAGER_IMAGE_CACHE, then
#   ${XDG_CACHE_HOME:-$HOME/.cache}/xenmanager/guest-image.
#
# The image is cached in CACHE_DIR/<key>, where the key names the kernel
# package and its version (plus a digest of this script and the busybox
# version, so that a changed recipe is rebuilt rather than silently reused).
# It is built in a temporary directory and renamed into place, under an
# flock on CACHE_DIR/.lock, so parallel runs neither collide nor both
# download. A run that finds the image does no download. apt-get update runs
# only when apt-cache or apt-get download fails (no or stale package lists).
#
# Progress goes to stderr; stdout is, the same for a build and a cache hit:
#   package=<kernel package> <its version>
#   version=<kernel release, as uname -r says in the guest>
#   kernel=<path of the kernel>
#   initrd=<path of the gzipped initramfs>
#
# The guest's /init (busybox sh), on the serial console:
#   - prints "XENGUEST READY hostname=<h> kernel=<uname -r>" once the ACPI
#     power button works (evdev and button loaded, acpid running);
#   - prints "XENGUEST HEARTBEAT <n> <uptime seconds>" every second, n
#     counting from 1 (it lives in guest memory, so it keeps counting across
#     a live migration);
#   - on the ACPI power button, prints "XENGUEST POWEROFF acpi" and powers
#     off (poweroff -f);
#   - reads lines typed on the console (no tty echo): "poweroff" powers off
#     at once, "panic" panics the kernel (sysrq c), anything else is
#     answered "XENGUEST ECHO <line>";
#   - kernel command line: xenguest.poweroff_after=N and
#     xenguest.panic_after=N (seconds after READY), xenguest.hostname=NAME
#     (default xenguest). After a panic the kernel hangs unless the command
#     line says panic=-1 (reboot at once; with qemu -no-reboot or libvirt's
#     on_reboot=destroy the guest then stops); pvpanic (libvirt's
#     <panic model='isa'/>) is loaded when present, so that libvirt's
#     on_crash sees it.
set -euo pipefail

log() { echo "guestimage: $*" >&2; }
die() { log "$*"; exit 1; }

for tool in apt-cache apt-get dpkg-deb tar cpio gzip flock sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (Debian's apt, dpkg, tar, cpio, gzip, util-linux, coreutils)"
done

if [ -z "${1:-}" ] && [ -z "${XENMANAGER_IMAGE_CACHE:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${HOME:-}" ]; then
  die "no cache directory: give one, or set XENMANAGER_IMAGE_CACHE, XDG_CACHE_HOME or HOME"
fi
cache=${1:-${XENMANAGER_IMAGE_CACHE:-${XDG_CACHE_HOME:-${HOME:-}/.cache}/xenmanager/guest-image}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd -P)

# The lock is held until the script exits (descriptor 9 closes with it).
# Waiting is bounded: a cold build takes well under a minute.
exec 9>"$cache/.lock"
if ! flock -w 600 9; then
  die "timed out after 600 s waiting for the lock $cache/.lock"
fi

# The modules the guest loads, in any order (dependencies are added and
# ordered below): evdev and button make the ACPI power button reach acpid;
# the others are optional: pvpanic (libvirt's <panic model='isa'/>) and
# virtio_balloon, which makes live memory changes real.
modules=(evdev button)
optional_modules=(pvpanic_mmio pvpanic_pci virtio_pci virtio_balloon)

updated=0
apt_update() {
  [ "$updated" = 0 ] || return 1
  updated=1
  log "package lists missing or stale: apt-get update"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n apt-get update -qq >&2
  else
    die "apt-get update needs root"
  fi
}

# resolve sets kpkg and kver (the versioned kernel package that
# linux-image-amd64 depends on, and its version) and bbver (busybox-static's
# version), from one apt-cache call (each call reads every package list).
resolve() {
  local info
  info=$(apt-cache show --no-all-versions linux-image-amd64 busybox-static 2>/dev/null) || return 1
  read -r kpkg kver < <(awk '
    /^Package: / { p = $2 }
    p == "linux-image-amd64" && /^Depends: / {
      if (match($0, /linux-image-[0-9][^ ,]*-amd64 \(= [^)]*\)/)) {
        d = substr($0, RSTART, RLENGTH); gsub(/[()=]/, "", d); print d; exit
      }
    }' <<<"$info") || true
  bbver=$(awk '/^Package: / { p = $2 } p == "busybox-static" && /^Version: / { print $2; exit }' <<<"$info")
  [ -n "${kpkg:-}" ] && [ -n "${kver:-}" ] && [ -n "$bbver" ]
}
if ! resolve; then
  apt_update || true
  resolve || die "cannot resolve linux-image-amd64's kernel package or busybox-static with apt-cache"
fi

# use_cache sets key and dir from the versions resolved; if the image is
# there, it prints it and exits.
use_cache() {
  local recipe
  recipe=$( { sha256sum <"${BASH_SOURCE[0]}"; echo "$bbver"; } | sha256sum | cut -c1-12)
  key="${kpkg}_${kver}+${recipe}"
  dir="$cache/$key"
  if [ -f "$dir/version" ] && [ -f "$dir/vmlinuz" ] && [ -f "$dir/initrd.gz" ]; then
    log "cached: $dir"
    print_result
    exit 0
  fi
}
print_result() {
  echo "package=$kpkg $kver"
  echo "version=$(cat "$dir/version")"
  echo "kernel=$dir/vmlinuz"
  echo "initrd=$dir/initrd.gz"
}
use_cache

log "building $key in $cache"
# A build killed before its cleanup left its directory (with ~400 MB of
# modules); under the lock no other build runs.
rm -rf "$cache"/.build.*
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/kernel" "$work/bb" "$work/out" "$work/root"

# apt-get download as root warns that it cannot drop to _apt in a private
# directory; the sandbox user root keeps it quiet.
apt_opts=(-q)
[ "$(id -u)" -eq 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
download() {
  (cd "$work/debs" && apt-get "${apt_opts[@]}" download "$kpkg=$kver" "busybox-static=$bbver" >&2)
}
if ! download; then
  apt_update || die "apt-get download of $kpkg=$kver and busybox-static=$bbver failed"
  resolve || die "cannot resolve the kernel package after apt-get update"
  use_cache # the lists may name newer versions, maybe built already
  rm -f "$work"/debs/*.deb
  download || die "apt-get download of $kpkg=$kver and busybox-static=$bbver failed after apt-get update"
fi
kdeb=$(ls "$work"/debs/linux-image-*.deb)
bdeb=$(ls "$work"/debs/busybox-static_*.deb)

# One pass over the kernel package's data (it is a 70 MB .tar.xz, and each
# pass decompresses all of it) takes the kernel and every module; the
# modules needed are then found by name, with what they depend on (their
# modinfo "depends="). Debian 12 ships modules as plain .ko; later releases
# compress them (.ko.xz), which busybox's insmod may not read, so
# compressed ones are decompressed.
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work/kernel" --wildcards './boot/vmlinuz-*' './lib/modules/*.ko*'
vmlinuz=$(cd "$work/kernel" && ls boot/vmlinuz-* | head -n 1)
[ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in $kdeb"
release=${vmlinuz#boot/vmlinuz-}

# modules.index: "name path" per module ("-" and "_" are the same in module
# names); path_of NAME prints the path of module NAME.
(cd "$work/kernel" && find lib/modules -name '*.ko*' -type f) |
  awk '{ n = $0; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n); print n, $0 }' >"$work/modules.index"
path_of() {
  awk -v n="${1//-/_}" '$1 == n { print $2; exit }' "$work/modules.index"
}

declare -A file_of=()   # module name -> its .ko in $work/kernel
order=()                # load order, dependencies first
# add NAME: NAME's dependencies, then NAME, once.
add() {
  local m=${1//-/_} p d deps
  [ -n "${file_of[$m]:-}" ] && return 0
  p=$(path_of "$m")
  [ -n "$p" ] || return 1
  p="$work/kernel/$p"
  # (set -e does not apply inside a function called before ||: check.)
  case "$p" in
    *.ko.xz) xz -dc "$p" >"${p%.xz}" || die "xz -d $p failed"; p=${p%.xz} ;;
    *.ko.zst) zstd -qdc "$p" >"${p%.zst}" || die "zstd -d $p failed"; p=${p%.zst} ;;
    *.ko.gz) gzip -dc "$p" >"${p%.gz}" || die "gzip -d $p failed"; p=${p%.gz} ;;
  esac
  file_of[$m]=$p
  deps=$(tr '\0' '\n' <"$p" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' ')
  for d in $deps; do
    add "$d" || die "module $m needs $d, which is not in $kpkg"
  done
  order+=("$m")
}
for m in "${modules[@]}"; do add "$m" || die "module $m is not in $kpkg"; done
for m in "${optional_modules[@]}"; do add "$m" || log "optional module $m is not in $kpkg"; done
load=("${order[@]}")

dpkg-deb --fsys-tarfile "$bdeb" | tar -x -C "$work/bb" ./bin/busybox

# The initramfs tree.
r="$work/root"
mkdir -p "$r"/{bin,dev,proc,sys,tmp,root,etc/xenguest,etc/acpi/PWRF,lib/modules,var/run}
install -m 0755 "$work/bb/bin/busybox" "$r/bin/busybox"
for m in "${load[@]}"; do
  install -m 0644 "${file_of[$m]}" "$r/lib/modules/$m.ko"
  echo "$m" >>"$r/etc/xenguest/modules"
done
for m in "${modules[@]}"; do echo "$m" >>"$r/etc/xenguest/required"; done

# busybox acpid runs /etc/acpi/PWRF/00000080 on the power button.
cat >"$r/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "XENGUEST POWEROFF acpi" >/dev/console
poweroff -f
EOF
chmod 0755 "$r/etc/acpi/PWRF/00000080"

cat >"$r/init" <<'EOF'
#!/bin/busybox sh
# /init of xenmanager's test guest (backend/agent/libvirt/guestimage/build.sh).
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
stty -echo 2>/dev/null

echo 1 >/proc/sys/kernel/sysrq
name=xenguest
poweroff_after=
panic_after=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    xenguest.hostname=*) name=${arg#*=} ;;
    xenguest.poweroff_after=*) poweroff_after=${arg#*=} ;;
    xenguest.panic_after=*) panic_after=${arg#*=} ;;
  esac
done
hostname "$name"

while read -r m; do
  if ! insmod "/lib/modules/$m.ko"; then
    if grep -qx "$m" /etc/xenguest/required; then
      echo "XENGUEST ERROR insmod $m failed"
    fi
  fi
done </etc/xenguest/modules
# acpid opens the input devices present when it starts.
acpid -c /etc/acpi -l /tmp/acpid.log -p /var/run/acpid.pid

# The firmware leaves escape sequences without a newline: start a line.
echo
echo "XENGUEST READY hostname=$(hostname) kernel=$(uname -r)"

(
  n=0
  while :; do
    n=$((n + 1))
    read -r up idle </proc/uptime
    echo "XENGUEST HEARTBEAT $n $up"
    sleep 1
  done
) &

isnum() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; }
if isnum "$poweroff_after"; then
  (sleep "$poweroff_after"; echo "XENGUEST POWEROFF after ${poweroff_after}s"; poweroff -f) &
elif [ -n "$poweroff_after" ]; then
  echo "XENGUEST ERROR xenguest.poweroff_after=$poweroff_after is not a number of seconds"
fi
if isnum "$panic_after"; then
  (sleep "$panic_after"; echo "XENGUEST PANIC after ${panic_after}s"; echo c >/proc/sysrq-trigger) &
elif [ -n "$panic_after" ]; then
  echo "XENGUEST ERROR xenguest.panic_after=$panic_after is not a number of seconds"
fi

cr=$(printf '\r')
while :; do
  if IFS= read -r line; then
    line=${line%"$cr"}
    case "$line" in
      poweroff) echo "XENGUEST POWEROFF console"; poweroff -f ;;
      panic) echo "XENGUEST PANIC console"; echo c >/proc/sysrq-trigger ;;
      '') ;;
      *) echo "XENGUEST ECHO $line" ;;
    esac
  else
    # End of input (the console has none, or it was closed): look again
    # later rather than spin.
    sleep 1
  fi
done
EOF
chmod 0755 "$r/init"

(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -H newc -o --owner=0:0 --reproducible) |
  gzip -9 -n >"$work/out/initrd.gz"
install -m 0644 "$work/kernel/$vmlinuz" "$work/out/vmlinuz"
echo "$release" >"$work/out/version"
echo "$kpkg $kver" >"$work/out/package"
echo "${load[*]}" >"$work/out/modules"
chmod 0755 "$work/out"

rm -rf "$dir"
mv "$work/out" "$dir"
log "built $dir: kernel $(stat -c %s "$dir/vmlinuz") bytes, initrd $(stat -c %s "$dir/initrd.gz") bytes, modules: ${load[*]}"
print_result
