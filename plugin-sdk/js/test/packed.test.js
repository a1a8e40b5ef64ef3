// The packed batch codec of contract 0.2.0 (`packed.js`): the layout as
// `wit/README.md` states it, the same outputs as the 0.1.x record codec, and
// inputs a hostile or buggy host could send failing every event with a
// reason, never throwing out of `process`.
import assert from "node:assert/strict";
import { test } from "node:test";

import * as weir from "../index.js";
import { FormatError, KIND, NONE, eventCount, readInput, writeInput } from "../packed.js";
import { makeTransformer } from "../runtime.js";
import { decode, packedBatchOf, run } from "../testing.js";

const text = (/** @type {Uint8Array | null} */ b) => (b === null ? null : new TextDecoder().decode(b));
const plain = (/** @type {any} */ out) => ({
  outputs: out.outputs.map(([i, r, ev]) => [i, r, text(ev.key), text(ev.value), ev.headers.map(([n, v]) => [n, text(v)]), ev.timestampMs]),
  errors: out.errors,
});

function sections(/** @type {Uint8Array} */ buf) {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getUint32(4, true);
  const out = new Map();
  for (let i = 0; i < n; i++) {
    const at = 8 + 16 * i;
    out.set(view.getUint32(at, true), { count: view.getUint32(at + 4, true), offset: view.getUint32(at + 8, true), stride: view.getUint32(at + 12, true) });
  }
  return out;
}

const sample = () => [
  new weir.Event('{"n":1}', { key: "k1", headers: [["h", "v"], ["é", ""]], timestampMs: -5 }),
  new weir.Event("", { key: "", timestampMs: 2 ** 40 }),
  new weir.Event("plain", { timestampMs: 0 }),
];

test("the input reads back field by field", () => {
  const evs = sample();
  const buf = writeInput(evs, ["in", "other"], [[0, 3, 10n], [1, -1, 2n ** 62n], [0, 0, 0n]]);
  const got = readInput(buf);
  assert.deepEqual(got.map((e) => [text(e.key), text(e.value), e.timestampMs, e.headers.map(([n, v]) => [n, text(v)])]), [
    ["k1", '{"n":1}', -5, [["h", "v"], ["é", ""]]],
    ["", "", 2 ** 40, []],
    [null, "plain", 0, []],
  ]);
  assert.deepEqual(got[0].position, { stream: "in", partition: 3, offset: 10 });
  assert.deepEqual(got[1].position, { stream: "other", partition: -1, offset: 2 ** 62 });
});

test("both contracts give the same outputs", () => {
  const plugins = [
    weir.map((ev) => ev.setJson({ ...ev.json(), seen: true })),
    weir.filter((ev) => ev.json().n % 2),
    weir.flatMap((ev, p) => {
      const doc = ev.json();
      if (doc.drop) return null;
      if (doc.n > p.limit) return weir.Output.to("big", ev.setHeader("why", "n"));
      ev.key = String(doc.n);
      ev.timestampMs = 7;
      return [ev, ev.copy()];
    }),
    weir.batch((events) => events.map((ev, i) => (i === 1 ? new weir.WeirError("second") : ev))),
  ];
  const events = [new weir.Event('{"n":1}', { headers: [["a", "1"]] }), '{"n":50}', '{"drop":true}', "nope", new weir.Event('{"n":2}', { key: "old" })];
  for (const plugin of plugins) {
    const packed = plain(run(plugin, events, { limit: 10 }, "0.2"));
    const records = plain(run(plugin, events, { limit: 10 }, "0.1"));
    assert.deepEqual(packed, records, plugin.kind);
    assert.ok(packed.outputs.length > 0 && packed.errors.length > 0, plugin.kind);
  }
});

test("the output layout is the contract's", () => {
  const t = makeTransformer(weir.flatMap((ev) => [ev, weir.Output.to("alerts", ev.copy().setHeader("x", "1"))]), { contract: "0.2" });
  assert.deepEqual(t.init("{}"), { keyed: false });
  assert.equal(t.checkState(new Uint8Array(0)), undefined);
  const out = t.process(packedBatchOf(["a", "b"]));
  const secs = sections(out);
  assert.deepEqual([...secs.keys()].sort((a, b) => a - b), [KIND.DATA, KIND.HEADERS, KIND.OUTPUTS, KIND.ROUTES, KIND.ERRORS]);
  for (const [kind, { count, offset, stride }] of secs) {
    assert.ok(offset + count * stride <= out.length, `section ${kind} inside`);
    if (kind !== KIND.DATA) assert.equal(offset % 8, 0, `table ${kind} 8-aligned`);
  }
  const o = secs.get(KIND.OUTPUTS);
  assert.equal(o.count, 4);
  assert.equal(o.stride, 40);
  const view = new DataView(out.buffer, out.byteOffset);
  assert.equal(view.getUint32(o.offset + 4, true), NONE, "the default route");
  assert.equal(view.getUint32(o.offset + 12, true), NONE, "no key");
  assert.equal(view.getBigInt64(o.offset + 32, true), 1000n, "the input's timestamp");
  const result = decode(out);
  assert.deepEqual(result.outputs.map(([, r]) => r), [null, "alerts", null, "alerts"]);
  assert.deepEqual(result.outputs[1][2].headers.map(([n, v]) => [n, text(v)]), [["x", "1"]]);
});

function started() {
  const t = makeTransformer(weir.map((ev) => ev), { contract: "0.2" });
  t.init("{}");
  return t;
}

test("every truncation fails every event it claims and never throws", () => {
  const t = started();
  const buf = writeInput(sample(), ["s"], [[0, 0, 0n], [0, 0, 1n], [0, 0, 2n]]);
  for (let n = 0; n < buf.length; n++) {
    const cut = buf.slice(0, n);
    const { outputs, errors } = decode(t.process(cut));
    assert.deepEqual(outputs, [], `cut at ${n}`);
    assert.deepEqual(errors.map(([i]) => i), [...Array(eventCount(cut)).keys()], `cut at ${n}`);
    for (const [, reason] of errors) assert.match(reason, /^malformed input batch: /);
  }
});

test("random corruption never throws and outputs name real inputs", () => {
  const t = started();
  const buf = writeInput(sample(), ["s"], [[0, 0, 0n], [0, 0, 1n], [0, 0, 2n]]);
  let seed = 12;
  const rand = (/** @type {number} */ n) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let round = 0; round < 3000; round++) {
    const bad = buf.slice();
    for (let k = 0, m = 1 + rand(4); k < m; k++) bad[rand(bad.length)] = rand(256);
    const { outputs, errors } = decode(t.process(bad));
    const claimed = eventCount(bad);
    for (const [i] of outputs) assert.ok(i < claimed);
    if (errors.length && errors[0][1].startsWith("malformed")) {
      assert.deepEqual(outputs, []);
      assert.equal(errors.length, claimed);
    }
  }
});

test("out-of-range indexes are named", () => {
  const t = started();
  const buf = writeInput(sample(), ["s"], [[0, 0, 0n], [0, 0, 1n], [0, 0, 2n]]);
  const at = sections(buf).get(KIND.EVENTS).offset;
  const cases = [
    [24, 7, "event 0: its stream index is out of range"],
    [16, 5, "event 0: its header range is outside the headers"],
    [8, 10 ** 6, "event 0: the value is outside the data section"],
    [0, 10 ** 6, "event 0: the key is outside the data section"],
  ];
  for (const [field, value, reason] of cases) {
    const bad = buf.slice();
    new DataView(bad.buffer).setUint32(at + field, value, true);
    assert.deepEqual(decode(t.process(bad)).errors, [0, 1, 2].map((i) => [i, `malformed input batch: ${reason}`]));
  }
  const bad = buf.slice();
  new DataView(bad.buffer).setUint32(0, 2, true);
  assert.throws(() => readInput(bad), (e) => e instanceof FormatError && e.message === "unknown batch format 2 (this reader knows 1)");
  assert.deepEqual(decode(t.process(bad)), { outputs: [], errors: [] }, "no directory: nothing to count");
});

test("outputs past the first buffer sizes keep every field", () => {
  // Tables and data grow by doubling: 500 outputs with headers and keys
  // cross every growth point of each.
  const events = Array.from({ length: 500 }, (_, i) => new weir.Event(`{"i":${i}}`, { key: `k${i}`, headers: [["n", String(i)]] }));
  const packed = plain(run(weir.flatMap((ev) => [ev, weir.Output.to("copy", ev.copy())]), events, {}, "0.2"));
  const records = plain(run(weir.flatMap((ev) => [ev, weir.Output.to("copy", ev.copy())]), events, {}, "0.1"));
  assert.equal(packed.outputs.length, 1000);
  assert.deepEqual(packed, records);
  assert.deepEqual(packed.outputs[999], [499, "copy", "k499", '{"i":499}', [["n", "499"]], 1499]);
});

test("not initialized: every event fails (0.2)", () => {
  const t = makeTransformer(weir.map((ev) => ev), { contract: "0.2" });
  const { errors } = decode(t.process(packedBatchOf(["a", "b"])));
  assert.deepEqual(errors.map(([i]) => i), [0, 1]);
  assert.match(errors[0][1], /not initialized/);
});
