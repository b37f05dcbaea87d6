#!/usr/bin/env bash
# Build the Lowart image from a Debian root filesystem made with debootstrap plus the wheel
# (docs/deployment.md, "Container image"). Run by `make image` as root:
#   deploy/image/build.sh DIST_DIR WORK_DIR IMAGE_NAME
# DIST_DIR holds `make dist`'s wheel and requirements.txt. The debootstrap-ed base is kept in
# WORK_DIR/base and reused; DEBIAN_SUITE and DEBIAN_MIRROR choose another Debian.
set -euo pipefail
dist=$(realpath "$1")
mkdir -p "$2"
work=$(realpath "$2")
image=$3
here=$(cd "$(dirname "$0")" && pwd)
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (apt-get install $tool)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build.sh: debootstrap and chroot need root" >&2; exit 1; }

base=$work/base
if [ ! -f "$base/.complete" ]; then
  rm -rf "$base"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$base" "$mirror"
  touch "$base/.complete"
fi

root=$work/rootfs
rm -rf "$root"
cp -a "$base" "$root"
rm -f "$root/.complete"
wheels=("$dist"/lowart-*.whl)
[ "${#wheels[@]}" = 1 ] && [ -f "${wheels[0]}" ] || { echo "build.sh: expected one wheel in $dist" >&2; exit 1; }
wheel=$(basename "${wheels[0]}")
cp "${wheels[0]}" "$dist/requirements.txt" "$root/tmp/"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The build host's CA bundle, for pip inside the chroot (it may hold a proxy's CA).
cp /etc/ssl/certs/ca-certificates.crt "$root/tmp/host-ca.crt"
chroot "$root" python3 -m venv /opt/lowart
chroot "$root" env -i PATH=/usr/bin:/bin PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
  /opt/lowart/bin/pip install --no-cache-dir --quiet -c /tmp/requirements.txt "/tmp/$wheel"
chroot "$root" useradd --uid 10001 --user-group --home-dir /data --no-create-home \
  --shell /usr/sbin/nologin lowart
mkdir -p "$root/data"
chown 10001:10001 "$root/data"
chmod 0700 "$root/data"
rm -rf "$root"/tmp/* "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
: > "$root/etc/resolv.conf"

tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
cp "$here/Containerfile" "$work/Containerfile"
buildah build --quiet --format docker --layers=false -t "$image" -f "$work/Containerfile" "$work"
echo "built $image"
