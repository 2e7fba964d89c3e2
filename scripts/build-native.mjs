// `npm install` step: builds Remora's native addon (native/: original destinations of captured connections, the
// kernel TCP relay, memory release) with the node-gyp that ships with npm. A failed build is not fatal: the proxy
// runs without the addon and only transparent capture mode refuses to start, saying why (the reason is kept in
// native/build/UNAVAILABLE).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const marker = join(nativeDir, 'build', 'UNAVAILABLE');

/** npm names its node-gyp in lifecycle scripts; otherwise use the one bundled with the npm next to this node. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  return candidates.find((c) => c && existsSync(c));
}

function fail(reason) {
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, `${reason}\n`);
  process.stderr.write(
    `remora: the native addon could not be built (${reason}).\n` +
      'remora: the proxy works without it; transparent capture (use_original_dst, original_dst) is unavailable, TCP is relayed by Node and memory is left to V8.\n',
  );
  process.exit(0);
}

if (process.platform !== 'linux') fail(`transparent capture needs Linux, this is ${process.platform}`);
const gyp = nodeGyp();
if (!gyp) fail('node-gyp was not found (it ships with npm)');
rmSync(marker, { force: true });
const args = [gyp, 'rebuild', '--directory', nativeDir];
// Build against the headers of the node that runs Remora when they are installed beside it (no download).
const localHeaders = join(dirname(process.execPath), '..');
const nodedir =
  process.env.npm_config_nodedir ||
  (existsSync(join(localHeaders, 'include', 'node', 'node_api.h')) ? localHeaders : undefined);
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  const tail = `${r.stderr ?? ''}${r.error?.message ?? ''}`.trim().split('\n').slice(-3).join(' | ');
  fail(`node-gyp exited with ${r.status}: ${tail}`);
}
