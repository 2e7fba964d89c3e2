// Bundles the compiled CLI into dist/remora.mjs (the entry bin/remora runs) and shared chunks in dist/chunks/:
// a few files instead of ~100 keeps the sidecar's idle memory lower, and splitting at the CLI's dynamic imports
// keeps what a command does not use (the control plane's Kubernetes and etcd clients, gRPC for ADS, X.509 for
// workload certificates) out of `remora proxy` with a static bootstrap. Identifiers are kept so stack traces stay
// readable. Writes dist/remora.meta.json (esbuild's metafile) to see what each chunk holds.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

// CommonJS dependencies that find their own files through __dirname (etcd3 loads its .proto files that way) get
// the directory they have in node_modules, computed at run time from where the bundle is.
function ownDirname(path, text) {
  if (!/\b__(dirname|filename)\b/.test(text)) return text;
  const file = JSON.stringify(relative(root, path).split('\\').join('/'));
  return `var __filename = __remoraJoin(__remoraRoot, ${file}), __dirname = __remoraDirname(__filename);\n${text}`;
}

// Built-ins that dependencies require at load but use only on paths a sidecar rarely or never takes are required
// when first used: commander's child_process runs git-style executable subcommands, which Remora's CLI does not have
// (with the dgram and socket-list modules it brings, ~0.5 MiB); sonic-boom asserts with node:assert only when an
// access log closes. A dependency that changes these lines fails the build rather than loading them eagerly again.
const LAZY_REQUIRES = [
  {
    file: /[\\/]commander[\\/]lib[\\/]command\.js$/,
    eager: "const childProcess = require('node:child_process');",
    lazy: "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };",
  },
  {
    file: /[\\/]sonic-boom[\\/]index\.js$/,
    eager: "const assert = require('assert')",
    lazy: "const assert = (...a) => require('assert')(...a)",
  },
];

function lazyRequires(path, text) {
  for (const r of LAZY_REQUIRES) {
    if (!r.file.test(path)) continue;
    if (!text.includes(r.eager)) throw new Error(`${path}: expected \`${r.eager}\` to make it lazy`);
    return text.replace(r.eager, r.lazy);
  }
  return text;
}

// esbuild runs one onLoad per file: the rewrites of dependencies' sources are applied in turn in this one.
const dependencyRewrites = {
  name: 'dependency-rewrites',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.c?js$/ }, async (args) => {
      const original = await readFile(args.path, 'utf8');
      const text = ownDirname(args.path, lazyRequires(args.path, original));
      if (text === original) return undefined;
      return { contents: text, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

// Remora's own imports of Node built-ins become require() calls that take only the names imported: an ES module
// import of a built-in builds its namespace by reading every export, which runs the lazy getters (node:crypto's
// webcrypto, among others) and loads modules a sidecar never uses, ~0.8 MiB of its memory.
const requiredBuiltins = {
  name: 'required-builtins',
  setup(b) {
    const statement = /^import\s+(?:\{([^}]*)\}|\*\s+as\s+([\w$]+)|([\w$]+))\s+from\s+'(node:[\w/]+)';$/gm;
    b.onLoad({ filter: /[\\/]dist[\\/]src[\\/].*\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const contents = text.replace(statement, (_, names, star, def, id) => {
        const call = `require(${JSON.stringify(id)})`;
        if (names === undefined) return `const ${star ?? def} = ${call};`;
        return `const { ${names.replace(/\s+as\s+/g, ': ').trim()} } = ${call};`;
      });
      return { contents, loader: 'js' };
    });
  },
};

// Chunks of an earlier build would linger: their names carry a content hash.
await rm(`${root}/dist/chunks`, { recursive: true, force: true });

const result = await build({
  entryPoints: [`${root}/dist/src/cli/main.js`],
  outdir: `${root}/dist`,
  entryNames: 'remora',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  metafile: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  // CommonJS dependencies inside an ES module bundle need a require(). esbuild puts the banner at the top of
  // every output file, chunks included; __remoraRoot is the repository (or package) root, which is one directory
  // above dist/remora.mjs and two above dist/chunks/*.mjs. The banner is not parsed, so esbuild cannot rename
  // around it: it names the global URL, which a rewritten `const { URL } = require('node:url')` would shadow.
  banner: {
    js: [
      "import { createRequire as __remoraRequire } from 'node:module'; const require = __remoraRequire(import.meta.url);",
      "import { dirname as __remoraDirname, join as __remoraJoin } from 'node:path'; import { fileURLToPath as __remoraPath } from 'node:url'; const __remoraRoot = __remoraPath(new globalThis.URL(/\\/chunks\\/[^/]*$/.test(import.meta.url) ? '../..' : '..', import.meta.url));",
    ].join('\n'),
  },
  plugins: [dependencyRewrites, requiredBuiltins],
});
await writeFile(`${root}/dist/remora.meta.json`, JSON.stringify(result.metafile));
