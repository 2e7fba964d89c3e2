import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  effectiveGrpcTimeout,
  grpcStatusForHttp,
  grpcStatusOf,
  isGrpcContentType,
  parseGrpcTimeout,
} from './grpc.js';

test('grpc-timeout values in every unit, and malformed ones ignored', () => {
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('5S'), 5000);
  assert.equal(parseGrpcTimeout('150m'), 150);
  assert.equal(parseGrpcTimeout('1500u'), 2); // rounded up: a deadline never becomes none
  assert.equal(parseGrpcTimeout('1n'), 1);
  assert.equal(parseGrpcTimeout('99999999S'), 99_999_999_000);
  for (const bad of [undefined, '', '5', 'S', '123456789S', '5s', '-1S', '1.5S', '5 S x']) {
    assert.equal(parseGrpcTimeout(bad), undefined, String(bad));
  }
});

test('the route caps grpc-timeout and takes its offset off', () => {
  const none = { grpcTimeoutMaxMs: 0, grpcTimeoutOffsetMs: 0 };
  assert.equal(effectiveGrpcTimeout('10S', none), 10_000);
  assert.equal(effectiveGrpcTimeout('10S', { grpcTimeoutMaxMs: 2000, grpcTimeoutOffsetMs: 0 }), 2000);
  assert.equal(effectiveGrpcTimeout('10S', { grpcTimeoutMaxMs: 0, grpcTimeoutOffsetMs: 500 }), 9500);
  // An offset larger than the deadline is not taken off (the deadline would vanish).
  assert.equal(effectiveGrpcTimeout('100m', { grpcTimeoutMaxMs: 0, grpcTimeoutOffsetMs: 500 }), 100);
  assert.equal(effectiveGrpcTimeout(undefined, none), undefined);
});

test('gRPC content types, statuses from headers, and the HTTP status mapping', () => {
  assert.ok(isGrpcContentType('application/grpc'));
  assert.ok(isGrpcContentType('application/grpc+proto'));
  assert.ok(!isGrpcContentType('application/json'));
  assert.ok(!isGrpcContentType(undefined));
  assert.equal(grpcStatusOf(['grpc-status', '14', 'grpc-message', 'x']), 14);
  assert.equal(grpcStatusOf(['grpc-status', 'nope']), undefined);
  assert.equal(grpcStatusOf([]), undefined);
  assert.equal(grpcStatusForHttp(503), 14);
  assert.equal(grpcStatusForHttp(404), 12);
  assert.equal(grpcStatusForHttp(401), 16);
  assert.equal(grpcStatusForHttp(418), 2);
});
