// The native addon's loader: loaded from the tree, or a reason that says what is wrong and how to fix it.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAddon } from './addon.js';

function fakeTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'remora-native-'));
  for (const [path, text] of Object.entries({ 'native/binding.gyp': '{}', ...files })) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test("this tree's addon loads (npm install built it)", () => {
  const r = loadAddon(dirname(fileURLToPath(import.meta.url)));
  assert.equal(r.ok, true, r.ok ? '' : r.reason);
});

test('an addon that was never built: the reason says so and how to build it', () => {
  const root = fakeTree({});
  try {
    const r = loadAddon(join(root, 'native'));
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, /missing: it was not built\. Build it with `npm rebuild remora`/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an addon whose build failed: the reason npm install recorded is given', () => {
  const root = fakeTree({ 'native/build/UNAVAILABLE': 'node-gyp exited with 1: make: g++: not found\n' });
  try {
    const r = loadAddon(root);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, /missing: node-gyp exited with 1: make: g\+\+: not found\./);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a corrupt addon file: the loader error is given, nothing throws', () => {
  const root = fakeTree({ 'native/build/Release/remora_native.node': 'not a shared object' });
  try {
    const r = loadAddon(root);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, /remora_native\.node cannot be loaded: /);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
