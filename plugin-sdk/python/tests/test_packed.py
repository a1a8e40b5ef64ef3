"""The packed batch codec of contract 0.2.0 (`weir/_packed.py`): the layout
as `wit/README.md` states it, and inputs a hostile or buggy host could send
(every truncation, random corruption, out-of-range indexes) failing every
event with a reason, never raising out of `process`."""

import random
import struct
import unittest

import weir
import weir.testing
from weir import _packed, _runtime


def sections(buf):
    fmt, n = struct.unpack_from("<II", buf, 0)
    assert fmt == 1
    return {k: (c, o, s) for k, c, o, s in (struct.unpack_from("<IIII", buf, 8 + 16 * i) for i in range(n))}


class PackedTest(unittest.TestCase):
    def setUp(self):
        _runtime.reset()

    def tearDown(self):
        _runtime.reset()

    def sample(self):
        return [
            weir.Event(b'{"n":1}', key=b"k1", headers=[("h", b"v"), ("\u00e9", b"")], timestamp_ms=-5),
            weir.Event(b"", key=b"", timestamp_ms=2**40),
            weir.Event(b"plain", timestamp_ms=0),
        ]

    def test_the_input_reads_back_field_by_field(self):
        evs = self.sample()
        buf = _packed.write_input(evs, ["in", "other"], [(0, 3, 10), (1, -1, 2**62), (0, 0, 0)])
        got = _packed.read_input(buf)
        self.assertEqual(got, evs)
        self.assertIsNone(got[2].key, "no key")
        self.assertEqual(got[1].key, b"", "an empty key is not no key")
        self.assertEqual(got[0].position, weir.Position("in", 3, 10))
        self.assertEqual(got[1].position, weir.Position("other", -1, 2**62))
        self.assertEqual(got[0].headers, [("h", b"v"), ("\u00e9", b"")])

    def test_a_reader_skips_unknown_kinds_and_reads_the_known_prefix_of_longer_entries(self):
        evs = self.sample()
        buf = _packed.write_input(evs, ["s"], [(0, 0, i) for i in range(3)])
        secs = sections(buf)
        count, offset, stride = secs[_packed.EVENTS]
        # A later version: events of 56 bytes (8 appended), and a section of
        # a kind this reader does not know.
        table = b"".join(buf[offset + i * 48 : offset + (i + 1) * 48] + b"\xee" * 8 for i in range(count))
        data_count, data_offset, _ = secs[_packed.DATA]
        data = buf[data_offset : data_offset + data_count]
        head_tables = [
            (_packed.EVENTS, table, 56),
            (_packed.HEADERS, self._table(buf, secs, _packed.HEADERS), 16),
            (_packed.STREAMS, self._table(buf, secs, _packed.STREAMS), 8),
            (99, b"\x01" * 24, 12),
        ]
        later = _packed._pack(head_tables, data)
        self.assertEqual(_packed.read_input(later), evs)

    @staticmethod
    def _table(buf, secs, kind):
        count, offset, stride = secs[kind]
        return buf[offset : offset + count * stride]

    def test_the_output_layout_is_the_contracts(self):
        @weir.flat_map
        def fan(ev):
            return [ev, weir.Output.to("alerts", ev.copy().set_header("x", b"1"))]

        _runtime.start("{}")
        out = _runtime.process_packed(weir.testing.packed_batch_of([b"a", b"bad\xff"]))
        secs = sections(out)
        self.assertEqual(
            sorted(secs), [_packed.DATA, _packed.HEADERS, _packed.OUTPUTS, _packed.ROUTES, _packed.ERRORS]
        )
        for kind, (count, offset, stride) in secs.items():
            self.assertLessEqual(offset + count * stride, len(out), f"section {kind} inside")
            if kind != _packed.DATA:
                self.assertEqual(offset % 8, 0, f"table {kind} is 8-aligned")
        self.assertEqual(secs[_packed.OUTPUTS][0], 4)
        self.assertEqual(secs[_packed.OUTPUTS][2], 40)
        self.assertEqual(secs[_packed.ROUTES][0], 1)
        first = struct.unpack_from("<IIIIIIIIq", out, secs[_packed.OUTPUTS][1])
        self.assertEqual(first[:2], (0, _packed.NONE), "input 0, the default route")
        self.assertEqual(first[3], _packed.NONE, "no key")
        self.assertEqual(first[8], 1000, "the input's timestamp")
        result = weir.testing.decode(out)
        self.assertEqual(result.routes(), [None, "alerts", None, "alerts"])
        self.assertEqual(result.outputs[1][2].headers, [("x", b"1")])
        self.assertEqual(result.values("alerts"), [b"a", b"bad\xff"])

    def test_both_contracts_give_the_same_outputs(self):
        @weir.flat_map
        def route(ev, params):
            doc = ev.json()
            if doc.get("drop"):
                return None
            if doc["n"] > params["limit"]:
                return weir.Output.to("big", ev.set_json({**doc, "big": True}).add_header("why", "n"))
            ev.key = str(doc["n"])
            ev.timestamp_ms = 7
            return ev

        events = [
            weir.Event(b'{"n":1}', headers=[("a", b"1")]),
            b'{"n":50}',
            b'{"drop":true}',
            b"nope",
            weir.Event(b'{"n":2}', key=b"old"),
        ]
        packed = weir.testing.run(events, {"limit": 10}, contract="0.2")
        records = weir.testing.run(events, {"limit": 10}, contract="0.1")
        self.assertEqual(packed, records)
        self.assertEqual([i for i, _ in packed.errors], [3])
        self.assertEqual(packed.routes(), [None, "big", None])

    def test_every_truncation_fails_every_event_it_claims_and_never_raises(self):
        weir.map(lambda ev: ev)
        _runtime.start("{}")
        buf = _packed.write_input(self.sample(), ["s"], [(0, 0, i) for i in range(3)])
        for n in range(len(buf)):
            result = weir.testing.decode(_runtime.process_packed(buf[:n]))
            self.assertEqual(result.outputs, [], f"truncated at {n}")
            self.assertEqual(
                [i for i, _ in result.errors], list(range(_packed.event_count(buf[:n]))), f"truncated at {n}"
            )
            for _, reason in result.errors:
                self.assertTrue(reason.startswith("malformed input batch: "), reason)

    def test_random_corruption_never_raises_and_outputs_name_real_inputs(self):
        weir.map(lambda ev: ev)
        _runtime.start("{}")
        buf = _packed.write_input(self.sample(), ["s"], [(0, 0, i) for i in range(3)])
        rng = random.Random(12)
        for _ in range(3000):
            bad = bytearray(buf)
            for _ in range(rng.randint(1, 4)):
                bad[rng.randrange(len(bad))] = rng.randrange(256)
            result = weir.testing.decode(_runtime.process_packed(bytes(bad)))
            claimed = _packed.event_count(bytes(bad))
            for i, _, _ in result.outputs:
                self.assertLess(i, claimed)
            if result.errors and result.errors[0][1].startswith("malformed"):
                self.assertEqual(result.outputs, [])
                self.assertEqual(len(result.errors), claimed)

    def test_out_of_range_indexes_are_named(self):
        weir.map(lambda ev: ev)
        _runtime.start("{}")
        buf = bytearray(_packed.write_input(self.sample(), ["s"], [(0, 0, i) for i in range(3)]))
        _, offset, _ = sections(buf)[_packed.EVENTS]
        cases = {
            24: (7, "event 0: its stream index is out of range"),
            16: (5, "event 0: its header range is outside the headers"),
            8: (10**6, "event 0: the value is outside the data section"),
            0: (10**6, "event 0: the key is outside the data section"),
        }
        for at, (value, reason) in cases.items():
            bad = bytearray(buf)
            struct.pack_into("<I", bad, offset + at, value)
            result = weir.testing.decode(_runtime.process_packed(bytes(bad)))
            self.assertEqual(result.errors, [(i, f"malformed input batch: {reason}") for i in range(3)])
        bad = bytearray(buf)
        struct.pack_into("<I", bad, 0, 2)
        with self.assertRaisesRegex(_packed.FormatError, r"^unknown batch format 2 \(this reader knows 1\)$"):
            _packed.read_input(bytes(bad))
        # Without a readable directory the events cannot be counted (as in
        # the Rust SDK): nothing is emitted, and the host, which checks
        # every output, sees no output naming a made-up input.
        result = weir.testing.decode(_runtime.process_packed(bytes(bad)))
        self.assertEqual((result.outputs, result.errors), ([], []))


if __name__ == "__main__":
    unittest.main()
