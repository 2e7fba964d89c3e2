// Tests AccessLogger sinks: file writes after close, shared destinations, drops when the buffer is full.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AccessLogger } from './access_log.js';
import { StatsStore } from './stats.js';
import { newStreamInfo, type StreamInfo } from './stream_info.js';

function info(code: number): StreamInfo {
  const i = newStreamInfo('HTTP/1.1', '127.0.0.1:5000', '127.0.0.1:8080');
  i.method = 'GET';
  i.path = `/r/${code}`;
  i.responseCode = code;
  i.durationMs = 1;
  return i;
}

describe('AccessLogger', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'remora-access-log-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the default format to a file, flushed by close()', async () => {
    const path = join(dir, 'nested', 'access.log');
    const logger = new AccessLogger({
      name: 'a',
      sink: { kind: 'file', path },
      format: { kind: 'text', template: '' },
    });
    for (let i = 0; i < 3; i++) logger.log(info(200 + i));
    await logger.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(
      lines[0]!,
      /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/r\/200 HTTP\/1\.1" 200 - 0 0 1 /,
    );
    // Logging after close drops the line instead of throwing.
    logger.log(info(500));
    assert.equal(logger.droppedLines, 1);
  });

  it('appends JSON lines, and shares one destination between loggers', async () => {
    const path = join(dir, 'json.log');
    const config = {
      sink: { kind: 'file' as const, path },
      format: { kind: 'json' as const, fields: { code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%' } },
    };
    const a = new AccessLogger({ name: 'a', ...config });
    const b = new AccessLogger({ name: 'b', ...config });
    for (let i = 0; i < 100; i++) (i % 2 ? a : b).log(info(200 + (i % 3)));
    await a.close();
    // The destination stays open for b.
    b.log(info(404));
    await b.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 101);
    for (const line of lines) assert.equal(typeof JSON.parse(line).code, 'number');
    assert.deepEqual(JSON.parse(lines.at(-1)!), { code: 404, path: '/r/404' });
  });

  it('drops and counts lines beyond the buffer bound', async () => {
    const path = join(dir, 'bounded.log');
    const stats = new StatsStore();
    const logger = new AccessLogger(
      { name: 'small', sink: { kind: 'file', path }, format: { kind: 'text', template: '%REQ(:PATH)%\n' } },
      { stats, maxBufferBytes: 64, minLength: 0 },
    );
    // The file is still being opened: everything waits in the buffer, so most lines are dropped.
    for (let i = 0; i < 50; i++) logger.log(info(200));
    assert.ok(logger.droppedLines > 0);
    assert.equal(stats.counter('access_logs.file.write_dropped').value, logger.droppedLines);
    await logger.close();
    const written = (await readFile(path, 'utf8')).trimEnd().split('\n');
    assert.equal(written.length + logger.droppedLines, 50);
  });

  it('counts an unopenable destination and still closes', async () => {
    const stats = new StatsStore();
    // A directory cannot be opened for appending.
    const logger = new AccessLogger(
      { name: 'bad', sink: { kind: 'file', path: dir }, format: { kind: 'text', template: '' } },
      { stats },
    );
    logger.log(info(200));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stats.counter('access_logs.file.write_failed').value, 1);
    logger.log(info(200));
    assert.ok(logger.droppedLines >= 1);
    await logger.close();
  });

  it('rejects a bad format in the constructor', () => {
    assert.throws(
      () =>
        new AccessLogger({
          name: 'x',
          sink: { kind: 'stdout' },
          format: { kind: 'text', template: '%WHAT%' },
        }),
      /unknown command operator %WHAT%/,
    );
  });
});
