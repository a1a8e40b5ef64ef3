#!/usr/bin/env python3
"""Compare two velocity outputs row for row.

    check.py EXPECTED ACTUAL

Each side is a file of JSON lines, or a directory whose files (all of them,
in subfolders and hidden ones too: Flink's part files) together hold the
lines. Rows are parsed as JSON and matched by `txn_id`; values compare with
their JSON types (1 is not 1.0). Exits 0 when both sides hold the same rows;
otherwise prints the first few differences and exits 1.
"""

import json
import os
import sys

SHOW = 5


def files(path):
    if os.path.isdir(path):
        return sorted(os.path.join(d, n) for d, _, names in os.walk(path) for n in names)
    return [path]


def same(a, b):
    """Equal as JSON values, types included (1 is not 1.0, true is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def load(path):
    rows, dups, bad = {}, [], []
    for f in files(path):
        with open(f, encoding="utf-8") as inp:
            for n, line in enumerate(inp, 1):
                try:
                    row = json.loads(line)
                    key = row["txn_id"]
                except (ValueError, KeyError, TypeError) as e:
                    bad.append(f"{f}:{n}: {e!r}: {line[:120]!r}")
                    continue
                if key in rows:
                    dups.append(key)
                rows[key] = row
    return rows, dups, bad


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: check.py EXPECTED ACTUAL")
    (exp, exp_dups, exp_bad), (act, act_dups, act_bad) = load(argv[1]), load(argv[2])
    problems = []
    for side, dups, bad in (("expected", exp_dups, exp_bad), ("actual", act_dups, act_bad)):
        problems += [f"{side}: unparsable line {b}" for b in bad]
        problems += [f"{side}: txn_id {d} appears more than once" for d in dups]
    missing = [k for k in exp if k not in act]
    extra = [k for k in act if k not in exp]
    differ = [k for k in exp if k in act and not same(exp[k], act[k])]
    problems += [f"missing in actual: {exp[k]}" for k in missing[:SHOW]]
    problems += [f"not in expected: {act[k]}" for k in extra[:SHOW]]
    problems += [f"differs: expected {exp[k]}\n           actual   {act[k]}" for k in differ[:SHOW]]
    if problems:
        print(
            f"check.py: {argv[2]} differs from {argv[1]}: {len(missing)} missing, {len(extra)} extra, "
            f"{len(differ)} different, {len(exp_dups) + len(act_dups)} duplicated, "
            f"{len(exp_bad) + len(act_bad)} unparsable (of {len(exp)} expected rows)",
            file=sys.stderr,
        )
        for p in problems[: 3 * SHOW]:
            print("  " + p, file=sys.stderr)
        return 1
    if not exp:
        print(f"check.py: {argv[1]} has no rows", file=sys.stderr)
        return 1
    print(f"check.py: {len(act)} rows agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
