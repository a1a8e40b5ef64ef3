"""A card's history, computed offline exactly as the `card-history` plugin
(plugins/card-history) computes it from the state weir keeps per card.

For each transaction, in input order, per `card_id`:

    secs_since_last   whole seconds since the card's previous transaction
                      (None for the first one seen)
    txns_1h           the card's transactions with ts in (ts - 1 h, ts], this one included
    amount_1h         their amounts' sum, rounded to cents

train.py and peer.py use it; the plugin's parity test checks the two agree on
examples/fraud/model/history-parity.jsonl.
"""

from collections import deque

WINDOW_MS = 3_600_000


class History:
    """The per-card state: the previous ts and the last hour's (ts, cents)."""

    def __init__(self):
        self._last = {}
        self._recent = {}

    def enrich(self, ev):
        """Adds the history fields to `ev` (a dict) in place and returns it."""
        card, ts = ev["card_id"], int(ev["ts"])
        amount = float(ev["amount"])
        if amount < 0:
            raise ValueError("negative amount")
        prev = self._last.get(card)
        self._last[card] = ts if prev is None else max(prev, ts)
        recent = self._recent.get(card)
        if recent is None:
            recent = self._recent[card] = deque()
        while recent and recent[0][0] <= ts - WINDOW_MS:
            recent.popleft()
        recent.append((ts, round_half_away(amount * 100)))
        ev["secs_since_last"] = None if prev is None else max(ts - prev, 0) // 1000
        ev["txns_1h"] = len(recent)
        ev["amount_1h"] = sum(c for _, c in recent) / 100
        return ev


def round_half_away(x):
    """Rounds half away from zero, as Rust's f64::round (Python's round() rounds half to even)."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)
