#!/usr/bin/env python3
"""Fails when a config key is documented in config/README.md and not in the shipped
passgate.toml(5), or the other way round. config/README.md: the rows of the tables after a
`<!-- keys: PATH -->` line (as tests/integration/docs_test.cpp reads them). The manual page (roff,
as installed): each `.SS` heading starts a section, each entry starts with the key in bold.
The [docs] integration test checks config/README.md against the config reader itself.
Usage: man_keys.py CONFIG_README MAN_PAGE(.gz)"""
import gzip
import re
import sys

readme_path, man_path = sys.argv[1:3]
documented = set()
path = None
for line in open(readme_path, encoding="utf-8"):
    marker = re.match(r"^<!-- keys: ([a-z_.]+) -->\s*$", line)
    if marker:
        path = marker.group(1)
        continue
    row = re.match(r"^\| `([a-z_]+)` \|", line)
    if path and row:
        documented.add(f"{path}.{row.group(1)}")
    elif not line.startswith("|"):
        path = None

opener = gzip.open if man_path.endswith(".gz") else open
in_man = set()
section = None
with opener(man_path, "rt", encoding="utf-8") as man:
    for line in man:
        heading = re.match(r"^\.SS (.*)$", line)
        if heading:
            # "[runtime]", "[[listener]]", "route.backends"
            section = heading.group(1).strip().strip('"').replace("\\", "").strip("[]")
            continue
        if line.startswith(".SH"):
            section = None
            continue
        key = re.match(r"^\\fB([a-z_]+)\\fR \(", line.replace("\\_", "_"))
        if section and key:
            in_man.add(f"{section}.{key.group(1)}")

only_readme = sorted(documented - in_man)
only_man = sorted(in_man - documented)
print(f"{len(documented)} keys in config/README.md, {len(in_man)} in {man_path}")
for key in only_readme:
    print(f"in config/README.md, not in the manual page: {key}")
for key in only_man:
    print(f"in the manual page, not in config/README.md: {key}")
sys.exit(1 if only_readme or only_man or not documented else 0)
