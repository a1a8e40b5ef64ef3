// @ts-check
/**
 * Host services: the log, the clock and the models. In a component the build's
 * generated entry installs the WIT imports (`setHost`); natively (unit tests)
 * the log goes to stderr, the clock is the system's, and `infer` calls the
 * handler installed with `testing.setInferHandler`.
 */

/** @type {{ log?: (level: string, message: string) => void, nowMs?: () => bigint, infer?: (model: string, inputs: any[]) => any[], world?: string }} */
const host = {};

/** @param {typeof host} imports */
export function setHost(imports) {
  Object.assign(host, imports);
}

const LEVELS = ["trace", "debug", "info", "warn", "error"];

/**
 * `log.info("...")` (and `trace`, `debug`, `warn`, `error`): a line in the
 * host's log, tagged with the stage and the plugin.
 */
export const log = {
  /** @param {string} message @param {string} [level] */
  write(message, level = "info") {
    if (!LEVELS.includes(level)) throw new RangeError(`log level must be one of ${LEVELS.join(", ")}`);
    if (host.log) host.log(level, String(message));
    else console.error(`[${level}] ${message}`);
  },
  /** @param {string} m */ trace(m) { log.write(m, "trace"); },
  /** @param {string} m */ debug(m) { log.write(m, "debug"); },
  /** @param {string} m */ info(m) { log.write(m, "info"); },
  /** @param {string} m */ warn(m) { log.write(m, "warn"); },
  /** @param {string} m */ error(m) { log.write(m, "error"); },
};

/** The host's wall clock, milliseconds since the Unix epoch. */
export function nowMs() {
  return host.nowMs ? Number(host.nowMs()) : Date.now();
}

/**
 * A model call failed. `kind` is `unknown-model`, `invalid-input`, `runtime`
 * or `unavailable`.
 */
export class InferError extends Error {
  /** @param {string} kind @param {string} detail */
  constructor(kind, detail) {
    const text = {
      "unknown-model": `no model named \`${detail}\` in the pipeline`,
      "invalid-input": `invalid model input: ${detail}`,
      runtime: `model run failed: ${detail}`,
    }[kind] || `inference unavailable: ${detail}`;
    super(text);
    this.name = "InferError";
    this.kind = kind;
    this.detail = detail;
  }
}

/** A named tensor: `shape[0]` is the row dimension; `data` row-major. */
export class Tensor {
  /**
   * @param {string} name
   * @param {number[]} shape
   * @param {Float32Array | BigInt64Array | number[]} data
   * @param {"f32" | "i64"} [dtype]
   */
  constructor(name, shape, data, dtype = "f32") {
    if (dtype !== "f32" && dtype !== "i64") throw new RangeError("tensor dtype must be 'f32' or 'i64'");
    this.name = name;
    this.shape = shape.map(Number);
    this.dtype = dtype;
    this.data =
      dtype === "f32"
        ? data instanceof Float32Array ? data : Float32Array.from(/** @type {number[]} */ (data))
        : data instanceof BigInt64Array ? data : BigInt64Array.from(/** @type {any[]} */ (data), (x) => BigInt(x));
  }

  /** @param {string} name @param {number[]} shape @param {Float32Array | number[]} data */
  static f32(name, shape, data) {
    return new Tensor(name, shape, data, "f32");
  }

  /** @param {string} name @param {number[]} shape @param {BigInt64Array | number[]} data */
  static i64(name, shape, data) {
    return new Tensor(name, shape, data, "i64");
  }

  get rows() {
    return this.shape.length ? this.shape[0] : 0;
  }
}

/** @type {((model: string, inputs: Tensor[]) => Tensor[]) | null} */
let nativeHandler = null;

/** @param {((model: string, inputs: Tensor[]) => Tensor[]) | null} handler */
export function setInferHandler(handler) {
  nativeHandler = handler;
}

const KINDS = { "unknown-model": 1, "invalid-input": 1, runtime: 1, unavailable: 1 };

/**
 * Runs the pipeline's model `model` on `inputs` (one tensor per model input);
 * returns its outputs. Put all the rows of a batch in one call (`batch`).
 * Throws `InferError`.
 * @param {string} model
 * @param {Tensor[]} inputs
 * @returns {Tensor[]}
 */
export function infer(model, inputs) {
  for (const t of inputs) if (!(t instanceof Tensor)) throw new TypeError("infer takes Tensor inputs");
  if (host.infer) {
    const raw = inputs.map((t) => ({ name: t.name, shape: t.shape, data: { tag: t.dtype === "f32" ? "f32" : "s64", val: t.data } }));
    let out;
    try {
      out = host.infer(model, raw);
    } catch (e) {
      const err = /** @type {any} */ (e);
      const payload = err && typeof err === "object" && "payload" in err ? err.payload : err;
      if (payload && typeof payload === "object" && payload.tag in KINDS) {
        throw new InferError(payload.tag, String(payload.val));
      }
      throw e;
    }
    return out.map((t) => new Tensor(t.name, Array.from(t.shape), t.data.val, t.data.tag === "f32" ? "f32" : "i64"));
  }
  if (host.log) {
    throw new InferError(
      "unavailable",
      `this plugin was built for the world \`${host.world || "transform"}\`, which has no models: ` +
        'set "weir": { "world": "transform-with-inference" } in its package.json',
    );
  }
  if (!nativeHandler) {
    throw new InferError("unavailable", "no host outside WebAssembly: install a stand-in with testing.setInferHandler in your test");
  }
  return nativeHandler(model, inputs);
}
