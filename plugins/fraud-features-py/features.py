"""The fraud model's feature vector: the computation of
examples/fraud/features.py (which trained the model), plus the field checks a
plugin needs to dead-letter a malformed event with its reason. The Rust plugin
computes the same vector; the integration tests compare the two plugins'
scores on the same events."""

import math

CATEGORIES = [
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "pharmacy",
    "entertainment",
    "subscriptions",
    "home_improvement",
    "travel",
    "electronics",
    "gift_cards",
    "online_gaming",
]

WIDTH = 8 + len(CATEGORIES)

_CATEGORY_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
_STRINGS = ("channel", "country", "home_country", "merchant_category")
# `secs_since_last` of a card's first transaction seen (null or absent: the
# stage `card-history` before this one found no history): 3 days.
FIRST_SECS = 259_200.0


def features(ev):
    """The feature vector (list of float) of one parsed event (a dict).

    Raises ValueError with the reason for a missing or mistyped field."""
    if not isinstance(ev, dict):
        raise ValueError("not a card transaction: not a JSON object")
    for name in ("amount", "hour") + _STRINGS:
        if name not in ev:
            raise ValueError(f"not a card transaction: missing field `{name}`")
    for name in _STRINGS:
        if not isinstance(ev[name], str):
            raise ValueError(f"not a card transaction: `{name}` is not a string")
    amount, secs, hour = ev["amount"], ev.get("secs_since_last"), ev["hour"]
    if secs is None:
        secs = FIRST_SECS
    for name, v in (("amount", amount), ("secs_since_last", secs)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"not a card transaction: `{name}` is not a number")
    if isinstance(hour, bool) or not isinstance(hour, int):
        raise ValueError("not a card transaction: `hour` is not an integer")
    if amount < 0 or secs < 0:
        raise ValueError("negative amount or secs_since_last")
    online = 1.0 if ev["channel"] == "online" else 0.0
    foreign = 1.0 if ev["country"] != ev["home_country"] else 0.0
    night = 1.0 if hour <= 5 else 0.0
    row = [
        math.log1p(amount),
        online,
        foreign,
        night,
        math.log1p(secs),
        1.0 if secs < 600 else 0.0,
        foreign * online,
        night * online,
    ] + [0.0] * len(CATEGORIES)
    cat = _CATEGORY_INDEX.get(ev["merchant_category"])
    if cat is not None:
        row[8 + cat] = 1.0
    return row
