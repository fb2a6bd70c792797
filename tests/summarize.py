#!/usr/bin/env python3
"""Counts test results from the JUnit reports of each build directory.

A Catch2 test case (or leaf section) is one result. A test binary that ended badly without
writing a report (crash, sanitizer abort, timeout) counts as one failure of its own. Prints the
first lines of each failure's report (so the tail of a CI log says why, not only what), the
failures, one line per build, and last a line "N passed, N failed"; exits 1 if anything failed.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


DETAIL_LINES = 25     # per failed case
DETAIL_CASES = 8      # per build


def failure_detail(case):
    """The assertion, its file:line and its INFO/captured output, shortened."""
    lines = []
    for element in list(case.iter("failure")) + list(case.iter("error")):
        if element.get("message"):
            lines.append(f"    message: {element.get('message')}")
        lines += ["    " + line for line in (element.text or "").strip().splitlines()]
    for tag in ("system-out", "system-err"):
        for element in case.iter(tag):
            lines += ["    " + line for line in (element.text or "").strip().splitlines()[:5]]
    if len(lines) > DETAIL_LINES:
        lines = lines[:DETAIL_LINES] + [f"    ... ({len(lines) - DETAIL_LINES} more lines in the report)"]
    return lines


def count_build(build):
    passed = failed = 0
    failures = []
    details = []
    detailed_cases = 0
    reports = os.path.join(build, "test-reports")
    reported = set()
    if os.path.isdir(reports):
        for name in sorted(os.listdir(reports)):
            if not name.endswith(".xml"):
                continue
            suite = name[:-4]
            try:
                root = ET.parse(os.path.join(reports, name)).getroot()
            except ET.ParseError as error:
                failed += 1
                failures.append(f"{build}/{suite}: unreadable report ({error})")
                continue
            reported.add(suite)
            for case in root.iter("testcase"):
                label = f"{case.get('classname', '')}/{case.get('name', '')}"
                if case.find("failure") is not None or case.find("error") is not None:
                    failed += 1
                    failures.append(f"{build}/{suite}: FAILED {label}")
                    if detailed_cases < DETAIL_CASES:
                        detailed_cases += 1
                        details += [f"{build}/{suite}: FAILED {label}"] + failure_detail(case)
                else:
                    passed += 1
    log = os.path.join(build, "meson-logs", "testlog.json")
    if os.path.exists(log):
        with open(log) as lines:
            for line in lines:
                entry = json.loads(line)
                # meson names a test "PROJECT:SUITE / NAME"; its report is NAME.xml.
                name = entry.get("name", "").split(" / ")[-1]
                result = entry.get("result", "")
                if result in ("OK", "SKIP", "EXPECTEDFAIL"):
                    continue
                # A binary that failed must show at least one failure in its report.
                suite_failures = [f for f in failures if f.startswith(f"{build}/{name}:")]
                if name not in reported or not suite_failures:
                    failed += 1
                    failures.append(f"{build}/{name}: test binary ended with {result} "
                                    f"(exit {entry.get('returncode')}) beyond its reported cases")
    elif not reported:
        failed += 1
        failures.append(f"{build}: no test results at all (build or test run failed)")
    return passed, failed, failures, details


def main(builds):
    total_passed = total_failed = 0
    results = [(build,) + count_build(build) for build in builds]
    for build, _, _, _, details in results:
        for line in details:
            print(line)
    for build, passed, failed, failures, _ in results:
        for failure in failures:
            print(failure)
        print(f"{build}: {passed} passed, {failed} failed")
        total_passed += passed
        total_failed += failed
    print(f"{total_passed} passed, {total_failed} failed")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build"]))
