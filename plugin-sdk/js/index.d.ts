// Type declarations for weir-sdk (JavaScript plugins for weir).

export type Bytes = Uint8Array | string;

/** Where an event was read from (read-only). */
export interface Position {
  readonly stream: string;
  readonly partition: number;
  readonly offset: number;
}

/** One event. Values, keys and header values accept strings (stored as UTF-8). */
export class Event {
  constructor(value?: Bytes, options?: { key?: Bytes | null; headers?: Array<[string, Bytes]>; timestampMs?: number | null });
  /** A new event whose value is `obj` as JSON. */
  static fromJson(obj: unknown, options?: { key?: Bytes | null; headers?: Array<[string, Bytes]>; timestampMs?: number | null }): Event;
  get value(): Uint8Array;
  set value(v: Bytes);
  /** The value as UTF-8 text. */
  text(): string;
  /** The value parsed as JSON (a SyntaxError sends the event to the dead letters). */
  json(): any;
  /** Sets the value to `obj` as JSON; returns the event. */
  setJson(obj: unknown): this;
  get key(): Uint8Array | null;
  set key(k: Bytes | null);
  /** Milliseconds since the Unix epoch; null on a new event (it gets its input's). */
  get timestampMs(): number | null;
  set timestampMs(t: number | null);
  /** The headers, `[name, value]` pairs you may change. */
  get headers(): Array<[string, Uint8Array]>;
  set headers(pairs: Array<[string, Bytes]>);
  header(name: string): Uint8Array | null;
  headerText(name: string): string | null;
  /** Sets header `name`, replacing every header of that name. */
  setHeader(name: string, value: Bytes): this;
  removeHeader(name: string): this;
  get position(): Position;
  /** A copy (same position). */
  copy(): Event;
}

/** An output of flatMap or batch: the default output, or a named one. */
export class Output {
  constructor(event: Event, route?: string | null);
  static to(route: string, event: Event): Output;
  readonly event: Event;
  readonly route: string | null;
}

/** Thrown for an event: its message alone is the dead-letter reason. */
export class WeirError extends Error {
  constructor(message: string);
}

/** A model call failed. */
export class InferError extends Error {
  constructor(kind: "unknown-model" | "invalid-input" | "runtime" | "unavailable", detail: string);
  readonly kind: "unknown-model" | "invalid-input" | "runtime" | "unavailable";
  readonly detail: string;
}

/** A named tensor; `shape[0]` is the row dimension, `data` row-major. */
export class Tensor {
  constructor(name: string, shape: number[], data: Float32Array | BigInt64Array | number[], dtype?: "f32" | "i64");
  static f32(name: string, shape: number[], data: Float32Array | number[]): Tensor;
  static i64(name: string, shape: number[], data: BigInt64Array | number[]): Tensor;
  readonly name: string;
  readonly shape: number[];
  readonly dtype: "f32" | "i64";
  readonly data: Float32Array | BigInt64Array;
  readonly rows: number;
}

/** Runs the pipeline's model on one tensor per model input (world transform-with-inference). */
export function infer(model: string, inputs: Tensor[]): Tensor[];

/** The host's log, tagged with the stage and plugin. */
export const log: {
  write(message: string, level?: "trace" | "debug" | "info" | "warn" | "error"): void;
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** The host's wall clock, ms since the Unix epoch. */
export function nowMs(): number;

export type Many = Event | Output | null | undefined | Array<Event | Output>;

export interface Options<P> {
  /** Runs once before any batch: throw to refuse the plugin; its result (if not undefined) is the params value the function gets. */
  init?: (params: any) => P | void;
}

export interface Plugin {
  readonly kind: "map" | "filter" | "flatMap" | "batch";
}

/** One event in, one out (an Event, a new value, or an object as its JSON). */
export function map<P = any>(fn: (ev: Event, params: P) => Event | Bytes | object, options?: Options<P>): Plugin;
/** Keep the event when `fn` is truthy. */
export function filter<P = any>(fn: (ev: Event, params: P) => unknown, options?: Options<P>): Plugin;
/** Zero or more outputs per event. */
export function flatMap<P = any>(fn: (ev: Event, params: P) => Many, options?: Options<P>): Plugin;
/** The whole batch: one result per event, in order (or an Error: that event is a dead letter). */
export function batch<P = any>(fn: (events: Event[], params: P) => Array<Many | Error>, options?: Options<P>): Plugin;
