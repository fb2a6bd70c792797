#!/bin/sh
# Checks the systemd files with systemd's own tools:
#   1. the unit, with its paths pointed at this build, passes `systemd-analyze verify`;
#   2. the sysusers.d snippet creates the passgate user in a scratch root;
#   3. the tmpfiles.d snippet creates /etc/passgate in a scratch root.
# tests/systemd/boot_test.sh (suite systemd-boot) runs the unit under a real systemd.
# Writes a JUnit report (one case per check) to $1 and exits non-zero on any failure.
# Usage: verify_units.sh REPORT UNIT_IN SYSUSERS TMPFILES PASSGATE_BINARY
set -u
report=$1 unit_in=$2 sysusers=$3 tmpfiles=$4 binary=$5
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

mkdir -p "$scratch/bin" "$scratch/etc/passgate"
cp "$binary" "$scratch/bin/passgate"
sed "s|@BINDIR@|$scratch/bin|g; s|@SYSCONFDIR@|$scratch/etc|g" "$unit_in" > "$scratch/passgate.service"

verify_unit() {
    out=$(systemd-analyze verify "$scratch/passgate.service" 2>&1)
    status=$?
    # verify exits 0 with warnings too: any line about our unit is a failure.
    if [ $status -ne 0 ] || printf '%s' "$out" | grep -q "passgate.service"; then
        printf '%s\n' "$out"; return 1
    fi
}
unit_has() { grep -q "^$1" "$scratch/passgate.service" || { echo "missing: $1"; return 1; }; }
syscalls_allow_io_uring() {
    # The filter must name the io_uring calls (they are not in @system-service on systemd 252).
    for call in io_uring_setup io_uring_enter io_uring_register; do
        grep -q "^SystemCallFilter=.*\b$call\b" "$scratch/passgate.service" || { echo "no $call"; return 1; }
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

check "unit passes systemd-analyze verify" verify_unit
reload_sends_sighup() {
    # The shell builtin, not /bin/kill (procps, absent from minimal systems).
    unit_has "Type=notify" && unit_has "ExecReload=/bin/sh -c 'kill -HUP \"\$MAINPID\"'"
}
check "unit is Type=notify with ExecReload sending SIGHUP" reload_sends_sighup
for line in "User=passgate" "AmbientCapabilities=CAP_NET_BIND_SERVICE" \
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" "NoNewPrivileges=yes" \
            "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "RestrictAddressFamilies=" \
            "LimitNOFILE="; do
    check "unit sets $line" unit_has "$line"
done
check "SystemCallFilter allows io_uring" syscalls_allow_io_uring
check "SystemCallFilter gives back sched_setaffinity and setrlimit after denying @resources" \
    grep -qx "SystemCallFilter=sched_setaffinity setrlimit" "$scratch/passgate.service"
check "a denied system call fails with EPERM (no SIGSYS)" unit_has "SystemCallErrorNumber=EPERM"
check "sysusers.d creates the passgate user" sysusers_creates_user
check "tmpfiles.d creates /etc/passgate" tmpfiles_creates_dir

printf '<?xml version="1.0"?>\n<testsuites><testsuite name="systemd" tests="%s" failures="%s">%s</testsuite></testsuites>\n' \
    "$count" "$failures" "$cases" > "$report"
[ "$failures" -eq 0 ]
