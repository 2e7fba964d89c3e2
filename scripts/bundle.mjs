// Bundles the compiled CLI into one ES module (dist/remora.mjs): one module graph instead of ~100 files
// keeps the sidecar's idle memory ~7 MiB lower. Identifiers are kept so stack traces stay readable.
import { readFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

// CommonJS dependencies that find their own files through __dirname (etcd3 loads its .proto files that way) get
// the directory they have in node_modules, computed at run time from where the bundle is.
const ownDirname = {
  name: 'own-dirname',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.c?js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!/\b__(dirname|filename)\b/.test(text)) return undefined;
      const file = JSON.stringify(relative(root, args.path).split('\\').join('/'));
      const prelude = `var __filename = __remoraJoin(__remoraRoot, ${file}), __dirname = __remoraDirname(__filename);`;
      return { contents: `${prelude}\n${text}`, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

await build({
  entryPoints: [`${root}/dist/src/cli/main.js`],
  outfile: `${root}/dist/remora.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  // CommonJS dependencies inside an ES module bundle need a require().
  banner: {
    js: [
      "import { createRequire as __remoraRequire } from 'node:module'; const require = __remoraRequire(import.meta.url);",
      "import { dirname as __remoraDirname, join as __remoraJoin } from 'node:path'; import { fileURLToPath as __remoraPath } from 'node:url'; const __remoraRoot = __remoraPath(new URL('..', import.meta.url));",
    ].join('\n'),
  },
  plugins: [ownDirname],
});
