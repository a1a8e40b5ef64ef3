// @ts-check
/**
 * The packed batch of contract 0.2.0 (`wit/README.md`, "The packed batch"):
 * `process` takes one byte buffer and returns one. `readInput` checks the
 * whole input (directory, every span, range and index, as the Rust reader
 * `weir-batch` does) and turns it into `Event`s; `Packer` writes the output.
 * `writeInput` and `readOutput` are the other two directions, for native
 * runs (`weir-sdk/testing`) and the SDK's tests. Little-endian throughout;
 * tables start at multiples of 8 bytes.
 */

import { Event, WeirError } from "./event.js";

export const NONE = 0xffffffff;
export const KIND = { DATA: 1, EVENTS: 2, HEADERS: 3, STREAMS: 4, OUTPUTS: 5, ROUTES: 6, ERRORS: 7 };
const STRIDE = { EVENT: 48, HEADER: 16, SPAN: 8, OUTPUT: 40, ERROR: 12 };
const INPUT_KINDS = new Map([
  [KIND.DATA, 1],
  [KIND.EVENTS, STRIDE.EVENT],
  [KIND.HEADERS, STRIDE.HEADER],
  [KIND.STREAMS, STRIDE.SPAN],
]);
const OUTPUT_KINDS = new Map([
  [KIND.DATA, 1],
  [KIND.OUTPUTS, STRIDE.OUTPUT],
  [KIND.HEADERS, STRIDE.HEADER],
  [KIND.ROUTES, STRIDE.SPAN],
  [KIND.ERRORS, STRIDE.ERROR],
]);

const encoder = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder();

/** A buffer that breaks the layout's rules. */
export class FormatError extends WeirError {}

/** @typedef {{ offset: number, count: number, stride: number }} Section */

/**
 * The sections of the kinds in `known` (kind → least stride), each checked
 * to lie inside `buf`; unknown kinds are skipped.
 * @param {Uint8Array} buf @param {Map<number, number>} known
 * @returns {Map<number, Section>}
 */
function directory(buf, known) {
  if (buf.length < 8) throw new FormatError(`a ${buf.length}-byte buffer has no header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const format = view.getUint32(0, true);
  if (format !== 1) throw new FormatError(`unknown batch format ${format} (this reader knows 1)`);
  const n = view.getUint32(4, true);
  if (8 + n * 16 > buf.length) {
    throw new FormatError(`a directory of ${n} sections does not fit the ${buf.length}-byte buffer`);
  }
  /** @type {Map<number, Section>} */
  const found = new Map();
  for (let i = 0; i < n; i++) {
    const at = 8 + i * 16;
    const kind = view.getUint32(at, true);
    const least = known.get(kind);
    if (least === undefined) continue;
    const count = view.getUint32(at + 4, true);
    const offset = view.getUint32(at + 8, true);
    const stride = view.getUint32(at + 12, true);
    if (found.has(kind)) throw new FormatError(`section ${kind} appears twice`);
    if (stride < least || (least === 1 && stride !== 1)) {
      throw new FormatError(`section ${kind} has stride ${stride}, it needs ${least === 1 ? "" : "at least "}${least}`);
    }
    if (offset + count * stride > buf.length) {
      throw new FormatError(`section ${kind} (${count} × ${stride} bytes at ${offset}) is outside the ${buf.length}-byte buffer`);
    }
    found.set(kind, { offset, count, stride });
  }
  return found;
}

/** @param {Uint8Array} buf @param {Map<number, Section>} sections */
function dataOf(buf, sections) {
  const d = sections.get(KIND.DATA);
  return d === undefined ? new Uint8Array(0) : buf.subarray(d.offset, d.offset + d.count);
}

/**
 * How many events an input says it holds, read without checking the rest
 * (0 if even its directory is broken).
 * @param {Uint8Array} buf
 */
export function eventCount(buf) {
  try {
    const events = directory(buf, new Map([[KIND.EVENTS, STRIDE.EVENT]])).get(KIND.EVENTS);
    return events === undefined ? 0 : events.count;
  } catch (e) {
    if (e instanceof FormatError) return 0;
    throw e;
  }
}

/**
 * The events of a packed input batch. Throws `FormatError` (naming what is
 * wrong) for a buffer that is not valid: the caller fails every event.
 * @param {Uint8Array} buf
 * @returns {Event[]}
 */
export function readInput(buf) {
  const sections = directory(buf, INPUT_KINDS);
  const data = dataOf(buf, sections);
  const size = data.length;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const table = [];
  const hs = sections.get(KIND.HEADERS);
  if (hs !== undefined) {
    for (let i = 0; i < hs.count; i++) {
      const at = hs.offset + i * hs.stride;
      const no = view.getUint32(at, true), nl = view.getUint32(at + 4, true);
      const vo = view.getUint32(at + 8, true), vl = view.getUint32(at + 12, true);
      if (no + nl > size || vo + vl > size) throw new FormatError(`header ${i} has a span outside the data section`);
      table.push({ name: { offset: no, len: nl }, value: { offset: vo, len: vl } });
    }
  }
  /** @type {string[]} */
  const streams = [];
  const ss = sections.get(KIND.STREAMS);
  if (ss !== undefined) {
    for (let i = 0; i < ss.count; i++) {
      const at = ss.offset + i * ss.stride;
      const so = view.getUint32(at, true), sl = view.getUint32(at + 4, true);
      try {
        if (so + sl > size) throw new RangeError();
        streams.push(strict.decode(data.subarray(so, so + sl)));
      } catch {
        throw new FormatError(`stream ${i}: its name is outside the data section or not UTF-8`);
      }
    }
  }
  const out = [];
  const es = sections.get(KIND.EVENTS);
  if (es !== undefined) {
    for (let i = 0; i < es.count; i++) {
      const at = es.offset + i * es.stride;
      const ko = view.getUint32(at, true), kl = view.getUint32(at + 4, true);
      const vo = view.getUint32(at + 8, true), vl = view.getUint32(at + 12, true);
      const fh = view.getUint32(at + 16, true), hc = view.getUint32(at + 20, true);
      const st = view.getUint32(at + 24, true), part = view.getInt32(at + 28, true);
      if (vo + vl > size) throw new FormatError(`event ${i}: the value is outside the data section`);
      const ev = Object.create(Event.prototype);
      ev._value = data.subarray(vo, vo + vl);
      if (kl === NONE) ev._key = null;
      else if (ko + kl > size) throw new FormatError(`event ${i}: the key is outside the data section`);
      else ev._key = data.subarray(ko, ko + kl);
      if (hc) {
        if (fh + hc > table.length) throw new FormatError(`event ${i}: its header range is outside the headers`);
        ev._rawHeaders = { data, table, span: { offset: fh, len: hc } };
      } else ev._rawHeaders = null;
      if (st >= streams.length) throw new FormatError(`event ${i}: its stream index is out of range`);
      ev._headers = null;
      ev._ts = view.getBigInt64(at + 32, true);
      ev._position = { streams, stream: st, partition: part, offset: view.getBigInt64(at + 40, true), resolved: null };
      out.push(ev);
    }
  }
  return out;
}

/** The route names of an output batch, by index in order of first use (both contracts' writers). */
export class Routes {
  constructor() {
    /** @type {string[]} */ this.names = [];
    /** @type {Map<string, number>} */ this.byName = new Map();
  }

  /** The index of `route`, added at the end if new. @param {string} route */
  index(route) {
    let r = this.byName.get(route);
    if (r === undefined) {
      r = this.names.length;
      this.byName.set(route, r);
      this.names.push(route);
    }
    return r;
  }
}

/** A growing byte buffer (both contracts' writers). */
export class Bytes {
  constructor(size = 256) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }

  /** @param {number} n */
  room(n) {
    const end = this.len + n;
    if (end > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < end) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.len;
    this.len = end;
    return at;
  }

  /** @param {Uint8Array} bytes @returns {number} where they start */
  push(bytes) {
    const at = this.room(bytes.length);
    this.buf.set(bytes, at);
    return at;
  }

  /** @param {number[]} words */
  u32s(...words) {
    const at = this.room(words.length * 4);
    for (let i = 0; i < words.length; i++) this.view.setUint32(at + 4 * i, words[i], true);
  }

  /** @param {bigint} v */
  i64(v) {
    const at = this.room(8); // first: it may replace the view
    this.view.setBigInt64(at, v, true);
  }

  bytes() {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * Header, directory, the data section, then each table 8-aligned.
 * @param {Array<[number, Uint8Array, number]>} tables [kind, bytes, stride]
 * @param {Uint8Array} data
 */
function pack(tables, data) {
  const n = 1 + tables.length;
  let at = 8 + n * 16;
  const entries = [[KIND.DATA, data.length, at, 1]];
  at += data.length;
  const places = [];
  for (const [kind, table, stride] of tables) {
    at += -at & 7;
    entries.push([kind, table.length / stride, at, stride]);
    places.push(at);
    at += table.length;
  }
  const out = new Uint8Array(at);
  const view = new DataView(out.buffer);
  view.setUint32(0, 1, true);
  view.setUint32(4, n, true);
  entries.forEach((e, i) => e.forEach((w, j) => view.setUint32(8 + i * 16 + j * 4, w, true)));
  out.set(data, 8 + n * 16);
  tables.forEach(([, table], i) => out.set(table, places[i]));
  return out;
}

/** The output buffer being built: the data section and the tables. */
export class Packer {
  constructor(sizeHint = 256) {
    this.data = new Bytes(Math.max(64, sizeHint + (sizeHint >> 2)));
    this.outputs = new Bytes();
    this.headers = new Bytes();
    this.errors = new Bytes();
    this.routes = new Routes();
  }

  /**
   * @param {number} input @param {bigint} ts @param {string | null} route @param {Event} ev
   */
  emit(input, ts, route, ev) {
    const data = this.data;
    let ko = 0, kl = NONE;
    if (ev._key !== null) {
      kl = ev._key.length;
      ko = data.push(ev._key);
    }
    const vo = data.push(ev._value);
    let first = 0, count = 0;
    if (ev._rawHeaders !== null || (ev._headers !== null && ev._headers.length)) {
      const pairs = ev.headers;
      first = this.headers.len / STRIDE.HEADER;
      count = pairs.length;
      for (const [name, v] of pairs) {
        const nb = encoder.encode(name);
        const no = data.push(nb);
        this.headers.u32s(no, nb.length, data.push(v), v.length);
      }
    }
    const r = route === null ? NONE : this.routes.index(route);
    this.outputs.u32s(input, r, ko, kl, vo, ev._value.length, first, count);
    this.outputs.i64(ev._ts === null ? ts : ev._ts);
  }

  /** @param {number} input @param {string} reason */
  fail(input, reason) {
    const msg = encoder.encode(reason);
    this.errors.u32s(input, this.data.push(msg), msg.length);
  }

  finish() {
    const routes = new Bytes();
    for (const name of this.routes.names) {
      const nb = encoder.encode(name);
      routes.u32s(this.data.push(nb), nb.length);
    }
    return pack(
      [
        [KIND.OUTPUTS, this.outputs.bytes(), STRIDE.OUTPUT],
        [KIND.HEADERS, this.headers.bytes(), STRIDE.HEADER],
        [KIND.ROUTES, routes.bytes(), STRIDE.SPAN],
        [KIND.ERRORS, this.errors.bytes(), STRIDE.ERROR],
      ],
      this.data.bytes(),
    );
  }
}

/**
 * An input batch as the host writes it: `events`, each with its position
 * `[stream index, partition, offset]`, and the stream names.
 * @param {Event[]} events @param {string[]} streams @param {Array<[number, number, bigint]>} positions
 */
export function writeInput(events, streams, positions) {
  const data = new Bytes();
  const table = new Bytes();
  const headers = new Bytes();
  const spans = new Bytes();
  for (const name of streams) {
    const nb = encoder.encode(name);
    spans.u32s(data.push(nb), nb.length);
  }
  events.forEach((ev, i) => {
    const [st, part, off] = positions[i];
    const ko = ev.key === null ? 0 : data.push(ev.key);
    const kl = ev.key === null ? NONE : ev.key.length;
    const vo = data.push(ev.value);
    const first = headers.len / STRIDE.HEADER;
    for (const [name, v] of ev.headers) {
      const nb = encoder.encode(name);
      headers.u32s(data.push(nb), nb.length, data.push(v), v.length);
    }
    table.u32s(ko, kl, vo, ev.value.length, first, ev.headers.length, st, part >>> 0);
    table.i64(ev._ts === null ? 0n : ev._ts);
    table.i64(off);
  });
  return pack(
    [
      [KIND.EVENTS, table.bytes(), STRIDE.EVENT],
      [KIND.HEADERS, headers.bytes(), STRIDE.HEADER],
      [KIND.STREAMS, spans.bytes(), STRIDE.SPAN],
    ],
    data.bytes(),
  );
}

/**
 * The outputs `[input, route or null, Event]` and errors `[input, reason]`
 * of an output batch, checked as the host checks them.
 * @param {Uint8Array} buf
 */
export function readOutput(buf) {
  const sections = directory(buf, OUTPUT_KINDS);
  const data = dataOf(buf, sections);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  /** @param {number} o @param {number} n @param {string} what */
  const span = (o, n, what) => {
    if (o + n > data.length) throw new FormatError(`${what} is outside the data section`);
    return data.slice(o, o + n);
  };
  /** @param {Section | undefined} s @param {(at: number, i: number) => any} f */
  const each = (s, f) => (s === undefined ? [] : Array.from({ length: s.count }, (_, i) => f(s.offset + i * s.stride, i)));
  const u32 = (/** @type {number} */ at) => view.getUint32(at, true);
  const headers = each(sections.get(KIND.HEADERS), (at, i) => [
    lenient.decode(span(u32(at), u32(at + 4), `header ${i}'s name`)),
    span(u32(at + 8), u32(at + 12), `header ${i}'s value`),
  ]);
  const routes = each(sections.get(KIND.ROUTES), (at, i) => lenient.decode(span(u32(at), u32(at + 4), `route ${i}`)));
  const outputs = each(sections.get(KIND.OUTPUTS), (at, j) => {
    const r = u32(at + 4), kl = u32(at + 12), fh = u32(at + 24), hc = u32(at + 28);
    if (r !== NONE && r >= routes.length) throw new FormatError(`output ${j} names route ${r} of ${routes.length}`);
    if (fh + hc > headers.length) throw new FormatError(`output ${j}: its header range is outside the headers`);
    const ev = new Event(span(u32(at + 16), u32(at + 20), `output ${j}'s value`), {
      key: kl === NONE ? null : span(u32(at + 8), kl, `output ${j}'s key`),
      headers: headers.slice(fh, fh + hc),
    });
    ev._ts = view.getBigInt64(at + 32, true);
    return [u32(at), r === NONE ? null : routes[r], ev];
  });
  const errors = each(sections.get(KIND.ERRORS), (at, j) => [u32(at), lenient.decode(span(u32(at + 4), u32(at + 8), `error ${j}'s message`))]);
  return { outputs, errors };
}
