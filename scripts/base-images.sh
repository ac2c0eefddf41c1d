#!/usr/bin/env bash
# Makes the local base images proctor's demo and tests build on. No registry can be reached
# from these machines, so nothing is pulled: the images are imported from root folders.
#
#   proctor/busybox:1   busybox-static with every applet linked (2 MB, 0.3 s)
#   proctor/python:3.11 Debian bookworm minbase with python3 (about a minute, once)
set -euo pipefail
source "$(dirname "$0")/env.sh"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

make_busybox() {
  have_image "$PROCTOR_BUSYBOX_IMAGE" && return
  log "making $PROCTOR_BUSYBOX_IMAGE from busybox-static"
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/home/participant"
  cp /bin/busybox "$root/bin/busybox"
  # Every applet needs its link, or `sh -c 'sleep 1'` finds no sleep.
  chroot "$root" /bin/busybox --install -s /bin
  printf 'root:x:0:0:root:/root:/bin/sh\nparticipant:x:1000:1000::/home/participant:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\nparticipant:x:1000:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$PROCTOR_BUSYBOX_IMAGE" >/dev/null
  rm -rf "$root"
}

apt_mirror() {
  # The mirror this machine's apt uses: debootstrap must reach the same one.
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -v security | head -n1 | awk '{print ($1=="deb") ? $2 : $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

make_python() {
  have_image "$PROCTOR_PYTHON_IMAGE" && return
  local root mirror
  root=$(mktemp -d)
  mirror=$(apt_mirror)
  log "making $PROCTOR_PYTHON_IMAGE with debootstrap from $mirror (about a minute)"
  debootstrap --variant=minbase --include=python3 bookworm "$root" "$mirror" >"$PROCTOR_HOME/run/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $PROCTOR_HOME/run/debootstrap.log"
  chroot "$root" /usr/sbin/useradd --uid 1000 --create-home participant
  tar -C "$root" \
    --exclude=./var/cache/apt --exclude=./var/lib/apt/lists \
    --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
    -c . | docker import -c 'CMD ["/usr/bin/python3"]' \
    -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8' - "$PROCTOR_PYTHON_IMAGE" >/dev/null
  rm -rf "$root"
}

mkdir -p "$PROCTOR_HOME/run"
make_busybox
make_python
log "base images ready: $PROCTOR_BUSYBOX_IMAGE, $PROCTOR_PYTHON_IMAGE"
