// @ts-check
/** `Event`, `Output` and `WeirError`: what a plugin function sees. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * @param {Uint8Array | string | ArrayBufferView} value
 * @param {string} what
 * @returns {Uint8Array}
 */
export function toBytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return encoder.encode(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new TypeError(`${what} must be a Uint8Array or a string, not ${typeof value}`);
}

/**
 * Throw it (or any error) for an event: the event goes to the dead-letter
 * output with the message as the reason. A `WeirError` gives the message
 * alone; other errors are prefixed with their name (`TypeError: ...`).
 */
export class WeirError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "WeirError";
  }
}

/** @typedef {{ stream: string, partition: number, offset: number }} Position */

const NO_POSITION = Object.freeze({ stream: "", partition: -1, offset: -1 });

/**
 * One event: `key` (Uint8Array or null), `value` (Uint8Array), `headers`
 * (an array of `[name, Uint8Array]` pairs), `timestampMs` (a number, ms since
 * the Unix epoch, or null for a new event: it then gets its input's),
 * read-only `position`. Values, keys and header values accept strings too
 * (stored as UTF-8).
 */
export class Event {
  /**
   * @param {Uint8Array | string} [value]
   * @param {{ key?: Uint8Array | string | null, headers?: Array<[string, Uint8Array | string]>, timestampMs?: number | null }} [options]
   */
  constructor(value = new Uint8Array(0), options = {}) {
    /** @type {Uint8Array} */
    this._value = toBytes(value, "value");
    /** @type {Uint8Array | null} */
    this._key = options.key == null ? null : toBytes(options.key, "key");
    /** @type {Array<[string, Uint8Array]> | null} */
    this._headers = (options.headers || []).map(([n, v]) => [String(n), toBytes(v, "header value")]);
    /** @type {any} */
    this._rawHeaders = null;
    /** @type {bigint | null} */
    this._ts = options.timestampMs == null ? null : BigInt(Math.trunc(options.timestampMs));
    /** @type {any} */
    this._position = NO_POSITION;
  }

  /** A new event whose value is `obj` as JSON. */
  static fromJson(/** @type {any} */ obj, /** @type {any} */ options = {}) {
    return new Event(JSON.stringify(obj), options);
  }

  /** @returns {Uint8Array} */
  get value() {
    return this._value;
  }

  set value(v) {
    this._value = toBytes(v, "value");
  }

  /** The value as UTF-8 text. */
  text() {
    return decoder.decode(this._value);
  }

  /** The value parsed as JSON (a `SyntaxError` sends the event to the dead letters). */
  json() {
    return JSON.parse(decoder.decode(this._value));
  }

  /** Sets the value to `obj` as JSON; returns the event. */
  setJson(/** @type {any} */ obj) {
    this._value = encoder.encode(JSON.stringify(obj));
    return this;
  }

  /** @returns {Uint8Array | null} */
  get key() {
    return this._key;
  }

  set key(k) {
    this._key = k == null ? null : toBytes(k, "key");
  }

  /** @returns {number | null} */
  get timestampMs() {
    return this._ts === null ? null : Number(this._ts);
  }

  set timestampMs(t) {
    this._ts = t == null ? null : BigInt(Math.trunc(t));
  }

  /** The headers, an array of `[name, value]` pairs you may change. */
  get headers() {
    if (this._rawHeaders !== null) {
      this._headers = readHeaders(this._rawHeaders);
      this._rawHeaders = null;
    } else if (this._headers === null) {
      this._headers = [];
    }
    return /** @type {Array<[string, Uint8Array]>} */ (this._headers);
  }

  set headers(pairs) {
    this._rawHeaders = null;
    this._headers = pairs.map(([n, v]) => [String(n), toBytes(v, "header value")]);
  }

  /** The first header called `name` (its bytes), or null. */
  header(/** @type {string} */ name) {
    for (const [n, v] of this.headers) if (n === name) return v;
    return null;
  }

  /** The first header called `name` as text, or null. */
  headerText(/** @type {string} */ name) {
    const v = this.header(name);
    return v === null ? null : decoder.decode(v);
  }

  /** Sets header `name`, replacing every header of that name; returns the event. */
  setHeader(/** @type {string} */ name, /** @type {Uint8Array | string} */ value) {
    const bytes = toBytes(value, "header value");
    const kept = this.headers.filter(([n]) => n !== name);
    kept.push([name, bytes]);
    this._headers = kept;
    return this;
  }

  removeHeader(/** @type {string} */ name) {
    this._headers = this.headers.filter(([n]) => n !== name);
    return this;
  }

  /** Where the input was read from (read-only). @returns {Position} */
  get position() {
    const p = this._position;
    if (p === NO_POSITION || p.resolved) return p.resolved || p;
    // Set by a batch reader: `{ streams, raw: <the WIT position record> }`
    // (0.1.x), or `{ streams, stream, partition, offset }` (0.2.0: one
    // object per event).
    const streams = p.streams;
    const raw = p.raw || p;
    const resolved = Object.freeze({
      stream: raw.stream < streams.length ? streams[raw.stream] : "",
      partition: raw.partition,
      offset: Number(raw.offset),
    });
    p.resolved = resolved;
    return resolved;
  }

  /** A copy (same position), e.g. to change one of two outputs. */
  copy() {
    const ev = new Event(this._value, { key: this._key });
    ev._headers = this.headers.slice();
    ev._ts = this._ts;
    ev._position = this._position;
    return ev;
  }
}

/** @param {{ data: Uint8Array, table: any[], span: { offset: number, len: number } }} raw */
function readHeaders({ data, table, span }) {
  const end = span.offset + span.len;
  if (end > table.length) {
    throw new WeirError(
      `malformed input batch: header range ${span.offset}+${span.len} is outside its table (${table.length} entries)`,
    );
  }
  /** @type {Array<[string, Uint8Array]>} */
  const out = [];
  for (let i = span.offset; i < end; i++) {
    const { name, value } = table[i];
    out.push([
      decoder.decode(data.subarray(name.offset, name.offset + name.len)),
      data.subarray(value.offset, value.offset + value.len),
    ]);
  }
  return out;
}

/**
 * An output of `flatMap` or `batch`: `new Output(ev)` goes to the default
 * output, `Output.to("alerts", ev)` to the named output `alerts`.
 */
export class Output {
  /**
   * @param {Event} event
   * @param {string | null} [route]
   */
  constructor(event, route = null) {
    if (!(event instanceof Event)) throw new TypeError("Output takes an Event");
    if (route !== null && typeof route !== "string") throw new TypeError("an output route is a string");
    this.event = event;
    this.route = route;
  }

  /**
   * @param {string} route
   * @param {Event} event
   */
  static to(route, event) {
    return new Output(event, route);
  }
}
