#!/bin/bash
# Boots the real unit under a real systemd: a minimal Debian root (mmdebstrap, cached as a
# tarball) booted with `systemd-nspawn --boot` on a private network, passgate's Debian package
# installed into it with dpkg (tests/package/build_package.sh builds it once per tree; the
# package suite checks the package itself), driven from the host with `nsenter ... systemctl`:
#   - dpkg -i: the postinst creates the passgate user, enables passgate.service, does not start it;
#   - `systemctl start passgate` returns once READY=1 arrived (Type=notify): active (running),
#     as the passgate user with only CAP_NET_BIND_SERVICE, under the seccomp filter, each worker
#     pinned to one CPU, the fd limit what systemd could set;
#   - curl through passgate on port 443 reaches the backend chosen by SNI (an `openssl s_server`
#     unit in the container; curl verifies that backend's own certificate);
#   - `systemctl reload` applies a new route and is counted in /metrics;
#   - binary upgrade: with a long TLS connection open through passgate, the package upgraded
#     (dpkg -i of the next build: dpkg renames the new binary over the old one and the postinst
#     sends `systemctl kill -s USR2 --kill-who=main passgate`) makes the new process
#     the MainPID while the unit stays active (running) in every sample, the new process runs the
#     new file and serves new connections and the admin socket, the long connection survives and
#     the old process exits once it ended, systemd rejected no notification, `systemctl reload`
#     reaches the new process, and `passgate upgrade --config` upgrades again;
#   - the file access log in /var/log/passgate (LogsDirectory=): `logrotate -f` with the
#     package's /etc/logrotate.d/passgate rotates it and passgate writes to a new file (SIGUSR1);
#   - `systemctl stop` ends with exit status 0; `journalctl -u passgate` has the startup line;
#   - with sched_setaffinity denied again by a drop-in, passgate still starts (the filter answers
#     EPERM, not SIGSYS) and logs that its workers run unpinned;
#   - the socket-activated way: passgate-activated.socket (port 443 by a drop-in) and
#     passgate-activated-admin.socket listen, a connection starts passgate-activated.service,
#     which serves it as passgate with no capability at all; a request to the admin socket starts
#     it too; its upgrade serves port 443 from the handed-over socket; starting passgate.service
#     stops the socket-activated units (Conflicts=).
# Writes a JUnit report (one case per check) to $1 and exits non-zero on any failure.
# Needs root, mmdebstrap, systemd-nspawn (systemd-container), nsenter and what the package build
# needs (dpkg-dev, debhelper, scdoc: .ci/packages); Debian's archive the
# first time (about 1-3 minutes), then the cached root (set PASSGATE_BOOT_ROOT_CACHE to keep it
# elsewhere; PASSGATE_DEBIAN_MIRROR to use another mirror).
# Usage: boot_test.sh REPORT BUILD_DIR CACHE_DIR SOURCE_ROOT
set -u
report=$1 build_dir=$2 cache_dir=${PASSGATE_BOOT_ROOT_CACHE:-$3} source_root=$4
mirror=${PASSGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

junit_suite=systemd-boot work="" nspawn_pid="" leader=""
# shellcheck source=../support/junit_checks.sh
. "$source_root/tests/support/junit_checks.sh"

require() {  # NAME COMMAND...: one case; the later checks need it, so stop on failure
    check "$@" || stop_here
}
stop_here() { diagnostics; write_report; exit 1; }

# --- the container ----------------------------------------------------------------------------

# Runs a command inside the booted container (every namespace of its PID 1), bounded in time.
ct() {
    timeout 60 nsenter -t "$leader" -a \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
poll() {  # TENTHS COMMAND...: runs COMMAND every 0.1 s until it succeeds, at most TENTHS times
    local tries=$1; shift
    while [ "$tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        tries=$((tries - 1)); sleep 0.1
    done
    "$@"  # the last try shows its output
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
teardown() {
    if alive "$nspawn_pid"; then
        kill -TERM "$nspawn_pid"  # nspawn asks the container's systemd to power off
        for _ in $(seq 200); do alive "$nspawn_pid" || break; sleep 0.1; done
    fi
    # Whatever is left: the container's PID 1 (killing it ends its whole PID namespace), nspawn.
    alive "$leader" && kill -KILL "$leader"
    alive "$nspawn_pid" && kill -KILL "$nspawn_pid"
    [ -n "$nspawn_pid" ] && wait "$nspawn_pid" 2>/dev/null
    for _ in $(seq 50); do alive "$leader" || break; sleep 0.1; done
    # The root is removed only once nothing runs in it.
    case "$work" in /tmp/passgate-boot.*) alive "$leader" || rm -rf "$work" ;; esac
}
trap teardown EXIT
trap 'exit 1' INT TERM

diagnostics() {
    [ -n "$leader" ] || { [ -f "$work/boot.log" ] && tail -40 "$work/boot.log"; return; }
    for unit in passgate passgate-activated; do
        echo "--- journalctl -u $unit"; ct journalctl -u "$unit" --no-pager 2>&1 | tail -40
        echo "--- systemctl status $unit"; ct systemctl --no-pager status "$unit" 2>&1 | tail -20
    done
}

# --- preconditions ----------------------------------------------------------------------------

tools_present() {
    [ "$(id -u)" -eq 0 ] || { echo "needs root (mmdebstrap, systemd-nspawn)"; return 1; }
    for tool in mmdebstrap systemd-nspawn nsenter openssl dpkg-buildpackage dh; do
        command -v "$tool" >/dev/null || { echo "missing $tool (see .ci/packages)"; return 1; }
    done
}
require "root and tools present (mmdebstrap, systemd-nspawn, nsenter)" tools_present

# --- the root ---------------------------------------------------------------------------------

# Debian 12 with systemd and the package's dependencies (what passgate links: liburing, c-ares,
# toml++, libcurl, yaml-cpp, OpenSSL; dpkg -i does not fetch them: the package suite checks apt
# resolves them), logrotate, curl and openssl for the traffic. usr-is-merged spares usrmerge (and
# perl); docs, man pages, locales are skipped.
packages=usr-is-merged,systemd,systemd-sysv,curl,openssl,logrotate,liburing2,libc-ares2,libtomlplusplus3,libcurl4,libyaml-cpp0.7,libssl3
mmdebstrap_args=(--variant=essential --include="$packages" --dpkgopt=force-unsafe-io
                 --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
                 --dpkgopt='path-exclude=/usr/share/locale/*' bookworm)
key=$(printf '%s\n' "${mmdebstrap_args[@]}" | sha256sum | cut -c1-16)
cached_root="$cache_dir/debian-root-$key.tar"

make_root_tarball() {
    [ -s "$cached_root" ] && { echo "cached: $cached_root"; return 0; }
    mkdir -p "$cache_dir" || return 1
    rm -rf "$cache_dir"/debian-root-*.tar.partial
    timeout 600 mmdebstrap --quiet --format=tar "${mmdebstrap_args[@]}" "$cached_root.partial" "$mirror" &&
        mv "$cached_root.partial" "$cached_root" || return 1
    # Roots of other package lists are stale now.
    find "$cache_dir" -maxdepth 1 -name 'debian-root-*.tar' ! -path "$cached_root" -delete
}
require "Debian root built by mmdebstrap (or cached)" make_root_tarball
root_ready_at=$(elapsed)

# The package (and its previous build, VERSION~prev: the upgrade below goes from it to this one).
package_built() {
    package_dir=$("$source_root/tests/package/build_package.sh" "$source_root" "$build_dir/package-build") &&
        echo "$package_dir"
}
require "the Debian package built (tests/package/build_package.sh; once per tree)" package_built
package_dir=$(package_built 2>/dev/null)
deb=$(ls "$package_dir"/passgate_*.deb) prev=$(ls "$package_dir"/prev/passgate_*.deb)

work=$(mktemp -d /tmp/passgate-boot.XXXXXX)
root=$work/root
unpack_root() {
    mkdir -p "$root" && tar -C "$root" -xf "$cached_root" &&
        # Not /tmp: the booted container mounts a fresh tmpfs there.
        cp "$deb" "$root/var/tmp/passgate.deb" && cp "$prev" "$root/var/tmp/passgate-prev.deb"
}
require "root unpacked, the packages copied into it" unpack_root

# Two TLS backends (openssl s_server units) with their own certificates, and passgate's config.
write_backends_and_config() {
    mkdir -p "$root/etc/backend" || return 1
    for name in a b; do
        out=$(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=$name.example.test" -addext "subjectAltName=DNS:$name.example.test" \
            -keyout "$root/etc/backend/$name.key" -out "$root/etc/backend/$name.crt" 2>&1) ||
            { printf '%s\n' "$out"; return 1; }
    done
    port=8443
    for name in a b; do
        cat > "$root/etc/systemd/system/backend-$name.service" <<EOF
[Service]
ExecStart=/usr/bin/openssl s_server -quiet -www -accept 127.0.0.1:$port -cert /etc/backend/$name.crt -key /etc/backend/$name.key
EOF
        port=$((port + 1))
    done
    write_config a
}
write_config() {  # ROUTES...: one route and service per backend name (a -> 8443, b -> 8444)
    {
        printf '[runtime]\nworkers = 2\n\n[admin]\naddress = "127.0.0.1:9901"\n\n'
        printf '[access_log]\npath = "/var/log/passgate/access.log"\n\n'
        printf '[[listener]]\nname = "tls"\naddress = "127.0.0.1:443"\n\n'
        for name in "$@"; do
            port=8443; [ "$name" = b ] && port=8444
            printf '[[route]]\nname = "%s"\nlisteners = ["tls"]\nhostnames = ["%s.example.test"]\n' "$name" "$name"
            printf 'backends = [ { service = "%s" } ]\n\n' "$name"
            printf '[[service]]\nname = "%s"\nendpoints = ["127.0.0.1:%s"]\n\n' "$name" "$port"
        done
    } > "$root$config_path.new" && chmod 0644 "$root$config_path.new" && mv "$root$config_path.new" "$root$config_path"
}
# --- boot -------------------------------------------------------------------------------------

boot() {
    systemd-nspawn --boot --register=no --keep-unit --private-network --console=read-only \
        --machine=passgate-boot -D "$root" </dev/null >"$work/boot.log" 2>&1 &
    nspawn_pid=$!
    # The container's PID 1 is nspawn's child once it runs systemd.
    for _ in $(seq 300); do
        for child in $(cat /proc/"$nspawn_pid"/task/*/children 2>/dev/null); do
            [ "$(cat /proc/"$child"/comm 2>/dev/null)" = systemd ] && leader=$child
        done
        [ -n "$leader" ] && break
        kill -0 "$nspawn_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$leader" ] || { tail -30 "$work/boot.log"; return 1; }
    # systemctl talks to the manager through its private socket, there once it has set up /run.
    poll 300 ct test -S /run/systemd/private || return 1
    # Booted: the manager reached its default target (degraded is fine: units we do not need).
    state=$(ct systemctl is-system-running --wait)
    case "$state" in running|degraded) echo "$state" ;; *) echo "state: $state"; ct systemctl --failed --no-pager; return 1 ;; esac
}
# Not through check: nspawn_pid and leader must be set in this shell, for ct and teardown.
boot > "$work/boot-check.log" 2>&1
record "the container boots systemd to its default target" $? "$(cat "$work/boot-check.log")"
[ "$failures" -eq 0 ] || stop_here
booted_at=$(elapsed)

# The package, installed as an operator does (the previous build; the upgrade to this one below):
# its postinst creates the user and /etc/passgate and enables passgate.service, not starting it.
install_package() {
    ct dpkg -i /var/tmp/passgate-prev.deb </dev/null || return 1
    ct getent passwd passgate || return 1
    enabled=$(ct systemctl is-enabled passgate.service) active=$(ct systemctl is-active passgate.service)
    sockets=$(ct systemctl is-enabled passgate-activated.socket passgate-activated-admin.socket | tr '\n' ' ')
    echo "passgate.service $enabled, $active; sockets $sockets"
    [ "$enabled" = enabled ] && [ "$active" = inactive ] && [ "$sockets" = "disabled disabled " ]
}
require "dpkg -i passgate: user created, passgate.service enabled and not started, sockets not enabled" install_package

# The unit's own paths, as the package has them.
unit=$(find "$root/lib/systemd/system" "$root/usr/lib/systemd/system" -name passgate.service 2>/dev/null | head -1)
config_path=$(sed -n 's|^ExecStart=.* --config \(/[^ ]*\)$|\1|p' "${unit:-/dev/null}")
unit_paths_known() { [ -n "$unit" ] && [ -n "$config_path" ] && echo "unit $unit, config $config_path"; }
require "installed unit found, its config path read" unit_paths_known
require "backends and passgate config written" write_backends_and_config

# The backends' units were written after boot.
prepare_service() {
    ct systemctl daemon-reload &&
        ct systemctl start backend-a backend-b &&
        poll 100 ct curl -sS --cacert /etc/backend/a.crt --resolve a.example.test:8443:127.0.0.1 -o /dev/null https://a.example.test:8443/ &&
        poll 100 ct curl -sS --cacert /etc/backend/b.crt --resolve b.example.test:8444:127.0.0.1 -o /dev/null https://b.example.test:8444/
}
require "backends answer" prepare_service

# --- start ------------------------------------------------------------------------------------

main_pid() { ct systemctl show -p MainPID --value passgate; }
start_reaches_running() {
    ct systemctl start passgate || return 1
    # Type=notify: start returns after READY=1; STATUS= comes in the same message.
    props=$(ct systemctl show -p ActiveState -p SubState -p StatusText passgate)
    printf '%s\n' "$props"
    printf '%s\n' "$props" | grep -qx ActiveState=active &&
        printf '%s\n' "$props" | grep -qx SubState=running &&
        printf '%s\n' "$props" | grep -qx StatusText=serving
}
require "systemctl start passgate: active (running) through READY=1" start_reaches_running

runs_sandboxed() {
    pid=$(main_pid); status=$(ct cat /proc/"$pid"/status) || return 1
    uid=$(ct id -u passgate) || return 1
    printf '%s\n' "$status" | grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):'
    # CAP_NET_BIND_SERVICE is bit 10: 0x400.
    printf '%s\n' "$status" | grep -qE "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" &&
        printf '%s\n' "$status" | grep -qE '^CapEff:\s+0000000000000400$' &&
        printf '%s\n' "$status" | grep -qE '^CapBnd:\s+0000000000000400$' &&
        printf '%s\n' "$status" | grep -qE '^NoNewPrivs:\s+1$' &&
        printf '%s\n' "$status" | grep -qE '^Seccomp:\s+2$'
}
check "runs as passgate with only CAP_NET_BIND_SERVICE, under a seccomp filter" runs_sandboxed

workers_pinned() {
    pid=$(main_pid)
    # Every worker pinned itself: two threads allowed on exactly one CPU each (sched_setaffinity
    # was allowed), and no "runs unpinned" warning.
    lists=$(ct sh -c "grep -h Cpus_allowed_list /proc/$pid/task/*/status") || return 1
    printf '%s\n' "$lists"
    single=$(printf '%s\n' "$lists" | grep -cE ':\s+[0-9]+$')
    [ "$single" -ge 2 ] && ! ct journalctl -u passgate --no-pager | grep -q "runs unpinned"
}
check "each worker is pinned to a CPU (sched_setaffinity allowed)" workers_pinned

fd_limit_set() {
    pid=$(main_pid)
    # LimitNOFILE=1048576, or the highest limit the container's manager may set: the container
    # has no CAP_SYS_RESOURCE, so systemd cannot raise its hard limit; the unit starts anyway.
    hard=$(ct sh -c "grep 'open files' /proc/1/limits" | awk '{print $5}')
    want=1048576; [ "$hard" -lt "$want" ] && want=$hard
    line=$(ct sh -c "grep 'open files' /proc/$pid/limits"); echo "$line (manager's hard limit $hard)"
    printf '%s\n' "$line" | awk -v want="$want" '{ exit !($4 == want && $5 == want) }'
}
check "fd limit is LimitNOFILE or the manager's highest" fd_limit_set

via_passgate() {  # NAME: curl through passgate on 443 with SNI NAME.example.test, verifying NAME's certificate
    ct curl -sS --fail --max-time 10 --cacert "/etc/backend/$1.crt" --resolve "$1.example.test:443:127.0.0.1" \
        -o /dev/null -w '%{http_code}\n' "https://$1.example.test/"
}
check "curl through passgate reaches the backend chosen by SNI" via_passgate a
not_routed_yet() { ! via_passgate b; }
check "an SNI without a route is not served before the reload" not_routed_yet

# --- reload -----------------------------------------------------------------------------------

reloads_counted() {
    ct curl -sS --max-time 5 http://127.0.0.1:9901/metrics | grep -qx 'passgate_config_reloads_total{result="success"} 1'
}
reload_applies() {
    write_config a b || return 1
    ct systemctl reload passgate || return 1
    poll 100 reloads_counted || { ct curl -sS http://127.0.0.1:9901/metrics | grep reloads; return 1; }
    poll 50 via_passgate b &&
        ct curl -sS --max-time 5 http://127.0.0.1:9901/metrics | grep '^passgate_config_reloads_total'
}
check "systemctl reload: new route served, reload counted in /metrics" reload_applies

# --- binary upgrade ---------------------------------------------------------------------------
# `apt upgrade`: with a long connection open through passgate, the package is upgraded (dpkg
# renames the new binary over the old one; the postinst sends
# `systemctl kill -s USR2 --kill-who=main passgate`). The config was changed (a conffile): kept.

show() { ct systemctl show "$@"; }
binary_path=$(sed -n 's|^ExecStart=\([^ ]*\) .*|\1|p' "$unit")
pid_alive() { ct sh -c "[ -e /proc/$1 ] && ! grep -q '^State:.*Z' /proc/$1/status"; }

# The long connection: openssl s_client through passgate to backend b, its stdin a fifo this
# shell holds open (fd 7), so it stays connected until the test sends a request on it. Backend b's
# s_server serves one connection at a time: nothing else uses b meanwhile.
open_long_connection() {
    mkfifo "$work/long.in" || return 1
    ct openssl s_client -connect 127.0.0.1:443 -servername b.example.test -CAfile /etc/backend/b.crt \
        -verify_return_error < "$work/long.in" > "$work/long.out" 2>&1 &
    long_pid=$!
    exec 7>"$work/long.in"
    poll 100 grep -q 'Verify return code: 0 (ok)' "$work/long.out" || { cat "$work/long.out"; return 1; }
    echo "connected through passgate (pid $(main_pid)) to backend b"
}
# Not through check: fd 7 and long_pid must stay in this shell.
open_long_connection > "$work/long-check.log" 2>&1
record "a long connection through passgate is open (openssl s_client to backend b)" $? "$(cat "$work/long-check.log")"

old_pid=$(main_pid)
# Samples the unit every 0.1 s from the upgrade until its MainPID changed and 1 s more.
upgrade_by_package() {
    config_before=$(sha256sum < "$root$config_path")
    ct dpkg -i /var/tmp/passgate.deb </dev/null || return 1
    ct dpkg-query -W -f='${Version}\n' passgate
    [ "$(sha256sum < "$root$config_path")" = "$config_before" ] || { echo "the config changed"; return 1; }
    : > "$work/upgrade.samples"
    changed_at=""
    for sample in $(seq 150); do
        props=$(show -p MainPID -p ActiveState -p SubState passgate | tr '\n' ' ')
        echo "$sample $props" >> "$work/upgrade.samples"
        pid=$(printf '%s' "$props" | sed -n 's/.*MainPID=\([0-9]*\).*/\1/p')
        [ -z "$changed_at" ] && [ "$pid" != "$old_pid" ] && [ "$pid" != 0 ] && changed_at=$sample
        [ -n "$changed_at" ] && [ "$sample" -ge $((changed_at + 10)) ] && break
        sleep 0.1
    done
    head -2 "$work/upgrade.samples"; echo ...; tail -2 "$work/upgrade.samples"
    [ -n "$changed_at" ] || { echo "MainPID stayed $old_pid"; return 1; }
    # Never inactive, deactivating or reloading: active (running) in every sample.
    ! grep -v 'ActiveState=active SubState=running' "$work/upgrade.samples"
}
check "package upgrade (dpkg -i, postinst's USR2): MainPID changes, the unit active (running) throughout, config kept" upgrade_by_package
new_pid=$(main_pid)

new_process_is_main() {
    echo "old $old_pid, new $new_pid"
    [ "$new_pid" != "$old_pid" ] && [ "$new_pid" != 0 ] || return 1
    status=$(ct systemctl --no-pager status passgate) || { printf '%s\n' "$status"; return 1; }
    printf '%s\n' "$status" | grep -E 'Active:|Main PID:'
    printf '%s\n' "$status" | grep -q "Main PID: $new_pid " &&
        # READY=1 from the new main process: its STATUS= is what systemd shows.
        show -p StatusText passgate | grep -E '^StatusText=serving' &&
        # The new process runs the replaced file; the old one still the file it started from.
        ct readlink "/proc/$new_pid/exe" | grep -qx "$binary_path" &&
        ct readlink "/proc/$old_pid/exe" | grep -qx "$binary_path (deleted)"
}
check "systemctl status shows the new process (from the new binary) as Main PID" new_process_is_main

new_process_serves() {
    via_passgate a || return 1
    # The admin socket moved over too: /metrics is the new process's (its own upgrade counted,
    # the connection just made counted in its fresh counters).
    metrics=$(ct curl -sS --max-time 5 http://127.0.0.1:9901/metrics) || return 1
    printf '%s\n' "$metrics" | grep -E '^passgate_upgrades_total|^passgate_worker_accepted_total'
    printf '%s\n' "$metrics" | grep -qx 'passgate_upgrades_total{result="success"} 1' &&
        pid_alive "$old_pid"  # still draining the long connection
}
check "a new connection is served by the new process; the old one drains" new_process_serves

long_connection_survives() {
    printf 'GET / HTTP/1.0\r\n\r\n' >&7
    poll 50 grep -q '^HTTP/1.0 200 ok' "$work/long.out" || { tail -5 "$work/long.out"; return 1; }
    grep '^HTTP/1.0 200 ok' "$work/long.out"
}
check "the long connection survived the upgrade (a request on it answered)" long_connection_survives
exec 7>&-
wait "$long_pid" 2>/dev/null

old_gone() { ! pid_alive "$old_pid"; }
old_process_exits() {
    # Its last connection ended: it exits and the unit goes on with the new process.
    poll 100 old_gone || { echo "old $old_pid still runs"; return 1; }
    props=$(show -p MainPID -p ActiveState -p SubState passgate | tr '\n' ' ')
    echo "$props"
    [ "$props" = "MainPID=$new_pid ActiveState=active SubState=running " ]
}
check "the old process exits after its connection ended; the unit stays active with the new one" old_process_exits

notifications_accepted() {
    # systemd took MAINPID= from the old main process and READY=1 from the new one, and the old
    # process sent nothing once it was no longer the main one (systemd would reject it).
    rejected=$(ct journalctl --no-pager -o cat -u passgate | grep -E 'reception only permitted|Failed to parse MAINPID|does not belong to service')
    ct journalctl --no-pager -o cat -u passgate | grep -E 'Supervising process' | tail -2
    [ -z "$rejected" ] || { printf '%s\n' "$rejected" | tail -5; return 1; }
}
check "journal: no notification from passgate rejected by systemd" notifications_accepted

reload_after_upgrade() {
    ct systemctl reload passgate || return 1
    # The new process's counters started at zero: its first reload is 1.
    poll 100 reloads_counted || { ct curl -sS http://127.0.0.1:9901/metrics | grep reloads; return 1; }
    poll 50 via_passgate b
}
check "systemctl reload after the upgrade: handled by the new process" reload_after_upgrade

upgrade_by_cli() {
    before=$(main_pid)
    output=$(ct "$binary_path" upgrade --config "$config_path" 2>&1); status=$?
    printf '%s\n' "$output"
    after=$(main_pid)
    echo "MainPID $before -> $after"
    [ "$status" -eq 0 ] && printf '%s\n' "$output" | grep -q "^upgraded: pid $before -> $after " &&
        [ "$after" != "$before" ] && show -p ActiveState passgate | grep -qx ActiveState=active &&
        via_passgate a
}
check "passgate upgrade --config: exit 0, MainPID is the new process, it serves" upgrade_by_cli

# --- logrotate --------------------------------------------------------------------------------
# The access log file in /var/log/passgate (the unit's LogsDirectory=), rotated by the package's
# /etc/logrotate.d/passgate; its postrotate sends SIGUSR1 and passgate opens a new file.

access_log=/var/log/passgate/access.log
logged() {  # FILE COUNT: FILE has at least COUNT lines of route "a"
    [ "$(grep -c ' route=a ' "$root$1" 2>/dev/null)" -ge "$2" ]
}
logrotate_rotates() {
    via_passgate a >/dev/null || return 1
    poll 50 logged "$access_log" 1 || { ls -l "$root/var/log/passgate"; return 1; }
    lines_before=$(wc -l < "$root$access_log")
    ct logrotate -f /etc/logrotate.d/passgate || return 1
    # delaycompress: the first rotation keeps access.log.1 as it is.
    test -s "$root$access_log.1" || { ls -l "$root/var/log/passgate"; return 1; }
    [ "$(wc -l < "$root$access_log.1")" -eq "$lines_before" ] || return 1
    # passgate reopened: the next connection's line is in a new access.log, owned by passgate.
    via_passgate a >/dev/null && poll 50 logged "$access_log" 1 || { ls -l "$root/var/log/passgate"; return 1; }
    ls -ln "$root/var/log/passgate"
    [ "$(stat -c %U "$root$access_log")" = "$(stat -c %U "$root/var/log/passgate")" ] &&
        [ "$(wc -l < "$root$access_log.1")" -eq "$lines_before" ]
}
check "logrotate -f /etc/logrotate.d/passgate: access.log rotated, passgate writes a new one (SIGUSR1)" logrotate_rotates

# --- stop -------------------------------------------------------------------------------------

stop_exits_zero() {
    ct systemctl stop passgate || return 1
    # The unit stays loaded (enabled), so the main process's exit is still shown.
    props=$(ct systemctl show -p ActiveState -p Result -p ExecMainCode -p ExecMainStatus passgate)
    printf '%s\n' "$props"
    ct journalctl --no-pager -o short-monotonic -u passgate -n 12
    # ExecMainCode=1 is CLD_EXITED (2 would be CLD_KILLED).
    printf '%s\n' "$props" | grep -qx ActiveState=inactive &&
        printf '%s\n' "$props" | grep -qx Result=success &&
        printf '%s\n' "$props" | grep -qx ExecMainCode=1 &&
        printf '%s\n' "$props" | grep -qx ExecMainStatus=0
}
check "systemctl stop passgate: exit status 0" stop_exits_zero

journal_has_startup() {
    ct journalctl -u passgate --no-pager -o cat | grep -E "started 2 workers; config $config_path; admin on 127.0.0.1:9901"
}
check "journalctl -u passgate shows the startup line" journal_has_startup

# --- a denied call is an error, not SIGSYS ----------------------------------------------------

unpinned_logged() {
    ct journalctl -u passgate --no-pager -o cat |
        grep 'worker 1 runs unpinned: could not pin it to a CPU: Operation not permitted'
}
denied_pin_is_logged() {
    # A drop-in (the root's /etc is the container's) denies the call again, after the unit's lines.
    dropin=$root/etc/systemd/system/passgate.service.d
    mkdir -p "$dropin" || return 1
    printf '[Service]\nSystemCallFilter=~sched_setaffinity\n' > "$dropin/deny-affinity.conf"
    ct systemctl daemon-reload && ct systemctl start passgate || return 1
    ct systemctl is-active passgate || return 1
    poll 50 unpinned_logged || return 1
    ct systemctl stop passgate && rm -r "$dropin" && ct systemctl daemon-reload
}
check "with sched_setaffinity denied, passgate starts and logs that workers run unpinned" denied_pin_is_logged

# --- the socket-activated way -----------------------------------------------------------------
# passgate-activated.socket (listener "tls") and passgate-activated-admin.socket ("[admin]")
# bind the ports; passgate-activated.service runs with no capability at all. The listener's
# address is set by a drop-in, as an operator does (`systemctl edit`): port 443 of this config.

activated_sockets_listen() {
    dropin=$root/etc/systemd/system/passgate-activated.socket.d
    mkdir -p "$dropin" || return 1
    printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:443\n' > "$dropin/listen.conf"
    ct systemctl daemon-reload &&
        ct systemctl start passgate-activated.socket passgate-activated-admin.socket || return 1
    # Nothing started yet: the service waits for the first connection.
    props=$(show -p ActiveState passgate-activated.service passgate-activated.socket passgate-activated-admin.socket passgate.service | tr '\n' ' ')
    echo "$props"
    [ "$props" = "ActiveState=inactive  ActiveState=active  ActiveState=active  ActiveState=inactive " ]
}
check "passgate-activated sockets listen; the service waits for a connection" activated_sockets_listen

activated_pid() { show -p MainPID --value passgate-activated.service; }
activated_running() { show -p ActiveState -p SubState passgate-activated.service | tr '\n' ' ' | grep -qx 'ActiveState=active SubState=running '; }
first_connection_starts_it() {
    via_passgate a || return 1
    # READY=1 may come a moment after the first connection was served.
    poll 50 activated_running
    props=$(show -p ActiveState -p SubState -p StatusText passgate-activated.service)
    printf '%s\n' "$props"
    printf '%s\n' "$props" | grep -qx ActiveState=active && printf '%s\n' "$props" | grep -qx SubState=running &&
        ct systemctl --no-pager status passgate-activated.service | grep 'Active:'
}
check "a connection to port 443 starts passgate-activated.service, it serves it (active running)" first_connection_starts_it

runs_with_no_capability() {
    pid=$(activated_pid); status=$(ct cat /proc/"$pid"/status) || return 1
    uid=$(ct id -u passgate) || return 1
    printf '%s\n' "$status" | grep -E '^(Uid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):'
    for field in CapInh CapPrm CapEff CapBnd CapAmb; do
        printf '%s\n' "$status" | grep -qE "^$field:\s+0000000000000000$" || return 1
    done
    printf '%s\n' "$status" | grep -qE "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" &&
        printf '%s\n' "$status" | grep -qE '^NoNewPrivs:\s+1$' &&
        printf '%s\n' "$status" | grep -qE '^Seccomp:\s+2$'
}
check "passgate-activated runs as passgate with no capability (CapEff 0, bounding set empty)" runs_with_no_capability

admin_socket_starts_it() {
    ct systemctl stop passgate-activated.service || return 1
    show -p ActiveState passgate-activated.service | grep -qx ActiveState=inactive || return 1
    # The admin socket is systemd's too: a request to it starts the service, which answers it
    # (/healthz: alive; /readyz says 503 until every worker is up).
    ct curl -sS --fail --max-time 10 http://127.0.0.1:9901/healthz || return 1
    poll 100 ct curl -sS --fail --max-time 2 http://127.0.0.1:9901/readyz &&
        show -p ActiveState passgate-activated.service | grep -qx ActiveState=active
}
check "a request to the admin socket starts it again and is answered" admin_socket_starts_it

activated_upgrade() {
    # With no capability the new process cannot bind port 443: it serves on the sockets handed over.
    before=$(activated_pid)
    ct systemctl kill -s USR2 --kill-who=main passgate-activated || return 1
    changed() { after=$(activated_pid); [ "$after" != "$before" ] && [ "$after" != 0 ]; }
    poll 150 changed || return 1
    echo "MainPID $before -> $(activated_pid)"
    show -p ActiveState passgate-activated.service | grep -qx ActiveState=active && via_passgate a
}
check "upgrade of passgate-activated: the new process serves port 443 with no capability" activated_upgrade

switch_back() {
    # Conflicts=: starting passgate.service stops the socket-activated units and frees the ports.
    ct systemctl start passgate || return 1
    props=$(show -p ActiveState passgate.service passgate-activated.service passgate-activated.socket passgate-activated-admin.socket | tr '\n' ' ')
    echo "$props"
    [ "$props" = "ActiveState=active  ActiveState=inactive  ActiveState=inactive  ActiveState=inactive " ] &&
        via_passgate a && ct systemctl stop passgate
}
check "starting passgate.service stops the socket-activated units (Conflicts=) and serves" switch_back

# --- purge ------------------------------------------------------------------------------------

purge_while_running() {
    ct systemctl start passgate && ct systemctl is-active passgate || return 1
    ct dpkg --purge passgate </dev/null || return 1
    # The prerm stopped it; the files are gone, the passgate user stays (Debian policy).
    states=$(show -p ActiveState -p LoadState passgate.service | tr '\n' ' ')
    echo "$states"
    [ "$states" = "LoadState=not-found ActiveState=inactive " ] &&
        ! test -e "$root/usr/sbin/passgate" && ! test -e "$root/etc/passgate" &&
        ! test -e "$root/var/log/passgate" && ct getent passwd passgate
}
check "dpkg --purge while running: passgate stopped, its files, config and logs gone, the user kept" purge_while_running

[ "$failures" -eq 0 ] || diagnostics
write_report
echo "root ready at $root_ready_at, booted at $booted_at, checks done at $(elapsed)"
[ "$failures" -eq 0 ]
