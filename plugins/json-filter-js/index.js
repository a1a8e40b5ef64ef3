// `json-filter-js`: the `json-filter` plugin, in JavaScript.
//
// Keeps, drops or routes JSON events by predicates on their fields, and
// optionally projects them to a subset of fields. Same params, semantics and
// error messages as the Rust `plugins/json-filter` (see its README), except
// where JavaScript has one number type: integers beyond 2^53 are not exact,
// and `1` and `1.0` are equal inside arrays and objects too. The integration
// tests run it and the Rust plugin on the same events and compare outputs.

import * as weir from "weir-sdk";

const OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "contains"];
const MISSING = Symbol("missing");

/** @param {string} path @returns {Array<[string, number | null]>} */
function parsePath(path) {
  if (path === "") throw new Error("a field path cannot be empty");
  return path.split(".").map((key) => {
    if (key === "") throw new Error(`field path \`${path}\` has an empty segment`);
    return [key, /^\+?[0-9]+$/.test(key) ? Number(key) : null];
  });
}

const isNumber = (/** @type {unknown} */ v) => typeof v === "number";
const isObject = (/** @type {unknown} */ v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Structural equality; numbers by value. @param {any} a @param {any} b @returns {boolean} */
function eq(a, b) {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => eq(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && eq(a[k], b[k]));
  }
  return a === b;
}

/** -1, 0, 1 for two numbers or two strings; null otherwise. @param {any} a @param {any} b */
function cmp(a, b) {
  if (isNumber(a) && isNumber(b)) return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "string" && typeof b === "string") {
    // Byte-wise (UTF-8) order, as in Rust: compare code points, not UTF-16 units.
    const x = Array.from(a, (c) => c.codePointAt(0));
    const y = Array.from(b, (c) => c.codePointAt(0));
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return x.length < y.length ? -1 : x.length > y.length ? 1 : 0;
  }
  return null;
}

/** @param {number} i @param {any} raw */
function condition(i, raw) {
  if (!isObject(raw)) throw new Error(`where[${i}]: a condition is a table {field, op, value}`);
  for (const k of Object.keys(raw)) if (!["field", "op", "value"].includes(k)) throw new Error(`where[${i}]: unknown field \`${k}\``);
  const field = raw.field;
  if (typeof field !== "string") throw new Error(`where[${i}]: missing field \`field\``);
  const op = raw.op;
  if (!OPS.includes(op)) throw new Error(`where[${i}] (field \`${field}\`): unknown variant \`${op}\`, expected one of ${OPS.join(", ")}`);
  const problem = (/** @type {string} */ text) => new Error(`where[${i}] (field \`${field}\`): ${text}`);
  let path;
  try {
    path = parsePath(field);
  } catch (e) {
    throw problem(/** @type {Error} */ (e).message);
  }
  const has = Object.hasOwn(raw, "value");
  let value = raw.value;
  if (op === "exists") {
    if (!has) value = true;
    else if (typeof value !== "boolean") throw problem("op `exists` takes `value` true or false (default true)");
  } else if (!has) throw problem(`op \`${op}\` needs a \`value\``);
  else if (["gt", "gte", "lt", "lte"].includes(op) && !(isNumber(value) || typeof value === "string")) {
    throw problem(`op \`${op}\` needs a number or string \`value\``);
  } else if (op === "in" && !Array.isArray(value)) throw problem("op `in` needs an array `value`");
  return { path, op, value };
}

/** @param {{ path: Array<[string, number | null]>, op: string, value: any }} c @param {any} event */
function holds(c, event) {
  /** @type {any} */
  let f = event;
  for (const [key, index] of c.path) {
    if (isObject(f)) f = Object.hasOwn(f, key) ? f[key] : MISSING;
    else if (Array.isArray(f) && index !== null && index < f.length) f = f[index];
    else f = MISSING;
    if (f === MISSING) break;
  }
  const { op, value } = c;
  if (f === MISSING) return op === "ne" || (op === "exists" && value === false);
  switch (op) {
    case "eq":
      return eq(f, value);
    case "ne":
      return !eq(f, value);
    case "gt":
    case "gte":
    case "lt":
    case "lte": {
      const r = cmp(f, value);
      if (r === null) return false;
      return op === "gt" ? r > 0 : op === "gte" ? r >= 0 : op === "lt" ? r < 0 : r <= 0;
    }
    case "in":
      return value.some((/** @type {any} */ o) => eq(f, o));
    case "exists":
      return value === true;
    default: // contains
      if (typeof f === "string" && typeof value === "string") return f.includes(value);
      if (Array.isArray(f)) return f.some((item) => eq(item, value));
      return false;
  }
}

/** `keep` paths as a tree of [key, children] (no children: keep whole). @param {string[]} paths */
function keepTree(paths) {
  /** @type {any[]} */
  const nodes = [];
  for (const path of paths) {
    let keys;
    try {
      keys = parsePath(path).map(([k]) => k);
    } catch (e) {
      throw new Error(`keep: ${/** @type {Error} */ (e).message}`);
    }
    let level = nodes;
    for (let depth = 0; depth < keys.length; depth++) {
      const last = depth === keys.length - 1;
      let node = level.find((n) => n[0] === keys[depth]);
      if (!node) {
        node = [keys[depth], []];
        level.push(node);
        if (last) break;
      } else if (node[1].length === 0) break;
      if (last) {
        node[1] = [];
        break;
      }
      level = node[1];
    }
  }
  return nodes;
}

/** The kept fields as JSON text, in `keep` order. @param {any} fields @param {any[]} nodes @returns {string} */
function project(fields, nodes) {
  const parts = [];
  for (const [key, children] of nodes) {
    if (!Object.hasOwn(fields, key)) continue;
    const value = fields[key];
    if (children.length === 0) parts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    else if (isObject(value)) parts.push(`${JSON.stringify(key)}:${project(value, children)}`);
  }
  return `{${parts.join(",")}}`;
}

/** @param {any} v */
function kind(v) {
  if (v === null) return "null";
  if (typeof v === "boolean") return "a boolean";
  if (isNumber(v)) return "a number";
  if (typeof v === "string") return "a string";
  return Array.isArray(v) ? "an array" : "an object";
}

/** Checks and compiles the params once. @param {any} params */
function compile(params) {
  for (const k of Object.keys(params)) {
    if (!["where", "match", "keep", "route"].includes(k)) throw new Error(`unknown field \`${k}\`, expected one of \`where\`, \`match\`, \`keep\`, \`route\``);
  }
  const where = params.where ?? [];
  if (!Array.isArray(where)) throw new Error("where: expected a list of conditions");
  const match = params.match ?? "all";
  if (match !== "all" && match !== "any") throw new Error("match: expected \"all\" or \"any\"");
  const keep = params.keep ?? null;
  if (keep !== null && !(Array.isArray(keep) && keep.every((k) => typeof k === "string"))) throw new Error("keep: expected a list of field paths");
  const route = params.route ?? null;
  if (route !== null && typeof route !== "string") throw new Error("route: expected a string");
  if (route === "") throw new Error("route: the output name cannot be empty");
  return { conditions: where.map((c, i) => condition(i, c)), any: match === "any", keep: keep === null ? null : keepTree(keep), route };
}

/** @param {weir.Event} ev @param {ReturnType<typeof compile>} p */
function jsonFilter(ev, p) {
  let value;
  try {
    value = ev.json();
  } catch (e) {
    throw new weir.WeirError(`event value is not JSON: ${/** @type {Error} */ (e).message}`);
  }
  const matches = p.any
    ? p.conditions.length === 0 || p.conditions.some((c) => holds(c, value))
    : p.conditions.every((c) => holds(c, value));
  if (!matches) return p.route !== null ? ev : null;
  if (p.keep !== null) {
    if (!isObject(value)) throw new weir.WeirError(`\`keep\` needs a JSON object event, got ${kind(value)}`);
    ev.value = project(value, p.keep);
  }
  return p.route !== null ? weir.Output.to(p.route, ev) : ev;
}

export default weir.flatMap(jsonFilter, {
  init(params) {
    try {
      return compile(params);
    } catch (e) {
      throw new weir.WeirError(`invalid params: ${/** @type {Error} */ (e).message}`);
    }
  },
});
