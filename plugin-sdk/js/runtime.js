// @ts-check
/**
 * The batch loop: reads the batch's spans into `Event`s, calls the plugin's
 * function per event (or once per batch), writes the outputs into one output
 * buffer. The plugin author never sees the WIT records.
 */

import { Event, Output, WeirError, toBytes } from "./event.js";
import { InferError } from "./host.js";

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
    this.buf = new Uint8Array(Math.max(64, sizeHint + (sizeHint >> 2)));
    this.len = 0;
    /** @type {any[]} */ this.events = [];
    /** @type {any[]} */ this.headers = [];
    /** @type {string[]} */ this.routes = [];
    /** @type {Map<string, number>} */ this.routeIndex = new Map();
    /** @type {any[]} */ this.errors = [];
  }

  /** @param {Uint8Array} bytes */
  push(bytes) {
    const offset = this.len;
    const end = offset + bytes.length;
    if (end > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < end) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(bytes, offset);
    this.len = end;
    return { offset, len: bytes.length };
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
    let r;
    if (route !== null) {
      r = this.routeIndex.get(route);
      if (r === undefined) {
        r = this.routes.length;
        this.routeIndex.set(route, r);
        this.routes.push(route);
      }
    }
    this.events.push({ input, route: r, key, value, timestampMs: ev._ts === null ? ts : ev._ts, headers });
  }

  /** @param {number} input @param {string} reason */
  fail(input, reason) {
    this.errors.push({ input, message: reason });
  }

  finish() {
    return {
      data: this.buf.subarray(0, this.len),
      events: this.events,
      headers: this.headers,
      routes: this.routes,
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
 * @param {Encoder} enc @param {number} i @param {bigint} ts @param {any} result @param {string} kind
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
 * The `weir:plugin/transformer` export for `plugin`.
 * @param {Plugin} plugin
 */
export function makeTransformer(plugin) {
  if (!plugin || typeof plugin.fn !== "function" || !["map", "filter", "flatMap", "batch"].includes(plugin.kind)) {
    throw new TypeError("the plugin module's default export must be weir.map(fn), weir.filter(fn), weir.flatMap(fn) or weir.batch(fn)");
  }
  /** @type {any} */
  let params = null;
  let started = false;
  return {
    /** @param {string} text */
    init(text) {
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
    },

    /** @param {any} batch */
    process(batch) {
      const enc = new Encoder(batch.data.length);
      const events = batch.events;
      if (!started) {
        for (let i = 0; i < events.length; i++) enc.fail(i, "the plugin was not initialized (init failed or was not called)");
        return enc.finish();
      }
      const { data, headers: table, streams } = batch;
      const fn = plugin.fn;
      const kind = plugin.kind;
      if (kind === "batch") return processBatch(batch, enc, fn, params);
      for (let i = 0; i < events.length; i++) {
        const raw = events[i];
        try {
          const ev = readEvent(data, raw, table, streams);
          const result = fn(ev, params);
          if (kind === "map") enc.emit(i, raw.timestampMs, null, mapped(result, ev));
          else if (kind === "filter") {
            if (result) enc.emit(i, raw.timestampMs, null, ev);
          } else outputs(enc, i, raw.timestampMs, result, kind);
        } catch (e) {
          enc.fail(i, message(e));
        }
      }
      return enc.finish();
    },
  };
}

/** @param {any} batch @param {Encoder} enc @param {Function} fn @param {any} params */
function processBatch(batch, enc, fn, params) {
  const { data, headers: table, streams } = batch;
  const events = [];
  const inputs = [];
  for (let i = 0; i < batch.events.length; i++) {
    try {
      events.push(readEvent(data, batch.events[i], table, streams));
      inputs.push(i);
    } catch (e) {
      enc.fail(i, message(e));
    }
  }
  let results;
  try {
    results = Array.from(fn(events, params));
  } catch (e) {
    const reason = message(e);
    for (const i of inputs) enc.fail(i, reason);
    return enc.finish();
  }
  if (results.length !== inputs.length) {
    const reason = `the batch function returned ${results.length} results for ${inputs.length} events (it must return one per event, in order)`;
    for (const i of inputs) enc.fail(i, reason);
    return enc.finish();
  }
  for (let j = 0; j < inputs.length; j++) {
    const i = inputs[j];
    const result = results[j];
    const ts = batch.events[i].timestampMs;
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
  return enc.finish();
}
