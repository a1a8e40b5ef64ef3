"""Native unit tests: `PYTHONPATH=../../plugin-sdk/python python -m unittest`
(run by scripts/test.sh)."""

import unittest

import weir
import weir.testing

import json_filter  # noqa: F401  (registers the plugin function)


def run(params, *values):
    return weir.testing.run([v if isinstance(v, bytes) else v.encode() for v in values], params)


class JsonFilterTest(unittest.TestCase):
    def test_the_readme_example(self):
        p = {
            "where": [
                {"field": "amount", "op": "gt", "value": 100},
                {"field": "country", "op": "in", "value": ["FR", "DE"]},
            ],
            "keep": ["txn_id", "amount"],
        }
        out = run(
            p,
            '{"txn_id": "t1", "amount": 250.5, "country": "FR", "card": "x"}',
            '{"txn_id": "t2", "amount": 50, "country": "FR"}',
            '{"txn_id": "t3", "amount": 500, "country": "US"}',
        )
        self.assertEqual(out.values(), [b'{"txn_id":"t1","amount":250.5}'])
        self.assertEqual(out.errors, [])

    def test_routing_mode_keeps_everything(self):
        p = {"where": [{"field": "amount", "op": "gte", "value": 1000}], "route": "alerts"}
        out = run(p, '{"amount": 1000}', '{"amount": 5}')
        self.assertEqual(out.routes(), ["alerts", None])
        self.assertEqual(out.values(), [b'{"amount": 5}'], "unchanged, byte for byte")

    def test_operators(self):
        ev = {"n": 10, "f": 2.5, "s": "abc", "z": None, "tags": ["x", 1], "a": {"b": {"c": 7}},
              "items": [{"sku": "k1"}, {"sku": "k2"}], "t": True}
        cases = [
            ({"field": "n", "op": "eq", "value": 10.0}, True),
            ({"field": "n", "op": "eq", "value": "10"}, False),
            ({"field": "t", "op": "eq", "value": 1}, False),
            ({"field": "z", "op": "eq", "value": None}, True),
            ({"field": "missing", "op": "eq", "value": None}, False),
            ({"field": "missing", "op": "ne", "value": 1}, True),
            ({"field": "n", "op": "gt", "value": 9.5}, True),
            ({"field": "s", "op": "gt", "value": "abb"}, True),
            ({"field": "s", "op": "gt", "value": 1}, False),
            ({"field": "n", "op": "in", "value": [1, 10]}, True),
            ({"field": "missing", "op": "exists", "value": False}, True),
            ({"field": "z", "op": "exists"}, True),
            ({"field": "s", "op": "contains", "value": "bc"}, True),
            ({"field": "tags", "op": "contains", "value": 1.0}, True),
            ({"field": "a.b.c", "op": "eq", "value": 7}, True),
            ({"field": "items.1.sku", "op": "eq", "value": "k2"}, True),
            ({"field": "items.2.sku", "op": "exists"}, False),
            ({"field": "s.0", "op": "exists"}, False),
        ]
        for condition, expected in cases:
            p = json_filter.Params(where=[condition])
            self.assertEqual(p.matches(ev), expected, condition)

    def test_big_integers_compare_exactly(self):
        p = json_filter.Params(where=[{"field": "id", "op": "gt", "value": 9007199254740992}])
        self.assertTrue(p.matches({"id": 9007199254740993}))

    def test_projection_nests_and_orders(self):
        p = {"keep": ["z", "a.b", "a.c.d", "missing", "s.x", "q", "q.r"]}
        out = run(p, '{"a": {"b": 1, "c": {"d": 2, "e": 3}, "f": 4}, "z": [1], "s": "str", "q": {"r": 1, "t": 2}}')
        self.assertEqual(out.values(), [b'{"z":[1],"a":{"b":1,"c":{"d":2}},"q":{"r":1,"t":2}}'])

    def test_bad_events_are_dead_letters(self):
        out = run({"keep": ["a"]}, "nope", "[1]")
        self.assertEqual(out.errors[0][0], 0)
        self.assertTrue(out.errors[0][1].startswith("event value is not JSON"), out.errors)
        self.assertEqual(out.errors[1], (1, "`keep` needs a JSON object event, got an array"))

    def test_bad_params_are_explained(self):
        cases = [
            ({"where": [{"field": "a", "op": "gt"}]}, "where[0] (field `a`): op `gt` needs a `value`"),
            ({"where": [{"field": "a", "op": "in", "value": "FR"}]}, "op `in` needs an array `value`"),
            ({"where": [{"field": "a..b", "op": "exists"}]}, "field path `a..b` has an empty segment"),
            ({"where": [{"field": "a", "op": "like", "value": 1}]}, "unknown variant `like`"),
            ({"keep": [""]}, "keep: a field path cannot be empty"),
            ({"route": ""}, "route: the output name cannot be empty"),
            ({"filter": []}, "unknown field `filter`"),
        ]
        for params, expected in cases:
            with self.assertRaises(weir.ParamsError) as e:
                run(params)
            self.assertIn(expected, str(e.exception))


if __name__ == "__main__":
    unittest.main()
