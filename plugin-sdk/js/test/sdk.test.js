// The JS SDK, natively: the same batch code the component runs, on WIT
// batches built the way the host builds them. Run: `node --test plugin-sdk/js/test/`
// (scripts/test.sh does).
import assert from "node:assert/strict";
import { test } from "node:test";

import * as weir from "../index.js";
import { batchOf, run, setInferHandler } from "../testing.js";
import { makeTransformer } from "../runtime.js";

test("map keeps key, headers and timestamp; errors are per event", () => {
  const plugin = weir.map((ev) => {
    if (ev.text() === "bad") throw new RangeError("bad value");
    ev.value = ev.text().toUpperCase();
    return ev;
  });
  const ev = new weir.Event("abc", { key: "k", headers: [["h", "1"], ["h", "2"]], timestampMs: 77 });
  const out = run(plugin, [ev, "bad", "xyz"]);
  assert.deepEqual(out.errors, [[1, "RangeError: bad value"]]);
  const [[i0, r0, e0], [i2, , e2]] = out.outputs;
  assert.deepEqual([i0, r0, i2], [0, null, 2]);
  assert.equal(e0.text(), "ABC");
  assert.equal(new TextDecoder().decode(e0.key), "k");
  assert.deepEqual(e0.headers.map(([n, v]) => [n, new TextDecoder().decode(v)]), [["h", "1"], ["h", "2"]]);
  assert.equal(e0.timestampMs, 77);
  assert.equal(e2.key, null);
  assert.equal(e2.timestampMs, 1002);
});

test("map may return a value or a JSON document; nothing is an error", () => {
  const plugin = weir.map((ev) => {
    const doc = ev.json();
    return doc.as === "obj" ? doc : doc.as === "str" ? "text" : undefined;
  });
  const out = run(plugin, ['{"as":"obj","n":1}', '{"as":"str"}', '{"as":"none"}']);
  assert.deepEqual(out.texts(), ['{"as":"obj","n":1}', "text"]);
  assert.match(out.errors[0][1], /map returned nothing/);
});

test("filter", () => {
  const out = run(weir.filter((ev) => ev.json().keep), ['{"keep":true}', '{"keep":false}', "nope"]);
  assert.deepEqual(out.texts(), ['{"keep":true}']);
  assert.equal(out.errors[0][0], 2);
  assert.match(out.errors[0][1], /^SyntaxError: /);
});

test("flatMap routes and copies", () => {
  const plugin = weir.flatMap((ev) => {
    const { n } = ev.json();
    if (n === 0) return null;
    return n > 1 ? [ev, weir.Output.to("alerts", ev.copy().setHeader("why", "big"))] : ev;
  });
  const out = run(plugin, ['{"n":0}', '{"n":1}', '{"n":2}']);
  assert.deepEqual(out.outputs.map(([i, r]) => [i, r]), [[1, null], [2, null], [2, "alerts"]]);
  assert.equal(out.outputs[2][2].headerText("why"), "big");
  assert.equal(out.outputs[1][2].header("why"), null);
});

test("batch returns one result per event; a wrong count fails them all", () => {
  const plugin = weir.batch((events) => events.map((ev, i) => (i % 2 ? new weir.WeirError("odd") : [ev, ev])));
  const out = run(plugin, ["a", "b", "c"]);
  assert.deepEqual(out.outputs.map(([i]) => i), [0, 0, 2, 2]);
  assert.deepEqual(out.errors, [[1, "odd"]]);
  const short = run(weir.batch((events) => events.slice(1)), ["a", "b"]);
  assert.equal(short.errors.length, 2);
  assert.match(short.errors[0][1], /returned 1 results for 2 events/);
});

test("position is read-only; timestamps are numbers", () => {
  const seen = [];
  run(weir.map((ev) => (seen.push([ev.position, ev.timestampMs]), ev)), ["a", "b"]);
  assert.deepEqual(seen, [[{ stream: "test", partition: 0, offset: 0 }, 1000], [{ stream: "test", partition: 0, offset: 1 }, 1001]]);
  assert.throws(() => {
    "use strict";
    seen[0][0].offset = 5;
  });
});

test("init checks params and its result is what the function gets", () => {
  const plugin = weir.map((ev, p) => ev.setHeader("t", p.tag), {
    init(params) {
      if (!params.tag) throw new weir.WeirError("tag is required");
      return { tag: params.tag.toUpperCase() };
    },
  });
  assert.equal(run(plugin, ["x"], { tag: "blue" }).outputs[0][2].headerText("t"), "BLUE");
  assert.throws(() => run(plugin, [], {}), /tag is required/);
  assert.throws(() => run(plugin, [], "not json"), /invalid params: not JSON/);
});

test("not initialized: every event fails", () => {
  const t = makeTransformer(weir.map((ev) => ev));
  const out = t.process(batchOf(["a"]));
  assert.match(out.errors[0].message, /not initialized/);
});

test("malformed spans fail the event, not the batch", () => {
  const t = makeTransformer(weir.map((ev) => ev));
  t.init("{}");
  const batch = batchOf(["a", "b"]);
  batch.events[0].value.len = 999;
  const out = t.process(batch);
  assert.equal(out.events.length, 1);
  assert.match(out.errors[0].message, /malformed input batch/);
});

test("outputs grow one buffer; timestamps stay bigints on the wire", () => {
  const big = "x".repeat(10000);
  const t = makeTransformer(weir.map((ev) => ((ev.value = big), ev)));
  t.init("{}");
  const out = t.process(batchOf(["a", "b"]));
  assert.equal(out.data.length, 20000);
  assert.deepEqual(out.events.map((e) => [e.value.offset, e.value.len, typeof e.timestampMs]), [[0, 10000, "bigint"], [10000, 10000, "bigint"]]);
});

test("infer uses the native handler; errors are values", () => {
  setInferHandler((model, inputs) => [weir.Tensor.f32("y", inputs[0].shape, inputs[0].data.map((x) => x * 2))]);
  try {
    const [y] = weir.infer("m", [weir.Tensor.f32("x", [2, 1], [1, 3])]);
    assert.deepEqual(Array.from(y.data), [2, 6]);
    assert.equal(y.rows, 2);
  } finally {
    setInferHandler(null);
  }
  assert.throws(() => weir.infer("m", []), (e) => e instanceof weir.InferError && e.kind === "unavailable");
  assert.equal(new weir.InferError("unknown-model", "x").message, "no model named `x` in the pipeline");
});

test("the default export must be an entry point", () => {
  assert.throws(() => makeTransformer({}), /default export must be weir.map/);
});
