#!/bin/bash
# Builds passgate's Debian package once per source tree and prints the folder holding it:
#   passgate_<version>_<arch>.deb, passgate-dbgsym_<version>_<arch>.deb (dpkg-buildpackage -b),
#   prev/passgate_<version>~prev_<arch>.deb (the same package re-versioned lower with dpkg-deb:
#   "the previous build" for the upgrade test; same conffile, so an upgrade never prompts).
# The tree (git ls-files: tracked and untracked files, not the ignored build folders) is copied
# into CACHE_DIR/pkg-KEY/passgate/, KEY the hash of its content: dpkg-buildpackage writes the .debs
# next to the source folder, and a clean clone stays clean. A tree already built is reused (the
# package suite and systemd-boot both need the package); older ones are removed.
# Usage: build_package.sh SOURCE_ROOT CACHE_DIR   (stdout: the folder; the build log on stderr
# when it fails)
set -euo pipefail
source_root=$1 cache_dir=$2
mkdir -p "$cache_dir"
exec 9>"$cache_dir/lock"
flock -w 900 9  # one build at a time; the second caller reuses the first one's package

list=$(mktemp) && trap 'rm -f "$list"' EXIT
git -C "$source_root" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' file; do [ -e "$source_root/$file" ] && printf '%s\0' "$file"; done |
    sort -z > "$list"
key=$(tar -C "$source_root" --null -T "$list" --sort=name --mtime=@0 --owner=0 --group=0 \
        --numeric-owner -cf - | sha256sum | cut -c1-16)
out=$cache_dir/pkg-$key
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi

rm -rf "$out" "$cache_dir"/pkg-*
mkdir -p "$out/passgate"
tar -C "$source_root" --null -T "$list" -cf - | tar -C "$out/passgate" -xf -
if ! (cd "$out/passgate" && DEB_BUILD_OPTIONS="nocheck parallel=2" nice -n 10 \
        dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1; then
    tail -60 "$out/build.log" >&2
    exit 1
fi

# The previous build: the same files, the version lowered (VERSION~prev sorts before VERSION).
deb=$(ls "$out"/passgate_*.deb)
mkdir -p "$out/prev" && rm -rf "$out/prev/root"
dpkg-deb -R "$deb" "$out/prev/root"
version=$(dpkg-deb -f "$deb" Version)
sed -i "s/^Version: .*/Version: $version~prev/" "$out/prev/root/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz -b "$out/prev/root" "$out/prev/" > /dev/null
rm -rf "$out/prev/root"
touch "$out/done"
echo "$out"
