#!/usr/bin/env python3
"""The one timing method every implementation is measured with.

    measure.py run --name NAME --variant V --out PATH --lines N --results FILE
                   [--check EXPECTED] [--log FILE] [--timeout S] -- CMD ARGS...
    measure.py table FILE

`run` starts CMD and tails PATH (a file, or a directory whose files, in
subfolders and hidden ones too, together hold the output; files are followed
by inode, so a rename does not count a line twice) every POLL seconds until
CMD exits. It records:
- time to first output: from starting CMD to the first complete line;
- events/s: N / (time of the last line - time of the first line), so
  start-up (JVM, imports, plugin compilation) is left out for everyone;
- peak RSS: the ru_maxrss of CMD's process (and the children it waited for),
  as `/usr/bin/time -v` reports it;
- CPU seconds (user + sys) of CMD over the whole run, start-up included: on a
  machine shared with other work it moves far less than the wall-clock rate.
With --check, it then runs `check.py EXPECTED PATH` (not timed) and records
whether the rows agree. It appends one JSON object to FILE and fails if CMD
fails, the output does not hold exactly N lines or the check fails. `table`
prints FILE as a Markdown table, each implementation's best run per variant,
with ratios against the best Flink run and the best Python run of the same
variant (the other columns come from the same best run; "rows agree" is NO
if any round differed).
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time

POLL = 0.005
# Below this first-to-last time the poll interval dominates: the figure is flagged.
RESOLVED_S = 0.2


class Tail:
    """Counts complete lines appended to a file or to the files of a directory."""

    def __init__(self, path):
        self.path = path
        self.files = {}  # (dev, ino) -> open file
        self.lines = 0

    def _discover(self):
        if os.path.isdir(self.path):
            names = [os.path.join(d, n) for d, _, ns in os.walk(self.path) for n in ns]
        elif os.path.exists(self.path):
            names = [self.path]
        else:
            names = []
        for name in names:
            try:
                st = os.stat(name)
                if not os.path.isfile(name) or (st.st_dev, st.st_ino) in self.files:
                    continue
                self.files[(st.st_dev, st.st_ino)] = open(name, "rb")
            except FileNotFoundError:
                continue  # renamed or removed between listdir and open: seen next round

    def poll(self):
        self._discover()
        for f in self.files.values():
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                self.lines += chunk.count(b"\n")
        return self.lines

    def close(self):
        for f in self.files.values():
            f.close()


def run(a):
    if not a.cmd:
        sys.exit("measure.py run: no command after --")
    log = open(a.log, "w") if a.log else subprocess.DEVNULL
    tail = Tail(a.out)
    load_start = os.getloadavg()
    t0 = time.monotonic()
    proc = subprocess.Popen(a.cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    first = last = None
    status = rusage = None
    seen = 0
    while True:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        now = time.monotonic()
        n = tail.poll()
        if n > seen:
            if first is None:
                first = now
            if n >= a.lines and last is None:
                last = now
            seen = n
        if pid:
            status, rusage = st, ru
            break
        if now - t0 > a.timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            sys.exit(f"measure.py: {a.name} ({a.variant}) timed out after {a.timeout:.0f} s, {seen} lines")
        time.sleep(POLL)
    end = time.monotonic()
    tail.close()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    where = f" (log: {a.log})" if a.log else ""
    if code != 0:
        sys.exit(f"measure.py: {a.name} ({a.variant}) exited with {code}{where}")
    if seen != a.lines:
        sys.exit(f"measure.py: {a.name} ({a.variant}) wrote {seen} lines, expected {a.lines}{where}")
    tailer_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    agrees = "reference"
    if a.check:
        check = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check.py")
        agrees = "yes" if subprocess.run([sys.executable, check, a.check, a.out]).returncode == 0 else "NO"
    result = {
        "name": a.name,
        "variant": a.variant,
        "lines": seen,
        "events_per_s": a.lines / max(last - first, POLL),
        "resolved": last - first >= RESOLVED_S,
        "first_output_s": first - t0,
        "first_to_last_s": last - first,
        "wall_s": end - t0,
        "peak_rss_mb": rusage.ru_maxrss / 1024.0,
        "cpu_s": rusage.ru_utime + rusage.ru_stime,
        "load_start": load_start[0],
        "load_end": os.getloadavg()[0],
        "rows_agree": agrees,
        # What the tailer itself cost (user + sys), on the same two cores.
        "tailer_cpu_s": tailer_cpu,
    }
    with open(a.results, "a") as f:
        f.write(json.dumps(result) + "\n")
    print(
        f"{a.name:<18} {a.variant:<10} {result['events_per_s']:>12,.0f} ev/s{'' if result['resolved'] else '†'}  "
        f"first output {result['first_output_s']:6.2f} s  wall {result['wall_s']:6.2f} s  "
        f"peak RSS {result['peak_rss_mb']:7.0f} MB  CPU {result['cpu_s']:6.2f} s  load {load_start[0]:.2f} -> {result['load_end']:.2f}  "
        f"tailer CPU {tailer_cpu:.2f} s  rows agree: {agrees}"
    )
    if not result["resolved"]:
        print(f"measure.py: † first to last line took < {RESOLVED_S} s: too short to measure; use a larger N")
    if agrees == "NO":
        sys.exit(f"measure.py: {a.name} ({a.variant}): output differs from {a.check}")


def table(a):
    runs = [json.loads(line) for line in open(a.results) if line.strip()]
    best, rounds, agree = {}, {}, {}
    for r in runs:
        key = (r["variant"], r["name"])
        rounds[key] = rounds.get(key, 0) + 1
        if agree.get(key) != "NO":
            agree[key] = r["rows_agree"]  # one differing round marks the row
        if key not in best or r["events_per_s"] > best[key]["events_per_s"]:
            best[key] = r
    rows = list(best.values())
    print(
        "| variant | implementation | events/s (best of rounds) | vs Flink best | vs Python | first output "
        "| peak RSS | CPU s | rows agree | load start → end |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        group = [r for r in rows if r["variant"] == variant]
        flink = max((r["events_per_s"] for r in group if r["name"].startswith("flink")), default=None)
        python = next((r["events_per_s"] for r in group if r["name"] == "python"), None)
        for r in group:
            eps = r["events_per_s"]
            vs_f = f"{eps / flink:.2f}×" if flink else "—"
            vs_p = f"{eps / python:.2f}×" if python else "—"
            n = rounds[(variant, r["name"])]
            flag = "" if r.get("resolved", True) else "†"
            print(
                f"| {variant} | {r['name']} | {eps:,.0f}{flag} ({n}) | {vs_f} | {vs_p} | {r['first_output_s']:.2f} s "
                f"| {r['peak_rss_mb']:,.0f} MB | {r.get('cpu_s', float('nan')):.1f} | {agree[(variant, r['name'])]} | {r['load_start']:.2f} → {r['load_end']:.2f} |"
            )
    if any(not r.get("resolved", True) for r in rows):
        print(f"\n† first to last line took < {RESOLVED_S} s: not a measurement; use a larger N")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--name", required=True)
    r.add_argument("--variant", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--lines", type=int, required=True)
    r.add_argument("--results", required=True)
    r.add_argument("--check")
    r.add_argument("--log")
    r.add_argument("--timeout", type=float, default=1800)
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    t = sub.add_parser("table")
    t.add_argument("results")
    a = p.parse_args()
    if a.what == "run":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        run(a)
    else:
        table(a)


if __name__ == "__main__":
    main()
