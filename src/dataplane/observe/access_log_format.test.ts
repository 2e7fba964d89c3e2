// Tests the access-log format compiler: Envoy's default line, every operator, JSON typing and compile errors.

import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { AccessLogFormatError, compileFormat, validateFormat, withoutPort } from './access_log_format.js';
import { compileStartTimeFormat } from './start_time_format.js';
import { newStreamInfo, type StreamInfo } from './stream_info.js';

const START = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function sampleInfo(): StreamInfo {
  const info = newStreamInfo('HTTP/1.1', '10.1.2.3:45678', '10.0.0.9:8080');
  info.startTime = START;
  info.durationMs = 12.7;
  info.responseStartMs = 9.2;
  info.method = 'GET';
  info.path = '/api/v1/items?page=2';
  info.authority = 'shop.example';
  info.requestHeaders = {
    host: 'shop.example',
    'user-agent': 'curl/8.5.0',
    'x-request-id': 'abc-123',
    'x-forwarded-for': '192.168.0.1',
    accept: ['a', 'b'],
  };
  info.responseHeaders = ['x-envoy-upstream-service-time', '8', 'content-type', 'application/json'];
  info.responseCode = 200;
  info.responseCodeDetails = 'via_upstream';
  info.bytesReceived = 0;
  info.bytesSent = 1234;
  info.upstreamHost = '10.0.0.1:8080';
  info.upstreamCluster = 'web';
  info.upstreamLocalAddress = '10.0.0.9:50000';
  info.routeName = 'default';
  info.requestId = 'abc-123';
  info.attemptCount = 1;
  return info;
}

const text = (template: string) => compileFormat({ kind: 'text', template });

describe('text formats', () => {
  it("prints Envoy's default line", () => {
    assert.equal(
      compileFormat({ kind: 'text', template: '' })(sampleInfo()),
      '[2026-01-02T03:04:05.678Z] "GET /api/v1/items?page=2 HTTP/1.1" 200 - 0 1234 12 8 "192.168.0.1" ' +
        '"curl/8.5.0" "abc-123" "shop.example" "10.0.0.1:8080"\n',
    );
  });

  it('prints "-" for missing values', () => {
    const info = newStreamInfo('TCP', '10.1.2.3:1', '10.0.0.9:2');
    info.startTime = START;
    assert.equal(
      text('%REQ(:METHOD)% %PROTOCOL% %DURATION% %UPSTREAM_HOST% %RESPONSE_FLAGS% %ROUTE_NAME% %RESP(X)%')(
        info,
      ),
      '- - - - - - -',
    );
  });

  it('uses a custom template exactly as written', () => {
    assert.equal(text('%RESPONSE_CODE%')(sampleInfo()), '200');
    assert.equal(text('plain')(sampleInfo()), 'plain');
    assert.equal(text('100%% sure %RESPONSE_CODE%\n')(sampleInfo()), '100% sure 200\n');
  });

  it('resolves every operator', () => {
    const info = sampleInfo();
    info.responseFlags = ['UF', 'URX'];
    info.upstreamTransportFailureReason = 'connection refused';
    info.connectionTerminationDetails = 'idle_timeout';
    const cases: [string, string][] = [
      ['%REQ(:PATH)%', '/api/v1/items?page=2'],
      ['%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%', '/api/v1/items?page=2'],
      ['%REQ(X-MISSING?USER-AGENT)%', 'curl/8.5.0'],
      ['%REQ(USER-AGENT):4%', 'curl'],
      ['%REQ(:AUTHORITY)%', 'shop.example'],
      ['%REQ(HOST)%', 'shop.example'],
      ['%REQ(:SCHEME)%', 'http'],
      ['%REQ(ACCEPT)%', 'a'],
      ['%REQ_WITHOUT_QUERY(:PATH)%', '/api/v1/items'],
      ['%RESP(CONTENT-TYPE)%', 'application/json'],
      ['%RESP(:STATUS)%', '200'],
      ['%TRAILER(GRPC-STATUS)%', '-'],
      ['%PROTOCOL%', 'HTTP/1.1'],
      ['%RESPONSE_CODE_DETAILS%', 'via_upstream'],
      ['%RESPONSE_FLAGS%', 'UF,URX'],
      ['%RESPONSE_FLAGS_LONG%', 'UpstreamConnectionFailure,UpstreamRetryLimitExceeded'],
      ['%BYTES_RECEIVED% %BYTES_SENT%', '0 1234'],
      ['%DURATION% %RESPONSE_DURATION% %REQUEST_DURATION%', '12 9 -'],
      ['%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%', '10.0.0.1:8080 web 10.0.0.9:50000'],
      ['%UPSTREAM_TRANSPORT_FAILURE_REASON%', 'connection refused'],
      ['%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', '10.1.2.3:45678 10.1.2.3'],
      ['%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%', '10.0.0.9:8080 10.0.0.9'],
      ['%ROUTE_NAME%', 'default'],
      ['%CONNECTION_TERMINATION_DETAILS%', 'idle_timeout'],
      ['%UPSTREAM_REQUEST_ATTEMPT_COUNT%', '1'],
      ['%STREAM_ID%', 'abc-123'],
      ['%HOSTNAME%', hostname()],
      ['%START_TIME%', '2026-01-02T03:04:05.678Z'],
      ['%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%', '2026/01/02 03:04:05.678'],
      ['%START_TIME(%s)%', String(Math.floor(START / 1000))],
    ];
    for (const [template, want] of cases) assert.equal(text(template)(info), want, template);
  });

  it('strips ports from IPv6 addresses', () => {
    assert.equal(withoutPort('[::1]:8080'), '::1');
    assert.equal(withoutPort('::1'), '::1');
    assert.equal(withoutPort('10.0.0.1'), '10.0.0.1');
    assert.equal(withoutPort('-'), undefined);
  });

  it('rejects unknown operators and malformed commands at compile time', () => {
    assert.throws(() => text('%NOPE%'), AccessLogFormatError);
    assert.match(validateFormat('%NOPE%')!, /unknown command operator %NOPE%/);
    assert.match(validateFormat('50% done')!, /no valid command at position 2/);
    assert.match(validateFormat('%REQ%')!, /needs a header name/);
    assert.match(validateFormat('%REQ(A?B?C)%')!, /more than one alternative/);
    assert.match(validateFormat('%DURATION(x)%')!, /takes no argument/);
    assert.equal(validateFormat('[%START_TIME%] %REQ(:METHOD)%\n'), undefined);
    assert.match(validateFormat({ kind: 'json', fields: { a: { b: '%BAD%' } } })!, /field 'a\.b'.*%BAD%/);
    assert.match(validateFormat({ kind: 'json', fields: { a: [1] } })!, /field 'a'/);
  });
});

describe('json formats', () => {
  it('writes one object per line with typed values', () => {
    const format = compileFormat({
      kind: 'json',
      fields: {
        start: '%START_TIME%',
        method: '%REQ(:METHOD)%',
        code: '%RESPONSE_CODE%',
        duration: '%DURATION%',
        sent: '%BYTES_SENT%',
        route: '%ROUTE_NAME%',
        missing: '%REQ(X-NONE)%',
        missingNumber: '%RESPONSE_DURATION%',
        mixed: '%REQ(:METHOD)% %RESPONSE_CODE% %REQ(X-NONE)%',
        quoted: '"%REQ(USER-AGENT)%"',
        literal: 'static',
        number: 7,
        flag: true,
        nested: { cluster: '%UPSTREAM_CLUSTER%', attempts: '%UPSTREAM_REQUEST_ATTEMPT_COUNT%' },
      },
    });
    const info = sampleInfo();
    info.responseStartMs = undefined;
    const line = format(info);
    assert.ok(line.endsWith('}\n'));
    assert.equal(line.split('\n').length, 2);
    assert.deepEqual(JSON.parse(line), {
      start: '2026-01-02T03:04:05.678Z',
      method: 'GET',
      code: 200,
      duration: 12,
      sent: 1234,
      route: 'default',
      missing: null,
      missingNumber: null,
      mixed: 'GET 200 -',
      quoted: '"curl/8.5.0"',
      literal: 'static',
      number: 7,
      flag: true,
      nested: { cluster: 'web', attempts: 1 },
    });
    // Keys keep the configured order.
    assert.deepEqual(Object.keys(JSON.parse(line)).slice(0, 3), ['start', 'method', 'code']);
  });

  it('escapes strings', () => {
    const info = sampleInfo();
    info.requestHeaders = { 'user-agent': 'a"b\\c\u0001' };
    const line = compileFormat({ kind: 'json', fields: { ua: '%REQ(USER-AGENT)%' } })(info);
    assert.deepEqual(JSON.parse(line), { ua: 'a"b\\c\u0001' });
  });
});

describe('compileStartTimeFormat', () => {
  it('formats UTC fields', () => {
    const f = compileStartTimeFormat('%F %T %j %a %b %e %y %z %Z %6f %9f %E3S %% %Q');
    assert.equal(f(START), '2026-01-02 03:04:05 002 Fri Jan  2 26 +0000 UTC 678000 678000000 05.678 % %Q');
  });
});

describe('downstream peer certificate operators', () => {
  const format = compileFormat({
    kind: 'text',
    template: '%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_PEER_DNS_SAN% "%DOWNSTREAM_PEER_SUBJECT%"',
  });
  it('print the SANs joined with "," and the RFC 2253 subject', () => {
    const info = sampleInfo();
    info.downstreamPeer = {
      uriSans: ['spiffe://cluster.local/ns/a/sa/b', 'spiffe://x/y'],
      dnsSans: ['a.example'],
      subject: 'CN=b,O=a',
    };
    assert.equal(format(info), 'spiffe://cluster.local/ns/a/sa/b,spiffe://x/y a.example "CN=b,O=a"');
  });
  it('print "-" without a client certificate, or without those names', () => {
    assert.equal(format(sampleInfo()), '- - "-"');
    const info = sampleInfo();
    info.downstreamPeer = { uriSans: [], dnsSans: [], subject: '' };
    assert.equal(format(info), '- - "-"');
  });
});
