# Sourced by the shell test scripts (tests/systemd/boot_test.sh, tests/package/package_test.sh):
# each check is one JUnit test case, written to $report by write_report so that tests/summarize.py
# counts it. The script sets report=FILE and junit_suite=NAME before sourcing this.
# check NAME COMMAND...: runs COMMAND (its output kept for the report), records it, returns its
# status; record NAME STATUS OUTPUT: the same for a status found otherwise.
started_at=$(date +%s)
cases="" failures=0 count=0

elapsed() { echo $(( $(date +%s) - started_at ))s; }
xml_escape() { sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g' | tr -d '\000-\010\013\014\016-\037'; }
write_report() {
    mkdir -p "$(dirname "$report")"
    printf '<?xml version="1.0"?>\n<testsuites><testsuite name="%s" tests="%s" failures="%s">%s</testsuite></testsuites>\n' \
        "$junit_suite" "$count" "$failures" "$cases" > "$report"
}
record() {  # NAME STATUS OUTPUT
    local name
    name=$(printf '%s' "$1" | xml_escape)
    count=$((count + 1))
    if [ "$2" -eq 0 ]; then
        echo "ok   $1 ($(elapsed))"; [ -n "$3" ] && printf '%s\n' "$3" | head -8 | sed 's/^/     /'
        cases="$cases<testcase classname=\"$junit_suite\" name=\"$name\"/>"
    else
        failures=$((failures + 1))
        # The end of the output: where a long one says what went wrong.
        echo "FAIL $1 ($(elapsed))"; printf '%s\n' "$3" | tail -60 | sed 's/^/     /'
        escaped=$(printf '%s' "$3" | tail -c 3000 | xml_escape)
        cases="$cases<testcase classname=\"$junit_suite\" name=\"$name\"><failure message=\"$escaped\"/></testcase>"
    fi
}
check() {  # NAME COMMAND...: one case
    local name=$1 output status; shift
    output=$("$@" 2>&1); status=$?
    record "$name" "$status" "$output"
    return "$status"
}
