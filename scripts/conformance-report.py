#!/usr/bin/env python3
"""Turns a Tempest result list written by scripts/tempest-identity.sh ($STRATA_TEMPEST_OUT:
lines "success|failure|skip <test id>") into the Markdown tables of docs/conformance.md; feed it
one service's lines (grep ' tempest.api.image.' for the image table).

usage: conformance-report.py RESULTS [REASONS]
REASONS: lines "<test id prefix> | <reason>" explaining skips and failures.
"""
import re
import sys

results, reasons = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
why = []
if reasons:
    for line in open(reasons):
        line = line.strip()
        if line and not line.startswith("#") and "|" in line:
            prefix, reason = (x.strip() for x in line.split("|", 1))
            why.append((prefix, reason))

rows, counts = [], {"success": 0, "failure": 0, "skip": 0}
for line in open(results):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    status, test = line.split(" ", 1)
    status = {"fail": "failure"}.get(status, status)
    counts[status] = counts.get(status, 0) + 1
    name = re.sub(r"tempest\.api\.[a-z_]+\.", "", test.split("[")[0], count=1)
    reason = next((r for p, r in why if p in test), "")
    rows.append((name, status, reason))

print(f"**{counts['success']} passed, {counts['failure']} failed, {counts['skip']} skipped** "
      "(a skipped class counts once here)\n")
print("| test | result | reason |")
print("|---|---|---|")
for name, status, reason in sorted(rows):
    print(f"| `{name}` | {status} | {reason} |")
