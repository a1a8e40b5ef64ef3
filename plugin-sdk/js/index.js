// @ts-check
/**
 * weir-sdk: write weir stream-transform plugins in JavaScript, as one function.
 *
 * ```js
 * import * as weir from "weir-sdk";
 *
 * export default weir.map((ev) => {
 *   const doc = ev.json();
 *   doc.name = doc.name.toUpperCase();   // no name: TypeError -> dead letter
 *   return ev.setJson(doc);
 * });
 * ```
 *
 * `weir plugin build DIR` turns the folder into a WebAssembly component for
 * the `weir:plugin/transform` world. See README.md.
 */

export { Event, Output, WeirError } from "./event.js";
export { InferError, Tensor, infer, log, nowMs } from "./host.js";

/**
 * @typedef {{ init?: (params: any) => any }} Options
 * `init(params)` runs once before any batch: throw to refuse the plugin;
 * what it returns (if not undefined) is the params value the function gets.
 */

/**
 * @param {"map" | "filter" | "flatMap" | "batch"} kind
 * @param {Function} fn
 * @param {Options} [options]
 */
function entry(kind, fn, options = {}) {
  if (typeof fn !== "function") throw new TypeError(`weir.${kind} takes a function`);
  return Object.freeze({ kind, fn, init: options.init });
}

/**
 * One event in, one out: `fn(ev, params)` returns the event (or a new value:
 * a string, a Uint8Array, or an object as its JSON). Throw to send the event
 * to the dead letters.
 * @param {(ev: import("./event.js").Event, params: any) => any} fn
 * @param {Options} [options]
 */
export function map(fn, options) {
  return entry("map", fn, options);
}

/**
 * Keep the event when `fn(ev, params)` is truthy.
 * @param {(ev: import("./event.js").Event, params: any) => any} fn
 * @param {Options} [options]
 */
export function filter(fn, options) {
  return entry("filter", fn, options);
}

/**
 * Zero or more outputs per event: an array of Events (default output) and
 * `Output.to("route", ev)`s, one Event, or null.
 * @param {(ev: import("./event.js").Event, params: any) => any} fn
 * @param {Options} [options]
 */
export function flatMap(fn, options) {
  return entry("flatMap", fn, options);
}

/**
 * The whole batch at once: `fn(events, params)` returns one result per
 * event, in order (what flatMap returns, or an Error: that event goes to the
 * dead letters).
 * @param {(events: import("./event.js").Event[], params: any) => any[]} fn
 * @param {Options} [options]
 */
export function batch(fn, options) {
  return entry("batch", fn, options);
}
