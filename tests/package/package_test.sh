#!/bin/bash
# The Debian package (issue #20): built once by build_package.sh (dpkg-buildpackage -b), then
#   - its version is meson.build's, debian/changelog's and `passgate --version`'s;
#   - it has every file it should, the conffiles, and a -dbgsym package;
#   - passgate.toml(5) documents exactly the keys config/README.md documents;
#   - lintian: no error, no warning (overrides with reasons in debian/passgate.lintian-overrides);
#   - in a clean Debian 12 root (mmdebstrap, cached as a tarball keyed by its arguments): `apt
#     install ./passgate_*.deb` resolves the dependencies from Debian's archive, creates the
#     passgate user, enables passgate.service (not started), `passgate --check` accepts the
#     shipped config, which listens on loopback only; bash completion completes the CLI;
#   - upgrade from the previous build (VERSION~prev) with /etc/passgate/passgate.toml modified:
#     the modification is kept and dpkg asks nothing (stdin closed: a prompt would fail it);
#   - remove keeps the conffiles, purge leaves nothing but the passgate user and group (Debian
#     policy keeps users): the root's files before the install and after the purge compared.
#   - piuparts (Debian's tool for this) installs and purges it in a copy of the same root and
#     checks what it checks (files left behind, running processes, broken symlinks...). Its
#     upgrade test upgrades from the version in Debian's archive, which passgate has not: the
#     upgrade between two builds is the explicit check above.
# Writes a JUnit report (one case per check) to $1; exits non-zero on any failure.
# Usage: package_test.sh REPORT SOURCE_ROOT BUILD_DIR
set -u
report=$1 source_root=$2 build_dir=$3
cache_dir=${PASSGATE_PACKAGE_ROOT_CACHE:-$build_dir/package-cache}
mirror=${PASSGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
junit_suite=package work=""
# shellcheck source=../support/junit_checks.sh
. "$source_root/tests/support/junit_checks.sh"

require() { check "$@" || { write_report; exit 1; }; }
teardown() { case "$work" in /tmp/passgate-package.*) rm -rf "$work" ;; esac; }
trap teardown EXIT
trap 'exit 1' INT TERM

tools_present() {
    [ "$(id -u)" -eq 0 ] || { echo "needs root (mmdebstrap, systemd-nspawn, dpkg in a root)"; return 1; }
    for tool in dpkg-buildpackage dh lintian scdoc mmdebstrap systemd-nspawn piuparts git python3; do
        command -v "$tool" >/dev/null || { echo "missing $tool (see .ci/packages)"; return 1; }
    done
}
require "root and tools present (dpkg-buildpackage, debhelper, lintian, scdoc, mmdebstrap, piuparts)" tools_present

# --- the package ------------------------------------------------------------------------------

build() { out=$("$source_root/tests/package/build_package.sh" "$source_root" "$build_dir/package-build") && echo "$out"; }
require "dpkg-buildpackage -us -uc -b builds the package (or it was built for this tree)" build
out=$(build 2>/dev/null)
deb=$(ls "$out"/passgate_*.deb) dbgsym=$(ls "$out"/passgate-dbgsym_*.deb 2>/dev/null)
prev=$(ls "$out"/prev/passgate_*.deb)
work=$(mktemp -d /tmp/passgate-package.XXXXXX)
dpkg-deb -x "$deb" "$work/deb"

versions_agree() {
    meson_version=$(sed -n "s/^ *version : '\([^']*\)',*$/\1/p" "$source_root/meson.build" | head -1)
    changelog_version=$(cd "$source_root" && dpkg-parsechangelog -S Version)
    deb_version=$(dpkg-deb -f "$deb" Version)
    binary_version=$("$work/deb/usr/sbin/passgate" --version)
    echo "meson.build $meson_version, debian/changelog $changelog_version, package $deb_version, passgate --version: $binary_version"
    [ -n "$meson_version" ] && [ "$changelog_version" = "$meson_version" ] &&
        [ "$deb_version" = "$meson_version" ] &&
        printf '%s\n' "$binary_version" | grep -qw -- "$meson_version"
}
check "one version: meson.build = debian/changelog = the package = passgate --version" versions_agree

contents_complete() {
    listing=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
    missing=0
    for path in /usr/sbin/passgate /lib/systemd/system/passgate.service \
            /lib/systemd/system/passgate-activated.service /lib/systemd/system/passgate-activated.socket \
            /lib/systemd/system/passgate-activated-admin.socket /usr/lib/sysusers.d/passgate.conf \
            /usr/lib/tmpfiles.d/passgate.conf /etc/passgate/passgate.toml /etc/logrotate.d/passgate \
            /usr/share/bash-completion/completions/passgate /usr/share/man/man8/passgate.8.gz \
            /usr/share/man/man5/passgate.toml.5.gz /usr/share/doc/passgate/grafana-dashboard.json \
            /usr/share/doc/passgate/README.md /usr/share/doc/passgate/config/README.md \
            /usr/share/doc/passgate/examples/edge-node.toml /usr/share/doc/passgate/copyright; do
        printf '%s\n' "$listing" | grep -qx "$path" || { echo "missing: $path"; missing=1; }
    done
    conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
    echo "conffiles: $(echo $conffiles)"
    printf '%s\n' "$conffiles" | grep -qx /etc/passgate/passgate.toml || missing=1
    printf '%s\n' "$conffiles" | grep -qx /etc/logrotate.d/passgate || missing=1
    [ -n "$dbgsym" ] && echo "dbgsym: $(basename "$dbgsym")" || { echo "no -dbgsym package"; missing=1; }
    # The dashboard is the repository's, as a file to import.
    cmp "$work/deb/usr/share/doc/passgate/grafana-dashboard.json" "$source_root/metrics/grafana-dashboard.json" || missing=1
    [ "$missing" -eq 0 ]
}
check "contents: binary in /usr/sbin, units, sysusers/tmpfiles, conffiles, logrotate, completion, man pages, docs, -dbgsym" contents_complete

man_keys_in_sync() {
    python3 "$source_root/tests/package/man_keys.py" "$source_root/config/README.md" \
        "$work/deb/usr/share/man/man5/passgate.toml.5.gz" &&
        # Both pages render without a warning from man's own checker.
        for page in man8/passgate.8.gz man5/passgate.toml.5.gz; do
            warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$work/deb/usr/share/man/$page" 2>&1 >/dev/null)
            [ -z "$warnings" ] || { echo "$page: $warnings"; return 1; }
        done
}
check "passgate.toml(5) documents exactly config/README.md's keys; both pages render cleanly" man_keys_in_sync

lintian_clean() {
    # Errors and warnings fail; the overrides (debian/passgate.lintian-overrides) say why.
    timeout 300 lintian --fail-on error,warning --display-level '>=warning' "$deb" ${dbgsym:+"$dbgsym"}
}
check "lintian: no error, no warning" lintian_clean

# --- a clean Debian 12 root -------------------------------------------------------------------

# apt (to resolve the dependencies), systemd (the sysusers/tmpfiles the postinst runs; also what
# a package depending on it brings), bash-completion (to complete with). The apt lists are kept
# so that apt resolves passgate's dependencies from the archive without an update.
mmdebstrap_args=(--variant=apt --include=usr-is-merged,systemd,bash-completion --skip=cleanup/apt/lists
                 --dpkgopt=force-unsafe-io bookworm)
key=$(printf '%s\n' "${mmdebstrap_args[@]}" | sha256sum | cut -c1-16)
cached_root="$cache_dir/debian-root-$key.tar"
make_root_tarball() {
    [ -s "$cached_root" ] && { echo "cached: $cached_root"; return 0; }
    mkdir -p "$cache_dir" && rm -f "$cache_dir"/debian-root-*.tar.partial
    timeout 600 mmdebstrap --quiet --format=tar "${mmdebstrap_args[@]}" "$cached_root.partial" "$mirror" &&
        mv "$cached_root.partial" "$cached_root" || return 1
    find "$cache_dir" -maxdepth 1 -name 'debian-root-*.tar' ! -path "$cached_root" -delete
}
require "clean Debian 12 root built by mmdebstrap (or cached)" make_root_tarball

piuparts_passes() {
    mkdir -p "$work/piuparts-root" && tar -C "$work/piuparts-root" -xf "$cached_root" || return 1
    # -e: this root instead of a debootstrap of its own (--hard-link: copied by hard links).
    timeout 600 piuparts -e "$work/piuparts-root" --hard-link --keep-sources-list -d bookworm \
        -m "$mirror" --no-upgrade-test --tmpdir "$work" "$deb" > "$work/piuparts.log" 2>&1
    status=$?
    grep -E 'INFO: (PASS|FAIL)|ERROR|FAIL' "$work/piuparts.log" | tail -20
    [ "$status" -eq 0 ] || tail -40 "$work/piuparts.log"
    rm -rf "$work/piuparts-root"
    return "$status"
}
check "piuparts: install and purge in the clean root pass" piuparts_passes

root=$work/root
mkdir -p "$root" && tar -C "$root" -xf "$cached_root"
# Not /tmp: systemd-nspawn mounts a fresh tmpfs there.
cp "$deb" "$prev" "$root/var/tmp/"
deb_in=/var/tmp/$(basename "$deb") prev_in=/var/tmp/$(basename "$prev")
# A command in the root (its own mount namespace with /proc, /dev, /run; the host's network for
# apt), stdin closed so that any prompt fails instead of hanging, bounded in time.
in_root() {
    timeout 300 systemd-nspawn --quiet --register=no --keep-unit --resolv-conf=copy-host --timezone=off \
        -E DEBIAN_FRONTEND=noninteractive -D "$root" --pipe "$@" </dev/null
}
# The root's files (path, type, owner, mode), apart from what the tools themselves change.
snapshot() {
    (cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp -o -path ./var/tmp \
        -o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o -path ./var/log/apt \) -prune \
        -o -printf '%p %y %u %g %m\n' | grep -vE '^\./var/log/(dpkg|alternatives)\.log ' | sort)
}
snapshot > "$work/before"

install_with_apt() {
    in_root apt-get install -y -q --no-install-recommends "$prev_in" || return 1
    in_root dpkg-query -W -f='${Package} ${Version} ${Status}\n' passgate
}
check "apt-get install ./passgate_VERSION~prev.deb: dependencies resolved from Debian's archive" install_with_apt

installed_state() {
    in_root getent passwd passgate && in_root getent group passgate || return 1
    # Enabled (the postinst's deb-systemd-helper), not started (no running systemd here anyway).
    test -L "$root/etc/systemd/system/multi-user.target.wants/passgate.service" || { echo "passgate.service not enabled"; return 1; }
    for unit in passgate-activated.socket passgate-activated-admin.socket; do
        find "$root/etc/systemd/system" -name "$unit" | grep . && { echo "$unit enabled"; return 1; }
    done
    test -d "$root/etc/passgate" && ls -l "$root/usr/sbin/passgate"
}
check "installed: passgate user and group, passgate.service enabled, socket units not" installed_state

shipped_config_checks() {
    in_root runuser -u passgate -- /usr/sbin/passgate --check --config /etc/passgate/passgate.toml || return 1
    # Loopback only: every listener and the admin address on 127.0.0.1.
    addresses=$(grep -E '^address = ' "$root/etc/passgate/passgate.toml")
    printf '%s\n' "$addresses"
    ! printf '%s\n' "$addresses" | grep -vE '^address = "127\.0\.0\.1:[0-9]+"'
}
check "passgate --check accepts the shipped config (as passgate); it listens on 127.0.0.1 only" shipped_config_checks

completion_completes() {
    script='source /usr/share/bash-completion/bash_completion; source /usr/share/bash-completion/completions/passgate
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _passgate; echo "${COMPREPLY[*]}"; }
echo "1: $(complete_words passgate ro)"; echo "2: $(complete_words passgate --log-level w)"
echo "3: $(complete_words passgate upgrade --ti)"; echo "4: $(complete_words passgate route --s)"'
    output=$(in_root bash -c "$script") || return 1
    printf '%s\n' "$output"
    [ "$output" = "1: route
2: warning
3: --timeout
4: --sni" ]
}
check "bash completion: subcommands, --log-level values, each subcommand's flags" completion_completes

upgrade_keeps_conffile() {
    printf '\n# changed by the operator\n' >> "$root/etc/passgate/passgate.toml"
    in_root apt-get install -y -q --no-install-recommends "$deb_in" || return 1
    in_root dpkg-query -W -f='${Version}\n' passgate
    [ "$(in_root dpkg-query -W -f='${Version}' passgate)" = "$(dpkg-deb -f "$deb" Version)" ] &&
        tail -1 "$root/etc/passgate/passgate.toml" | grep -x '# changed by the operator' &&
        ! ls "$root"/etc/passgate/passgate.toml.dpkg-* 2>/dev/null &&
        in_root runuser -u passgate -- /usr/sbin/passgate --check --config /etc/passgate/passgate.toml >/dev/null
}
check "upgrade from the previous build: the modified conffile kept, no prompt, still valid" upgrade_keeps_conffile

remove_keeps_conffiles() {
    # What the units' LogsDirectory= makes under a running systemd (none runs here): the purge
    # must remove it.
    in_root install -d -o passgate -g passgate /var/log/passgate &&
        in_root runuser -u passgate -- sh -c 'echo line > /var/log/passgate/access.log' || return 1
    in_root apt-get remove -y -q passgate || return 1
    ! test -e "$root/usr/sbin/passgate" && test -f "$root/etc/passgate/passgate.toml" &&
        test -f "$root/var/log/passgate/access.log" &&
        in_root dpkg-query -W -f='${Status}\n' passgate | grep -x 'deinstall ok config-files'
}
check "remove: the binary gone, the conffiles and logs kept (config-files state)" remove_keeps_conffiles

purge_leaves_nothing() {
    in_root apt-get purge -y -q passgate || return 1
    # What apt brought in as dependencies is removed too, so the comparison is with the root
    # as it was.
    in_root apt-get autoremove --purge -y -q >/dev/null || return 1
    snapshot > "$work/after"
    diff "$work/before" "$work/after" && echo "no file left behind" || return 1
    # Debian policy: the system user stays after a purge.
    in_root getent passwd passgate
}
check "purge (and autoremove): no file left behind (find before/after); the passgate user stays" purge_leaves_nothing

write_report
echo "done in $(elapsed)"
[ "$failures" -eq 0 ]
