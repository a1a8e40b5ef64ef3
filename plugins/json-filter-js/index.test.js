// Native unit tests: `npm install && npm test` (run by scripts/test.sh).
import assert from "node:assert/strict";
import { test } from "node:test";
import { run } from "weir-sdk/testing";

import plugin from "./index.js";

test("the README example", () => {
  const p = {
    where: [
      { field: "amount", op: "gt", value: 100 },
      { field: "country", op: "in", value: ["FR", "DE"] },
    ],
    keep: ["txn_id", "amount"],
  };
  const out = run(plugin, [
    '{"txn_id": "t1", "amount": 250.5, "country": "FR", "card": "x"}',
    '{"txn_id": "t2", "amount": 50, "country": "FR"}',
    '{"txn_id": "t3", "amount": 500, "country": "US"}',
  ], p);
  assert.deepEqual(out.texts(), ['{"txn_id":"t1","amount":250.5}']);
  assert.deepEqual(out.errors, []);
});

test("routing mode keeps everything, unchanged", () => {
  const out = run(plugin, ['{"amount": 1000}', '{"amount": 5}'], { where: [{ field: "amount", op: "gte", value: 1000 }], route: "alerts" });
  assert.deepEqual(out.outputs.map(([, r]) => r), ["alerts", null]);
  assert.deepEqual(out.texts(), ['{"amount": 5}']);
});

test("operators", () => {
  const ev = JSON.stringify({ n: 10, s: "abc", z: null, tags: ["x", 1], a: { b: { c: 7 } }, items: [{ sku: "k1" }, { sku: "k2" }], t: true });
  const cases = [
    [{ field: "n", op: "eq", value: 10.0 }, true],
    [{ field: "n", op: "eq", value: "10" }, false],
    [{ field: "t", op: "eq", value: 1 }, false],
    [{ field: "missing", op: "ne", value: 1 }, true],
    [{ field: "s", op: "gt", value: "abb" }, true],
    [{ field: "s", op: "gt", value: 1 }, false],
    [{ field: "n", op: "in", value: [1, 10] }, true],
    [{ field: "missing", op: "exists", value: false }, true],
    [{ field: "z", op: "exists" }, true],
    [{ field: "tags", op: "contains", value: 1 }, true],
    [{ field: "a.b.c", op: "eq", value: 7 }, true],
    [{ field: "items.1.sku", op: "eq", value: "k2" }, true],
    [{ field: "s.0", op: "exists" }, false],
  ];
  for (const [condition, expected] of cases) {
    const out = run(plugin, [ev], { where: [condition] });
    assert.equal(out.outputs.length === 1, expected, JSON.stringify(condition));
  }
});

test("projection nests and orders", () => {
  const out = run(plugin, ['{"a": {"b": 1, "c": {"d": 2, "e": 3}, "f": 4}, "z": [1], "s": "str", "q": {"r": 1, "t": 2}}'], {
    keep: ["z", "a.b", "a.c.d", "missing", "s.x", "q", "q.r"],
  });
  assert.deepEqual(out.texts(), ['{"z":[1],"a":{"b":1,"c":{"d":2}},"q":{"r":1,"t":2}}']);
});

test("bad events are dead letters", () => {
  const out = run(plugin, ["nope", "[1]"], { keep: ["a"] });
  assert.ok(out.errors[0][1].startsWith("event value is not JSON"), out.errors[0][1]);
  assert.deepEqual(out.errors[1], [1, "`keep` needs a JSON object event, got an array"]);
});

test("bad params are explained", () => {
  const cases = [
    [{ where: [{ field: "a", op: "gt" }] }, "where[0] (field `a`): op `gt` needs a `value`"],
    [{ where: [{ field: "a", op: "in", value: "FR" }] }, "op `in` needs an array `value`"],
    [{ where: [{ field: "a..b", op: "exists" }] }, "field path `a..b` has an empty segment"],
    [{ where: [{ field: "a", op: "like", value: 1 }] }, "unknown variant `like`"],
    [{ keep: [""] }, "keep: a field path cannot be empty"],
    [{ route: "" }, "route: the output name cannot be empty"],
    [{ filter: [] }, "unknown field `filter`"],
  ];
  for (const [params, expected] of cases) {
    assert.throws(() => run(plugin, [], params), (e) => e.message.includes(expected), expected);
  }
});
