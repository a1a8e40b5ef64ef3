"""Feature extraction for the fraud model, shared by train.py and peer.py.

The Rust plugin (plugins/fraud-features/src/features.rs) computes exactly the
same vector; the parity test (examples/fraud/model/parity.jsonl) checks it.

Features come from the event's fields, in this order (FEATURES). The card's
history (`secs_since_last`) is not in the raw stream: the pipeline's keyed
stage `card-history` adds it from the state weir keeps per card (history.py
does the same offline); `null` or absent (the card's first transaction seen)
counts as FIRST_SECS.

    log_amount        ln(1 + amount)
    online            channel == "online"
    foreign           country != home_country
    night             hour <= 5 (the cardholder's home time)
    log_secs_since    ln(1 + secs_since_last)   (FIRST_SECS when null)
    quick_repeat      secs_since_last < 600
    foreign_online    foreign and online
    night_online      night and online
    cat_<name>        one-hot merchant_category (12; an unknown category is all 0)
"""

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

FEATURES = [
    "log_amount",
    "online",
    "foreign",
    "night",
    "log_secs_since",
    "quick_repeat",
    "foreign_online",
    "night_online",
] + ["cat_" + c for c in CATEGORIES]

_CATEGORY_INDEX = {c: i for i, c in enumerate(CATEGORIES)}

# `secs_since_last` of a card's first transaction seen (no history): 3 days.
FIRST_SECS = 259_200.0


def features(ev):
    """The feature vector (list of float) of one parsed event (a dict).

    Raises KeyError / TypeError / ValueError for a missing or mistyped field.
    """
    amount = float(ev["amount"])
    online = 1.0 if ev["channel"] == "online" else 0.0
    foreign = 1.0 if ev["country"] != ev["home_country"] else 0.0
    night = 1.0 if int(ev["hour"]) <= 5 else 0.0
    secs = ev.get("secs_since_last")
    secs = FIRST_SECS if secs is None else float(secs)
    if amount < 0 or secs < 0:
        raise ValueError("negative amount or secs_since_last")
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
