"""The Python SDK, natively: the same batch code the component runs, on
batches built the way the host builds them — packed (contract 0.2.0,
`weir.testing.packed_batch_of`) and records (0.1.x, `batch_of`): every
behaviour test runs through both codecs.

Run: `python3 -m unittest discover -s plugin-sdk/python/tests -t plugin-sdk/python`
(scripts/test.sh does)."""

import unittest
from dataclasses import dataclass, field
from typing import List, Literal, Optional

import weir
import weir.testing
from weir import _runtime


class SdkTest(unittest.TestCase):
    """Through the packed codec of contract 0.2.0."""

    CONTRACT = "0.2"

    def batch(self, events, params=None):
        return weir.testing.run(events, params, self.CONTRACT)

    def process(self, events):
        if self.CONTRACT == "0.2":
            return weir.testing.decode(_runtime.process_packed(weir.testing.packed_batch_of(events)))
        return weir.testing.decode(_runtime.process_records(weir.testing.batch_of(events)))

    def setUp(self):
        _runtime.reset()

    def tearDown(self):
        _runtime.reset()

    def test_map_keeps_key_headers_and_timestamp_and_errors_are_per_event(self):
        @weir.map
        def upper(ev):
            if ev.value == b"bad":
                raise ValueError("bad value")
            ev.value = ev.value.upper()
            return ev

        ev = weir.Event(b"abc", key=b"k", headers=[("h", b"1"), ("h", b"2")], timestamp_ms=77)
        out = self.batch([ev, b"bad", b"xyz"])
        self.assertEqual(out.errors, [(1, "ValueError: bad value")])
        (i0, r0, e0), (i2, _, e2) = out.outputs
        self.assertEqual((i0, r0, i2), (0, None, 2))
        self.assertEqual(e0, weir.Event(b"ABC", key=b"k", headers=[("h", b"1"), ("h", b"2")], timestamp_ms=77))
        self.assertEqual(e2.value, b"XYZ")
        self.assertIsNone(e2.key, "no key stays no key")
        self.assertEqual(e2.timestamp_ms, 1002)

    def test_map_may_return_a_value_or_a_json_document(self):
        @weir.map
        def f(ev):
            doc = ev.json()
            return doc if doc.get("as") == "dict" else "text"

        out = self.batch([b'{"as":"dict","n":1}', b'{"as":"str"}'])
        self.assertEqual(out.values(), [b'{"as":"dict","n":1}', b"text"])

    def test_map_returning_none_is_an_error_not_a_drop(self):
        weir.map(lambda ev: None)
        out = self.batch([b"x"])
        self.assertEqual(out.outputs, [])
        self.assertIn("@weir.map returned None", out.errors[0][1])

    def test_filter(self):
        weir.filter(lambda ev: ev.json()["keep"])
        out = self.batch([b'{"keep":true}', b'{"keep":false}', b"{}"])
        self.assertEqual(out.values(), [b'{"keep":true}'])
        self.assertEqual(out.errors, [(2, "KeyError: 'keep'")])

    def test_flat_map_routes_and_copies(self):
        @weir.flat_map
        def f(ev):
            n = ev.json()["n"]
            if n == 0:
                return None
            out = [ev]
            if n > 1:
                out.append(weir.Output.to("alerts", ev.copy().set_header("why", "big")))
            return out

        out = self.batch([b'{"n":0}', b'{"n":1}', b'{"n":2}'])
        self.assertEqual([(i, r) for i, r, _ in out.outputs], [(1, None), (2, None), (2, "alerts")])
        self.assertEqual(out.outputs[2][2].header("why"), b"big")
        self.assertIsNone(out.outputs[1][2].header("why"))

    def test_flat_map_with_a_wrong_result_fails_that_event_only(self):
        weir.flat_map(lambda ev: [ev, "oops"] if ev.value == b"b" else ev)
        out = self.batch([b"a", b"b"])
        self.assertEqual(out.values(), [b"a"])
        self.assertIn("not a list holding str", out.errors[0][1])

    def test_batch_sees_all_events_and_returns_one_result_each(self):
        @weir.batch
        def f(events):
            return [weir.Error("odd") if i % 2 else [ev, ev] for i, ev in enumerate(events)]

        out = self.batch([b"a", b"b", b"c"])
        self.assertEqual([i for i, _, _ in out.outputs], [0, 0, 2, 2])
        self.assertEqual(out.errors, [(1, "odd")])

    def test_batch_with_the_wrong_count_fails_every_event(self):
        weir.batch(lambda events: events[:1])
        out = self.batch([b"a", b"b"])
        self.assertEqual(len(out.errors), 2)
        self.assertIn("returned 1 results for 2 events", out.errors[0][1])

    def test_position_is_read_only(self):
        seen = []

        @weir.map
        def f(ev):
            seen.append(ev.position)
            return ev

        self.batch([b"a", b"b"])
        self.assertEqual(seen, [weir.Position("test", 0, 0), weir.Position("test", 0, 1)])
        with self.assertRaises(AttributeError):
            seen[0].offset = 5  # type: ignore[misc]

    def test_dataclass_params_are_checked_and_name_the_field(self):
        @dataclass
        class Rule:
            field: str
            op: Literal["eq", "gt"]

        @dataclass
        class Params:
            threshold: float
            rules: List[Rule] = field(default_factory=list)
            tag: Optional[str] = None

        got = []

        @weir.map
        def f(ev, params: Params):
            got.append(params)
            return ev

        self.batch([b"x"], {"threshold": 1, "rules": [{"field": "a", "op": "eq"}]})
        self.assertEqual(got[0], Params(1.0, [Rule("a", "eq")], None))
        cases = [
            ({"threshold": "high"}, 'invalid params: `threshold`: expected float, got str "high"'),
            ({}, "invalid params: missing field `threshold`"),
            ({"threshold": 1, "bogus": 2}, "invalid params: unknown field `bogus` (known fields: `threshold`, `rules`, `tag`)"),
            ({"threshold": 1, "rules": [{"field": "a", "op": "lt"}]}, 'invalid params: `rules[0].op`: expected one of "eq", "gt", got str "lt"'),
            ({"threshold": 1, "rules": [{"op": "eq"}]}, "invalid params: missing field `rules[0].field`"),
            ("not json", "invalid params: not JSON"),
        ]
        for params, message in cases:
            with self.assertRaises(weir.ParamsError) as e:
                self.batch([], params)
            self.assertTrue(str(e.exception).startswith(message), f"{e.exception} vs {message}")

    def test_dict_params_and_init(self):
        calls = []
        weir.map(lambda ev, params: ev.set_header("t", params["tag"]))

        @weir.init
        def setup(params):
            calls.append(params)
            if params.get("tag") == "":
                raise ValueError("tag must not be empty")

        out = self.batch([b"x"], {"tag": "blue"})
        self.assertEqual(out.outputs[0][2].header("t"), b"blue")
        self.assertEqual(calls, [{"tag": "blue"}])
        with self.assertRaises(ValueError):
            self.batch([], {"tag": ""})

    def test_one_entry_point_per_plugin(self):
        weir.map(lambda ev: ev)
        with self.assertRaises(RuntimeError) as e:
            weir.filter(lambda ev: True)
        self.assertIn("exactly one entry point", str(e.exception))
        with self.assertRaises(TypeError):
            _runtime.reset()
            weir.map(lambda a, b, c: a)

    def test_infer_uses_the_native_handler_and_errors_are_values(self):
        weir.testing.set_infer_handler(
            lambda model, inputs: [weir.Tensor.f32("y", inputs[0].shape, [x * 2 for x in inputs[0].data])]
        )
        try:
            out = weir.infer("m", [weir.Tensor.f32("x", [2, 1], [1.0, 3.0])])
            self.assertEqual((out[0].data, out[0].rows), ([2.0, 6.0], 2))
        finally:
            weir.testing.set_infer_handler(None)
        with self.assertRaises(weir.InferError) as e:
            weir.infer("m", [])
        self.assertEqual(e.exception.kind, "unavailable")
        self.assertEqual(str(weir.InferError("unknown-model", "x")), "no model named `x` in the pipeline")

    def test_the_plugin_must_be_initialized(self):
        weir.map(lambda ev: ev)
        out = self.process([b"a", b"b"])
        self.assertEqual([i for i, _ in out.errors], [0, 1])
        self.assertIn("not initialized", out.errors[0][1])
        self.assertEqual(out.outputs, [])


class RecordSdkTest(SdkTest):
    """The same tests through the record codec of contract 0.1.x."""

    CONTRACT = "0.1"

    def test_malformed_spans_fail_the_event_not_the_batch(self):
        weir.map(lambda ev: ev)
        _runtime.start("{}")
        batch = weir.testing.batch_of([b"a", b"b"])
        batch.events[0].value.len = 999
        out = weir.testing.decode(_runtime.process_records(batch))
        self.assertEqual(out.values(), [b"b"])
        self.assertIn("malformed input batch", out.errors[0][1])


if __name__ == "__main__":
    unittest.main()
