"""Native unit tests with a stand-in model (`weir.testing.set_infer_handler`):
`PYTHONPATH=../../plugin-sdk/python python -m unittest` (run by scripts/test.sh)."""

import json
import struct
import unittest

import weir
import weir.testing

import fraud_features
from features import WIDTH, features

TXN = {
    "txn_id": "t1",
    "card_id": "c1",
    "amount": 120.5,
    "channel": "online",
    "country": "FR",
    "home_country": "DE",
    "hour": 3,
    "secs_since_last": 30,
    "merchant_category": "gift_cards",
}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


class FraudFeaturesTest(unittest.TestCase):
    def setUp(self):
        self.calls = []

        def model(name, inputs):
            self.calls.append((name, inputs[0].name, inputs[0].shape))
            rows = [inputs[0].data[i : i + WIDTH] for i in range(0, len(inputs[0].data), WIDTH)]
            # Score: the "foreign" feature, so the test knows what to expect.
            return [weir.Tensor.f32("score", [len(rows), 1], [f32(0.9 if r[2] else 0.1) for r in rows])]

        weir.testing.set_infer_handler(model)

    def tearDown(self):
        weir.testing.set_infer_handler(None)

    def test_one_call_per_batch_scores_appended_alerts_copied(self):
        home = dict(TXN, country="DE", txn_id="t2")
        bad = dict(TXN, txn_id="t3")
        del bad["amount"]
        out = weir.testing.run(
            [json.dumps(TXN).encode(), json.dumps(home).encode(), json.dumps(bad).encode(), b"nope"],
            {"threshold": 0.5},
        )
        self.assertEqual(self.calls, [("fraud", "features", [2, WIDTH])])
        self.assertEqual(out.routes(), [None, "alerts", None])
        first = json.loads(out.values()[0])
        self.assertEqual(first["score"], 0.9)
        self.assertTrue(out.values()[0].endswith(b',"score":0.9}'))
        self.assertEqual(out.values("alerts"), [out.values()[0]])
        self.assertEqual(out.errors[0], (2, "not a card transaction: missing field `amount`"))
        self.assertTrue(out.errors[1][1].startswith("not a card transaction: Expecting value"), out.errors)

    def test_a_failed_model_call_fails_the_batch_with_the_reason(self):
        def broken(name, inputs):
            raise weir.InferError("unknown-model", name)

        weir.testing.set_infer_handler(broken)
        out = weir.testing.run([json.dumps(TXN).encode()], {"model": "nope"})
        self.assertEqual(out.errors, [(0, "model `nope`: no model named `nope` in the pipeline")])

    def test_features_match_the_training_code(self):
        row = features(TXN)
        self.assertEqual(len(row), WIDTH)
        self.assertEqual(row[1:4], [1.0, 1.0, 1.0])
        self.assertEqual(row[8 + 10], 1.0)

    def test_f32_text_is_the_shortest_round_trip_without_exponent(self):
        for x, text in [(0.9, "0.9"), (0.1, "0.1"), (3.2e-05, "0.000032"), (1.0, "1"), (0.0, "0"),
                        (0.30000001192092896, "0.3"), (0.123456789, "0.12345679")]:
            self.assertEqual(fraud_features.f32_text(f32(x)), text)

    def test_params_are_checked(self):
        with self.assertRaises(weir.ParamsError) as e:
            weir.testing.run([], {"threshold": 2})
        self.assertIn("threshold must be in [0, 1], got 2.0", str(e.exception))
        with self.assertRaises(weir.ParamsError):
            weir.testing.run([], {"treshold": 0.2})


if __name__ == "__main__":
    unittest.main()
