#!/usr/bin/env python3
"""The per-card velocity job (README.md) as plain Python: a dict of deques.

    velocity.py IN OUT [--stats]

Reads JSON lines from IN, writes one JSON line per input line to OUT. With
--stats, prints to stderr how many rows evict window entries (the figure
gen.sh reports for each spacing variant).
"""

import json
import sys
from collections import deque

WINDOW_MS = 300_000


def main(argv):
    args = [a for a in argv[1:] if a != "--stats"]
    stats = "--stats" in argv[1:]
    if len(args) != 2:
        sys.exit("usage: velocity.py IN OUT [--stats]")
    src, dst = args
    windows = {}  # card_id -> deque of (ts, cents), oldest first
    last_ts = {}  # card_id -> ts of the card's previous transaction
    rows = evicting_rows = evicted = max_count = 0
    dumps = json.dumps
    with open(src, encoding="utf-8") as inp, open(dst, "w", encoding="utf-8") as out:
        for n, line in enumerate(inp, 1):
            try:
                ev = json.loads(line)
                txn_id, card, ts = ev["txn_id"], ev["card_id"], int(ev["ts"])
                cents = round(ev["amount"] * 100)
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"velocity.py: {src}:{n}: bad transaction: {e!r}")
            win = windows.get(card)
            if win is None:
                win = windows[card] = deque()
            prev = last_ts.get(card)
            last_ts[card] = ts
            gone = 0
            while win and win[0][0] <= ts - WINDOW_MS:
                win.popleft()
                gone += 1
            win.append((ts, cents))
            if stats:
                rows += 1
                if gone:
                    evicting_rows += 1
                    evicted += gone
                max_count = max(max_count, len(win))
            out.write(
                dumps(
                    {
                        "txn_id": txn_id,
                        "card_id": card,
                        "count_5m": len(win),
                        "sum_5m_cents": sum(c for _, c in win),
                        "gap_ms": None if prev is None else ts - prev,
                    },
                    separators=(",", ":"),
                )
            )
            out.write("\n")
    if stats:
        print(
            f"rows={rows} evicting_rows={evicting_rows} ({100.0 * evicting_rows / max(rows, 1):.1f}%) "
            f"evicted_entries={evicted} first_of_card={len(last_ts)} max_count_5m={max_count}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main(sys.argv)
