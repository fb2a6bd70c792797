#!/usr/bin/env python3
"""Writes passgate.toml(5)'s scdoc source: the template with its @KEYS@ line replaced by every key
table of config/README.md (the tables after a `<!-- keys: PATH -->` line), one entry per row.

config/README.md is the one source of the keys: the manual page is generated from it at build
time, so a key documented there is in the manual page; tests/package/package_test.sh checks the
shipped page against config/README.md (and the [docs] integration test checks config/README.md
against the config reader).

Usage: config_man.py README TEMPLATE OUTPUT
"""
import re
import sys

MARKER = re.compile(r"^<!-- keys: ([a-z_.]+) -->\s*$")
HEADING = re.compile(r"^##+ (.*)$")


def cells(row):
    """The cells of a markdown table row; a `|` inside a code span does not split."""
    out, current, in_code = [], "", False
    for char in row.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            out.append(current.strip())
            current = ""
        else:
            current += char
    out.append(current.strip())
    return out


def escape(text):
    # scdoc: backslash escapes, * is bold, _ is underline.
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


def inline(markdown):
    """Markdown inline text to scdoc: code spans as plain text, **x** bold, links as their text."""
    markdown = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    out = []
    for index, part in enumerate(re.split(r"(`[^`]*`)", markdown)):
        if index % 2 == 1:
            out.append(escape(part[1:-1]))
            continue
        pieces = re.split(r"\*\*", part)
        for piece_index, piece in enumerate(pieces):
            if piece_index % 2 == 1:
                out.append("*" + escape(piece) + "*")
            else:
                out.append(escape(piece))
    return "".join(out)


def key_sections(readme_lines):
    sections, heading, index = [], "", 0
    while index < len(readme_lines):
        line = readme_lines[index]
        match = HEADING.match(line)
        if match:
            heading = match.group(1).replace("`", "").strip()
        match = MARKER.match(line)
        if match:
            path = match.group(1)
            title = heading if "." not in path and path in heading else path
            rows = []
            index += 1
            # The header row and the separator, then the rows up to the first line that is not one.
            while index < len(readme_lines) and readme_lines[index].startswith("|"):
                rows.append(cells(readme_lines[index]))
                index += 1
            if len(rows) < 2 or rows[0][0] != "Key":
                sys.exit(f"config_man.py: the table after <!-- keys: {path} --> has no Key column")
            sections.append((path, title, rows[2:]))
            continue
        index += 1
    return sections


def render(sections):
    out = []
    for path, title, rows in sections:
        out.append(f"## {escape(title)}")
        out.append("")
        for row in rows:
            if len(row) != 4:
                sys.exit(f"config_man.py: {path}: a row without 4 cells: {row}")
            key, kind, default, meaning = row
            name = key.strip("`")
            head = f"*{escape(name)}* ({inline(kind)}"
            head += f"; default: {inline(default)})" if default else ")"
            out.append(head)
            out.append("\t" + inline(meaning))
            out.append("")
    return "\n".join(out)


def main():
    readme_path, template_path, output_path = sys.argv[1:4]
    with open(readme_path, encoding="utf-8") as readme:
        sections = key_sections(readme.read().splitlines())
    with open(template_path, encoding="utf-8") as template:
        text = template.read()
    if "@KEYS@\n" not in text:
        sys.exit("config_man.py: the template has no @KEYS@ line")
    with open(output_path, "w", encoding="utf-8") as output:
        output.write(text.replace("@KEYS@\n", render(sections) + "\n"))


if __name__ == "__main__":
    main()
