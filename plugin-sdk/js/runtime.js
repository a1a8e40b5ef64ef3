// @ts-check
/**
 * The batch loop: reads the batch into `Event`s with the codec of the
 * contract the component is built against (`packed.js` for 0.2.0, the
 * record batch below for 0.1.x), calls the plugin's function per event (or
 * once per batch), writes the outputs back with the same codec. The plugin
 * author never sees the layout.
 */

import { Event, Output, WeirError, toBytes } from "./event.js";
import { InferError } from "./host.js";
import { Bytes, FormatError, Packer, Routes, eventCount, readInput } from "./packed.js";

const encoder = new TextEncoder();
const NO_HEADERS = Object.freeze({ offset: 0, len: 0 });

/** @typedef {{ kind: "map" | "filter" | "flatMap" | "batch", fn: Function, init?: (params: any) => any }} Plugin */

/** The dead-letter reason for an error thrown for an event. @param {unknown} e */
export function message(e) {
  if (e instanceof WeirError || e instanceof InferError) return e.message || e.name;
  if (e instanceof Error) return e.message ? `${e.name}: ${e.message}` : e.name;
  return String(e);
}

class Encoder {
  /** @param {number} sizeHint */
  constructor(sizeHint) {
    this.data = new Bytes(Math.max(64, sizeHint + (sizeHint >> 2)));
    /** @type {any[]} */ this.events = [];
    /** @type {any[]} */ this.headers = [];
    this.routes = new Routes();
    /** @type {any[]} */ this.errors = [];
  }

  /** @param {Uint8Array} bytes */
  push(bytes) {
    return { offset: this.data.push(bytes), len: bytes.length };
  }

  /**
   * @param {number} input
   * @param {bigint} ts
   * @param {string | null} route
   * @param {Event} ev
   */
  emit(input, ts, route, ev) {
    const key = ev._key === null ? undefined : this.push(ev._key);
    const value = this.push(ev._value);
    let headers = NO_HEADERS;
    if (ev._rawHeaders !== null || (ev._headers !== null && ev._headers.length)) {
      const pairs = ev.headers;
      const first = this.headers.length;
      for (const [name, v] of pairs) {
        this.headers.push({ name: this.push(encoder.encode(name)), value: this.push(v) });
      }
      headers = { offset: first, len: pairs.length };
    }
    const r = route === null ? undefined : this.routes.index(route);
    this.events.push({ input, route: r, key, value, timestampMs: ev._ts === null ? ts : ev._ts, headers });
  }

  /** @param {number} input @param {string} reason */
  fail(input, reason) {
    this.errors.push({ input, message: reason });
  }

  finish() {
    return {
      data: this.data.bytes(),
      events: this.events,
      headers: this.headers,
      routes: this.routes.names,
      errors: this.errors,
    };
  }
}

/**
 * @param {Uint8Array} data
 * @param {any} raw
 * @param {any[]} table
 * @param {string[]} streams
 */
function readEvent(data, raw, table, streams) {
  const ev = Object.create(Event.prototype);
  const v = raw.value;
  if (v.offset + v.len > data.length) {
    throw new WeirError(`malformed input batch: data span ${v.offset}+${v.len} is outside its table (${data.length} entries)`);
  }
  ev._value = data.subarray(v.offset, v.offset + v.len);
  const k = raw.key;
  ev._key = k == null ? null : data.subarray(k.offset, k.offset + k.len);
  const h = raw.headers;
  ev._rawHeaders = h.len ? { data, table, span: h } : null;
  ev._headers = null;
  ev._ts = raw.timestampMs;
  ev._position = { streams, raw: raw.position, resolved: null };
  return ev;
}

/**
 * @param {Encoder | Packer} enc @param {number} i @param {bigint} ts @param {any} result @param {string} kind
 */
function outputs(enc, i, ts, result, kind) {
  if (result == null) return;
  if (result instanceof Event) return enc.emit(i, ts, null, result);
  if (result instanceof Output) return enc.emit(i, ts, result.route, result.event);
  if (!Array.isArray(result)) {
    throw new TypeError(`${kind} must return Events or Output.to(...)s (an array), not ${typeof result}`);
  }
  for (const item of result) {
    if (!(item instanceof Event) && !(item instanceof Output)) {
      throw new TypeError(`${kind} must return Events or Output.to(...)s, not an array holding ${typeof item}`);
    }
  }
  for (const item of result) {
    if (item instanceof Event) enc.emit(i, ts, null, item);
    else enc.emit(i, ts, item.route, item.event);
  }
}

/** @param {any} result @param {Event} ev */
function mapped(result, ev) {
  if (result instanceof Event) return result;
  if (result == null) throw new TypeError("map returned nothing: return the event (or throw, to send it to the dead letters)");
  if (typeof result === "string" || result instanceof Uint8Array) {
    ev.value = toBytes(result, "map's result");
    return ev;
  }
  if (typeof result === "object") return ev.setJson(result);
  throw new TypeError(`map must return an Event, not ${typeof result}`);
}

/**
 * The events of a 0.1.x record batch, a `WeirError` in place of each
 * malformed one (it fails alone).
 * @param {any} batch
 */
function readRecords(batch) {
  const { data, headers: table, streams } = batch;
  return batch.events.map((/** @type {any} */ raw) => {
    try {
      return readEvent(data, raw, table, streams);
    } catch (e) {
      return e;
    }
  });
}

/**
 * Calls the plugin's function over `events` (an error in place of an event
 * the reader could not read) and writes what it returns into `enc`: the same
 * loop for both contracts' codecs.
 * @param {Plugin} plugin @param {any} params @param {any[]} events @param {Encoder | Packer} enc
 */
function run(plugin, params, events, enc) {
  const { fn, kind } = plugin;
  if (kind === "batch") return runBatch(fn, params, events, enc);
  for (let i = 0; i < events.length; i++) {
    const ev = events[i];
    if (!(ev instanceof Event)) {
      enc.fail(i, message(ev));
      continue;
    }
    const ts = ev._ts;
    try {
      const result = fn(ev, params);
      if (kind === "map") enc.emit(i, ts, null, mapped(result, ev));
      else if (kind === "filter") {
        if (result) enc.emit(i, ts, null, ev);
      } else outputs(enc, i, ts, result, kind);
    } catch (e) {
      enc.fail(i, message(e));
    }
  }
}

/** @param {Function} fn @param {any} params @param {any[]} all @param {Encoder | Packer} enc */
function runBatch(fn, params, all, enc) {
  const events = [];
  const inputs = [];
  for (let i = 0; i < all.length; i++) {
    if (all[i] instanceof Event) {
      events.push(all[i]);
      inputs.push([i, all[i]._ts]);
    } else enc.fail(i, message(all[i]));
  }
  let results;
  try {
    results = Array.from(fn(events, params));
  } catch (e) {
    const reason = message(e);
    for (const [i] of inputs) enc.fail(i, reason);
    return;
  }
  if (results.length !== inputs.length) {
    const reason = `the batch function returned ${results.length} results for ${inputs.length} events (it must return one per event, in order)`;
    for (const [i] of inputs) enc.fail(i, reason);
    return;
  }
  for (let j = 0; j < inputs.length; j++) {
    const [i, ts] = inputs[j];
    const result = results[j];
    if (result instanceof Error) {
      enc.fail(i, message(result));
      continue;
    }
    try {
      outputs(enc, i, ts, result, "batch");
    } catch (e) {
      enc.fail(i, message(e));
    }
  }
}

const NOT_STARTED = "the plugin was not initialized (init failed or was not called)";

/**
 * The `weir:plugin/transformer` export for `plugin`, for the contract the
 * component is built against: `"0.2"` (the packed batch: `init` returns the
 * plugin's info, `process` takes and returns one buffer, `checkState`) or
 * `"0.1"` (the record batch of 0.1.x).
 * @param {Plugin} plugin
 * @param {{ contract?: "0.1" | "0.2" }} [options]
 */
export function makeTransformer(plugin, options = {}) {
  if (!plugin || typeof plugin.fn !== "function" || !["map", "filter", "flatMap", "batch"].includes(plugin.kind)) {
    throw new TypeError("the plugin module's default export must be weir.map(fn), weir.filter(fn), weir.flatMap(fn) or weir.batch(fn)");
  }
  const contract = options.contract || "0.1";
  if (contract !== "0.1" && contract !== "0.2") throw new TypeError(`contract is "0.1" or "0.2", not ${contract}`);
  /** @type {any} */
  let params = null;
  let started = false;
  /** @param {string} text */
  const start = (text) => {
    try {
      const trimmed = (text || "").trim();
      let raw;
      try {
        raw = trimmed === "" || trimmed === "null" ? {} : JSON.parse(trimmed);
      } catch (e) {
        throw new WeirError(`invalid params: not JSON: ${message(e)}`);
      }
      params = raw;
      if (plugin.init) {
        const converted = plugin.init(raw);
        if (converted !== undefined) params = converted;
      }
      started = true;
    } catch (e) {
      throw message(e);
    }
  };
  if (contract === "0.2") {
    return {
      /** @param {string} text */
      init(text) {
        start(text);
        // JavaScript plugins keep no host state (not keyed).
        return { keyed: false };
      },

      /** @param {Uint8Array} input */
      process(input) {
        const enc = new Packer(input.length);
        if (!started) {
          for (let i = 0; i < eventCount(input); i++) enc.fail(i, NOT_STARTED);
          return enc.finish();
        }
        let events;
        try {
          events = readInput(input);
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
          const reason = `malformed input batch: ${e.message}`;
          for (let i = 0; i < eventCount(input); i++) enc.fail(i, reason);
          return enc.finish();
        }
        run(plugin, params, events, enc);
        return enc.finish();
      },

      /** Not keyed: no stored state to check. @param {Uint8Array} _sample */
      checkState(_sample) {},
    };
  }
  return {
    init: start,

    /** @param {any} batch */
    process(batch) {
      const enc = new Encoder(batch.data.length);
      if (!started) {
        for (let i = 0; i < batch.events.length; i++) enc.fail(i, NOT_STARTED);
      } else run(plugin, params, readRecords(batch), enc);
      return enc.finish();
    },
  };
}
