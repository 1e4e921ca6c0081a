#!/usr/bin/env python3
"""Prints the values table of charts/trickle/README.md from values.yaml (the
comment above each value is its meaning). After changing values.yaml:
  python3 tests/deploy/values_table.py --update
chart_test.py (case consistency) fails while the README table differs."""
import os
import re
import sys

import yaml

CHART = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "charts", "trickle")
# Values holding a whole Kubernetes object: one row, not one per field.
OPAQUE = ("resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe",
          "startupProbe", "persistence.retentionPolicy")


def table():
    text = open(os.path.join(CHART, "values.yaml")).read()
    values = yaml.safe_load(text)
    rows, stack, comment = [], [], []  # stack: (indent, key) of the enclosing maps
    for line in text.splitlines():
        if not line.strip():
            comment = []
            continue
        m = re.match(r"^\s*# ?(.*)$", line)
        if m:
            comment.append(m.group(1))
            continue
        m = re.match(r"^(\s*)([A-Za-z]\w*):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        value = values
        for k in path.split("."):
            value = value[k]
        inside_opaque = any(path.startswith(p + ".") for p in OPAQUE)
        leaf = not isinstance(value, dict) or value == {} or path in OPAQUE
        if leaf and not inside_opaque:
            default = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
            default = default[:-3].strip() if default.endswith("...") else default
            if len(default) > 50:
                default = "see values.yaml"
            rows.append("| `%s` | `%s` | %s |" % (path, default, " ".join(comment).replace("|", "\\|")))
        comment = []
    return "\n".join(["| value | default | meaning |", "|---|---|---|"] + rows) + "\n"


def update_readme():
    path = os.path.join(CHART, "README.md")
    text = open(path).read()
    start = text.index("| value | default | meaning |")
    end = text.index("\n\n", start) + 1
    open(path, "w").write(text[:start] + table() + text[end:])


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update_readme()
    else:
        sys.stdout.write(table())
