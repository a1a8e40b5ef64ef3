// @ts-check
/**
 * Running a plugin natively (in `node --test`), through the same batch code
 * the component runs.
 *
 * ```js
 * import { run } from "weir-sdk/testing";
 * import plugin from "./index.js";
 * const out = run(plugin, ['{"name":"ann"}', "not json"], { tag: "t" });
 * assert.deepEqual(out.texts(), ['{"name":"ANN"}']);
 * assert.equal(out.errors[0][0], 1);   // [input index, reason]
 * ```
 */

import { Event } from "./event.js";
import { readOutput, writeInput } from "./packed.js";
import { makeTransformer } from "./runtime.js";

export { setInferHandler } from "./host.js";

const decoder = new TextDecoder();

/** @param {Array<string | Uint8Array | Event>} events */
function eventsOf(events) {
  return events.map((e, i) => {
    const ev = e instanceof Event ? e.copy() : new Event(e);
    if (ev._ts === null) ev._ts = BigInt(1000 + i);
    return ev;
  });
}

/**
 * A packed input batch (contract 0.2.0) holding `events` (values, or
 * Events), as the host writes it; offsets are the indexes.
 * @param {Array<string | Uint8Array | Event>} events
 */
export function packedBatchOf(events, stream = "test") {
  const evs = eventsOf(events);
  return writeInput(evs, [stream], evs.map((_, i) => [0, 0, BigInt(i)]));
}

/** A record batch (contract 0.1.x) holding `events` (values, or Events), as the host sends it. @param {Array<string | Uint8Array | Event>} events */
export function batchOf(events, stream = "test") {
  const chunks = [];
  let len = 0;
  const span = (/** @type {Uint8Array} */ b) => {
    const s = { offset: len, len: b.length };
    chunks.push(b);
    len += b.length;
    return s;
  };
  const headers = [];
  const raws = eventsOf(events).map((ev, i) => {
    const key = ev.key === null ? undefined : span(ev.key);
    const value = span(ev.value);
    const first = headers.length;
    for (const [n, v] of ev.headers) headers.push({ name: span(new TextEncoder().encode(n)), value: span(v) });
    return {
      key,
      value,
      timestampMs: ev._ts,
      headers: { offset: first, len: ev.headers.length },
      position: { stream: 0, partition: 0, offset: BigInt(i) },
    };
  });
  const data = new Uint8Array(len);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { data, events: raws, headers, streams: [stream] };
}

/**
 * The outputs `[[input, route, Event]]` and errors `[[input, reason]]` of
 * an output batch: packed (a Uint8Array, 0.2.0) or records (0.1.x).
 * @param {any} out
 */
export function decode(out) {
  if (out instanceof Uint8Array) {
    const { outputs, errors } = readOutput(out);
    for (const [, , ev] of outputs) ev.timestampMs = Number(ev._ts);
    return { outputs, errors };
  }
  const outputs = out.events.map((/** @type {any} */ o) => {
    const ev = new Event(out.data.slice(o.value.offset, o.value.offset + o.value.len));
    if (o.key !== undefined) ev.key = out.data.slice(o.key.offset, o.key.offset + o.key.len);
    ev.headers = out.headers.slice(o.headers.offset, o.headers.offset + o.headers.len).map((h) => [
      decoder.decode(out.data.subarray(h.name.offset, h.name.offset + h.name.len)),
      out.data.slice(h.value.offset, h.value.offset + h.value.len),
    ]);
    ev.timestampMs = Number(o.timestampMs);
    return [o.input, o.route === undefined ? null : out.routes[o.route], ev];
  });
  return { outputs, errors: out.errors.map((/** @type {any} */ e) => [e.input, e.message]) };
}

/**
 * Starts `plugin` with `params` (as the host's init does; a refusal throws
 * its message) and runs one batch through the codec of `contract` ("0.2":
 * the packed batch, what `weir plugin build` targets; "0.1": the record
 * batch of 0.1.x). Returns `{ outputs: [[input, route, Event]], errors:
 * [[input, reason]] }`.
 * @param {any} plugin
 * @param {Array<string | Uint8Array | Event>} events
 * @param {any} [params]
 * @param {"0.1" | "0.2"} [contract]
 */
export function run(plugin, events, params = {}, contract = "0.2") {
  const t = makeTransformer(plugin, { contract });
  try {
    t.init(typeof params === "string" ? params : JSON.stringify(params));
  } catch (reason) {
    throw new Error(String(reason));
  }
  const out = t.process(contract === "0.2" ? packedBatchOf(events) : batchOf(events));
  const { outputs, errors } = decode(out);
  return {
    outputs,
    errors,
    /** Values sent to `route` (null: the default output), as text. */
    texts(route = null) {
      return outputs.filter(([, r]) => r === route).map(([, , ev]) => ev.text());
    },
  };
}
