// Builds a weir JavaScript plugin folder into a WebAssembly component.
//
//   node build.mjs --plugin DIR --wit WIT_DIR --world WORLD --out FILE.wasm --toolchain PREFIX
//
// Run by `weir plugin build`; PREFIX is the npm prefix holding the pinned
// componentize-js (scripts/toolchains.sh js prints it). It copies the plugin and this SDK into a
// scratch folder, points the plugin's `weir-sdk` imports at the copy, writes
// the entry module (the WIT imports handed to the SDK, and the
// `weir:plugin/transformer` export made from the plugin's default export),
// and calls componentize-js with every optional WASI feature disabled: the
// component imports nothing but the weir world.

import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const need of ["plugin", "wit", "world", "out", "toolchain"]) {
  if (!args[need]) {
    console.error(`build.mjs: missing --${need}`);
    process.exit(2);
  }
}
const sdk = dirname(fileURLToPath(import.meta.url));
const pluginDir = resolve(args.plugin);
const pkg = JSON.parse(await readFile(join(pluginDir, "package.json"), "utf8"));
const main = (pkg.main || "index.js").replace(/^\.\//, "");

// The contract version the imports name: `package weir:plugin@X.Y.Z;`.
let version = null;
for (const f of await readdir(args.wit)) {
  if (!f.endsWith(".wit")) continue;
  const m = (await readFile(join(args.wit, f), "utf8")).match(/package\s+weir:plugin@([0-9.]+)\s*;/);
  if (m) version = m[1];
}
if (!version) {
  console.error(`build.mjs: no \`package weir:plugin@...\` in ${args.wit}`);
  process.exit(2);
}

const SKIP = new Set(["node_modules", ".git", "target", "build", "dist"]);
const work = await mkdtemp(join(tmpdir(), "weir-js-build-"));
try {
  await cp(pluginDir, join(work, "app"), {
    recursive: true,
    filter: (src) => {
      const rel = relative(pluginDir, src);
      if (rel === "") return true;
      const first = rel.split(sep)[0];
      return !SKIP.has(first) && !first.startsWith(".") && !src.endsWith(".wasm");
    },
  });
  await cp(sdk, join(work, "weir-sdk"), {
    recursive: true,
    filter: (src) => !src.includes(`${sep}test`) && !src.includes("node_modules"),
  });

  // `from "weir-sdk"` -> the copy, relative to each module.
  const rewrite = async (dir) => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if ((await stat(path)).isDirectory()) {
        await rewrite(path);
      } else if (/\.(m?js)$/.test(name)) {
        const text = await readFile(path, "utf8");
        let target = relative(dirname(path), join(work, "weir-sdk", "index.js")).split(sep).join("/");
        if (!target.startsWith(".")) target = `./${target}`;
        const out = text.replace(/(from\s*|import\s*\(?\s*)(["'])weir-sdk\2/g, `$1$2${target}$2`);
        if (out !== text) await writeFile(path, out);
      }
    }
  };
  await rewrite(join(work, "app"));

  const inference = args.world === "transform-with-inference";
  const entry = [
    `import { log } from "weir:plugin/log@${version}";`,
    `import { nowMs } from "weir:plugin/clock@${version}";`,
    inference ? `import { infer } from "weir:plugin/inference@${version}";` : "",
    `import { setHost } from "./weir-sdk/host.js";`,
    `import { makeTransformer } from "./weir-sdk/runtime.js";`,
    `import plugin from "./app/${main}";`,
    `setHost({ log, nowMs, ${inference ? "infer, " : ""}world: ${JSON.stringify(args.world)} });`,
    // 0.2.x: the packed batch; 0.1.x: the record batch.
    `export const transformer = makeTransformer(plugin, { contract: ${JSON.stringify(version.startsWith("0.1.") ? "0.1" : "0.2")} });`,
    "",
  ].join("\n");
  await writeFile(join(work, "entry.js"), entry);

  const pkgDir = join(resolve(args.toolchain), "node_modules", "@bytecodealliance", "componentize-js");
  const cjsPkg = JSON.parse(await readFile(join(pkgDir, "package.json"), "utf8"));
  const entryFile = (cjsPkg.exports && cjsPkg.exports.import) || cjsPkg.main || "src/componentize.js";
  const { componentize } = await import(pathToFileURL(join(pkgDir, entryFile)).href);
  const { component } = await componentize({
    sourcePath: join(work, "entry.js"),
    witPath: resolve(args.wit),
    worldName: args.world,
    disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
  });
  const tmp = `${args.out}.tmp-${process.pid}`;
  await writeFile(tmp, component);
  const { rename } = await import("node:fs/promises");
  await rename(tmp, args.out);
} finally {
  await rm(work, { recursive: true, force: true });
}
