#!/usr/bin/env python3
"""Checks that every #include points down the layers (ARCHITECTURE.md, "Folders").

    check_includes.py SOURCE_ROOT REPORT.xml

Each folder of the project may include only from itself and from the folders listed for it
below; anything else (an include from a folder above, or from one that is not a sibling below)
is a failure naming the file, the line and the include. Writes a JUnit report with one case per
folder and exits non-zero on any failure. Run as the meson test `layering`.
"""
import os
import re
import sys
from xml.sax.saxutils import quoteattr

# Folder -> the project folders its files may include from (besides itself). The bottom runtime
# (reactor, config, metrics) knows nothing of the appliance; in src/, wire and observe are at the
# bottom and control at the top. wire and routing are pure: no reactor (no I/O, no threads).
ALLOWED = {
    "reactor": set(),
    "config": set(),
    "metrics": set(),
    "src/wire": {"config"},
    "src/observe": {"src/wire", "config", "metrics", "reactor"},
    "src/routing": {"src/wire", "src/observe", "config", "metrics"},
    "src/proxy": {"src/wire", "src/observe", "src/routing", "config", "metrics", "reactor"},
    "src/discovery": {"src/wire", "src/observe", "src/routing", "config", "metrics", "reactor"},
    "src/gateway": {"src/wire", "src/observe", "src/routing", "src/discovery", "config",
                    "metrics", "reactor"},
    "src/control": {"src/wire", "src/observe", "src/routing", "src/proxy", "src/discovery",
                    "src/gateway", "config", "metrics", "reactor"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(include):
    """The project folder an include path names ("src/proxy/worker.h" -> "src/proxy")."""
    parts = include.split("/")
    if len(parts) >= 3 and parts[0] == "src":
        return "src/" + parts[1]
    if len(parts) >= 2:
        return parts[0]
    return None  # a bare "name.h": not how this project includes


def check_folder(root, folder):
    failures = []
    path = os.path.join(root, folder)
    names = sorted(n for n in os.listdir(path) if n.endswith((".h", ".cpp")))
    if not names:
        failures.append(f"{folder}: no sources found (is the table above out of date?)")
    for name in names:
        with open(os.path.join(path, name), encoding="utf-8") as source:
            for number, line in enumerate(source, 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                target = folder_of(match.group(1))
                if target == folder or target in ALLOWED[folder]:
                    continue
                failures.append(f"{folder}/{name}:{number}: includes \"{match.group(1)}\", "
                                f"but {folder} may include only from "
                                f"{', '.join(sorted(ALLOWED[folder] | {folder}))}")
    return failures


def main():
    root, report = sys.argv[1], sys.argv[2]
    # A folder of src/ missing from the table is an error too: a new folder needs a place.
    unknown = [f"src/{d}" for d in sorted(os.listdir(os.path.join(root, "src")))
               if os.path.isdir(os.path.join(root, "src", d)) and f"src/{d}" not in ALLOWED]
    cases = []
    total = 0
    for folder in ALLOWED:
        failures = check_folder(root, folder)
        total += len(failures)
        for failure in failures:
            print("FAILED:", failure)
        if failures:
            message = quoteattr("\n".join(failures))
            cases.append(f'<testcase classname="layering" name="{folder}">'
                         f'<failure message={message}/></testcase>')
        else:
            cases.append(f'<testcase classname="layering" name="{folder}"/>')
    for folder in unknown:
        total += 1
        print(f"FAILED: {folder}: a folder with no place in the layering table")
        cases.append(f'<testcase classname="layering" name="{folder}">'
                     f'<failure message="not in the layering table"/></testcase>')
    failed = sum(1 for c in cases if "<failure" in c)
    with open(report, "w", encoding="utf-8") as out:
        out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="layering" '
                  f'tests="{len(cases)}" failures="{failed}" errors="0">{"".join(cases)}'
                  f'</testsuite></testsuites>\n')
    print(f"layering: {len(cases)} folders, {total} bad includes")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
