#!/bin/sh
# Checks the systemd files with systemd's own tools:
#   1. the units (passgate.service, and the socket-activated way: passgate-activated.service with
#      passgate-activated.socket and passgate-activated-admin.socket), with their paths pointed at
#      this build, pass `systemd-analyze verify`;
#   2. their settings: both services Type=notify with NotifyAccess=main (the binary upgrade's
#      MAINPID= hand-over), the capability of each way, and the two services the same but for
#      the lines of their way (the hardening cannot drift apart);
#   3. the socket units match the shipped example config (a socket per listener, named after it,
#      bound to its address; the admin socket named "[admin]" on [admin] address);
#   4. the sysusers.d snippet creates the passgate user in a scratch root;
#   5. the tmpfiles.d snippet creates /etc/passgate in a scratch root.
# tests/systemd/boot_test.sh (suite systemd-boot) runs the units under a real systemd.
# Writes a JUnit report (one case per check) to $1 and exits non-zero on any failure.
# Usage: verify_units.sh REPORT SYSTEMD_DIR EXAMPLE_CONFIG PASSGATE_BINARY
set -u
report=$1 systemd_dir=$2 example_config=$3 binary=$4
sysusers=$systemd_dir/passgate.sysusers tmpfiles=$systemd_dir/passgate.tmpfiles
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cases="" failures=0 count=0

check() {  # NAME COMMAND...
    name=$1; shift
    count=$((count + 1))
    if output=$("$@" 2>&1); then
        cases="$cases<testcase classname=\"systemd\" name=\"$name\"/>"
    else
        failures=$((failures + 1))
        echo "FAILED: $name"; echo "$output"
        escaped=$(printf '%s' "$output" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/"/\&quot;/g' | head -c 2000)
        cases="$cases<testcase classname=\"systemd\" name=\"$name\"><failure message=\"$escaped\"/></testcase>"
    fi
}

mkdir -p "$scratch/bin" "$scratch/etc/passgate" "$scratch/units"
cp "$binary" "$scratch/bin/passgate"
units=$scratch/units
for service in passgate passgate-activated; do
    sed "s|@BINDIR@|$scratch/bin|g; s|@SYSCONFDIR@|$scratch/etc|g" "$systemd_dir/$service.service.in" > "$units/$service.service"
done
cp "$systemd_dir/passgate-activated.socket" "$systemd_dir/passgate-activated-admin.socket" "$units/"

verify_unit() {  # UNIT: verified with the other units beside it (Sockets=, Service= name them)
    out=$(systemd-analyze verify "$units/$1" 2>&1)
    status=$?
    # verify exits 0 with warnings too: any line about one of our units is a failure.
    if [ $status -ne 0 ] || printf '%s' "$out" | grep -q "passgate"; then
        printf '%s\n' "$out"; return 1
    fi
}
unit_has() {  # UNIT LINE: a line of the unit starts with LINE
    grep -q "^$2" "$units/$1" || { echo "$1 misses: $2"; return 1; }
}
unit_lacks() {  # UNIT LINE
    ! grep "^$2" "$units/$1" || { echo "$1 must not have: $2"; return 1; }
}
unit_line_is() {  # UNIT KEY VALUE: the only KEY= line of the unit is KEY=VALUE
    lines=$(grep "^$2=" "$units/$1")
    [ "$lines" = "$2=$3" ] || { echo "$1: want exactly '$2=$3', found:"; printf '%s\n' "$lines"; return 1; }
}
syscalls_allow_io_uring() {  # UNIT
    # The filter must name the io_uring calls (they are not in @system-service on systemd 252).
    for call in io_uring_setup io_uring_enter io_uring_register; do
        grep -q "^SystemCallFilter=.*\b$call\b" "$units/$1" || { echo "$1: no $call"; return 1; }
    done
}
sysusers_creates_user() {
    mkdir -p "$scratch/root/etc"
    systemd-sysusers --root="$scratch/root" "$sysusers" &&
        grep -q "^passgate:" "$scratch/root/etc/passwd" &&
        grep -q "^passgate:" "$scratch/root/etc/group"
}
tmpfiles_creates_dir() {
    mkdir -p "$scratch/root2"
    systemd-tmpfiles --root="$scratch/root2" --create "$tmpfiles" && [ -d "$scratch/root2/etc/passgate" ]
}

for unit in passgate.service passgate-activated.service passgate-activated.socket passgate-activated-admin.socket; do
    check "$unit passes systemd-analyze verify" verify_unit "$unit"
done

# --- both services ------------------------------------------------------------------------------
reload_sends_sighup() {  # UNIT
    # The shell builtin, not /bin/kill (procps, absent from minimal systems).
    unit_has "$1" "Type=notify" && unit_has "$1" "ExecReload=/bin/sh -c 'kill -HUP \"\$MAINPID\"'"
}
for service in passgate.service passgate-activated.service; do
    check "$service is Type=notify with ExecReload sending SIGHUP" reload_sends_sighup "$service"
    # The upgrade: the old main process sends MAINPID=<new>, then the new one READY=1.
    check "$service has NotifyAccess=main (MAINPID= from the old main, READY=1 from the new)" \
        unit_line_is "$service" NotifyAccess main
    # After an upgrade systemd 252 does not wait for a main process it did not start: ExecStop= does.
    check "$service: ExecStop sends SIGTERM to the main process and waits for its exit" \
        unit_line_is "$service" ExecStop "/bin/sh -c 'kill -TERM \"\$MAINPID\" 2>/dev/null || exit 0; while kill -0 \"\$MAINPID\" 2>/dev/null; do sleep 0.1; done'"
    for line in "User=passgate" "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" \
                "PrivateTmp=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "LimitNOFILE="; do
        check "$service sets $line" unit_has "$service" "$line"
    done
    check "$service: SystemCallFilter allows io_uring" syscalls_allow_io_uring "$service"
    check "$service: SystemCallFilter gives back sched_setaffinity and setrlimit after denying @resources" \
        grep -qx "SystemCallFilter=sched_setaffinity setrlimit" "$units/$service"
    check "$service: a denied system call fails with EPERM (no SIGSYS)" unit_has "$service" "SystemCallErrorNumber=EPERM"
done

# --- each way's own lines -----------------------------------------------------------------------
check "passgate.service has CAP_NET_BIND_SERVICE only" sh -c "
    grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' '$units/passgate.service' &&
    grep -qx 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' '$units/passgate.service'"
no_capability() {
    unit_lacks passgate-activated.service "AmbientCapabilities=" &&
        unit_line_is passgate-activated.service CapabilityBoundingSet ""
}
check "passgate-activated.service has no capability (empty bounding set, no ambient)" no_capability
activated_takes_sockets() {
    unit_line_is passgate-activated.service Sockets "passgate-activated.socket passgate-activated-admin.socket" &&
        unit_line_is passgate-activated.service Requires "passgate-activated.socket passgate-activated-admin.socket" &&
        unit_line_is passgate-activated.service Conflicts passgate.service &&
        unit_line_is passgate-activated.service Before passgate.service &&
        for socket in passgate-activated.socket passgate-activated-admin.socket; do
            unit_line_is "$socket" Service passgate-activated.service &&
                unit_line_is "$socket" Conflicts passgate.service &&
                unit_line_is "$socket" Before passgate.service || return 1
        done
}
check "passgate-activated.service takes both sockets; all three conflict with passgate.service and stop before it starts" activated_takes_sockets

# Everything but the lines that make each way must be the same in both services.
common_lines() {  # UNIT: its settings, without comments and without the lines of its way
    grep -v -e '^#' -e '^$' -e '^Description=' -e '^Conflicts=' -e '^Before=' -e '^Requires=' -e '^Sockets=' \
        -e '^AmbientCapabilities=' -e '^CapabilityBoundingSet=' -e '^Also=' \
        "$units/$1"
}
services_agree() {
    common_lines passgate.service > "$scratch/plain.lines" &&
        common_lines passgate-activated.service > "$scratch/activated.lines" &&
        diff "$scratch/plain.lines" "$scratch/activated.lines"
}
check "the two services differ only in the lines of their way (same hardening)" services_agree

# --- the socket units against the shipped example config -----------------------------------------
# "KIND NAME ADDRESS" per [[listener]] and for [admin] of the example (flat TOML: the keys of a
# table come after its header, one per line).
example_sockets() {
    awk '
        /^\[\[listener\]\]/ { flush(); table = "listener"; name = ""; address = ""; next }
        /^\[admin\]/        { flush(); table = "admin"; name = "[admin]"; address = "127.0.0.1:9901"; next }
        /^\[/               { flush(); table = ""; next }
        table != "" && /^name *=/    { split($0, part, "\""); name = part[2] }
        table != "" && /^address *=/ { split($0, part, "\""); address = part[2] }
        function flush() { if (table != "") print table, name, address; table = "" }
        END { flush() }
    ' "$example_config"
}
socket_for() {  # NAME ADDRESS: a socket unit named NAME with exactly that one address
    for socket in "$units"/*.socket; do
        if grep -Fqx "FileDescriptorName=$1" "$socket"; then
            unit_line_is "$(basename "$socket")" ListenStream "$2" && return 0
            return 1
        fi
    done
    echo "no socket unit has FileDescriptorName=$1"; return 1
}
sockets_match_example() {
    listed=$(example_sockets)
    printf '%s\n' "$listed"
    printf '%s\n' "$listed" | grep -q '^listener ' || { echo "no [[listener]] read from $example_config"; return 1; }
    printf '%s\n' "$listed" | while read -r kind name address; do
        socket_for "$name" "$address" || exit 1
    done
}
check "a socket unit per example listener (its name and address) and one for [admin]" sockets_match_example

check "sysusers.d creates the passgate user" sysusers_creates_user
check "tmpfiles.d creates /etc/passgate" tmpfiles_creates_dir

printf '<?xml version="1.0"?>\n<testsuites><testsuite name="systemd" tests="%s" failures="%s">%s</testsuite></testsuites>\n' \
    "$count" "$failures" "$cases" > "$report"
[ "$failures" -eq 0 ]
