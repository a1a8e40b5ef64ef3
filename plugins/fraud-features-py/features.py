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


_NUMBERS = (int, float)  # exact types: json never makes subclasses, and bool is not one
_ZEROS = [0.0] * len(CATEGORIES)
_log1p = math.log1p


def features(ev):
    """The feature vector (list of float) of one parsed event (a dict).

    Raises ValueError with the reason for a missing or mistyped field."""
    if not isinstance(ev, dict):
        raise ValueError("not a card transaction: not a JSON object")
    try:
        # In the order the checks name them: the first missing field is named.
        amount = ev["amount"]
        hour = ev["hour"]
        channel = ev["channel"]
        country = ev["country"]
        home = ev["home_country"]
        category = ev["merchant_category"]
    except KeyError as e:
        raise ValueError(f"not a card transaction: missing field `{e.args[0]}`") from None
    if not (type(channel) is str and type(country) is str and type(home) is str and type(category) is str):
        for name in _STRINGS:
            if not isinstance(ev[name], str):
                raise ValueError(f"not a card transaction: `{name}` is not a string")
    secs = ev.get("secs_since_last")
    if secs is None:
        secs = FIRST_SECS
    if type(amount) not in _NUMBERS:
        raise ValueError("not a card transaction: `amount` is not a number")
    if type(secs) not in _NUMBERS:
        raise ValueError("not a card transaction: `secs_since_last` is not a number")
    if type(hour) is not int:
        raise ValueError("not a card transaction: `hour` is not an integer")
    if amount < 0 or secs < 0:
        raise ValueError("negative amount or secs_since_last")
    online = 1.0 if channel == "online" else 0.0
    foreign = 1.0 if country != home else 0.0
    night = 1.0 if hour <= 5 else 0.0
    row = [
        _log1p(amount),
        online,
        foreign,
        night,
        _log1p(secs),
        1.0 if secs < 600 else 0.0,
        foreign * online,
        night * online,
    ] + _ZEROS
    cat = _CATEGORY_INDEX.get(category)
    if cat is not None:
        row[8 + cat] = 1.0
    return row
