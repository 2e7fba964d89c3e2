// Child process: the plain node:http2 reference proxy. An h2c server whose streams go to the HTTP/1.1
// upstream through a keep-alive agent, and a second h2c server whose streams (gRPC) go to an h2c upstream.

import { Agent, type IncomingHttpHeaders as H1Headers, request } from 'node:http';
import {
  type ClientHttp2Session,
  connect,
  constants,
  createServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';

const [h2Port, upstreamPort, grpcPort, grpcUpstreamPort] = process.argv.slice(2).map(Number);

// HTTP/1.1 hop-by-hop headers are connection-specific, which HTTP/2 forbids.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function fail(stream: ServerHttp2Stream, err: Error): void {
  if (stream.destroyed) return;
  if (stream.headersSent) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  else {
    stream.respond({ ':status': 502, 'content-type': 'text/plain' });
    stream.end(`upstream error: ${err.message}`);
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });

function toHttp1(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const out: H1Headers = {};
  for (const [name, value] of Object.entries(headers)) if (name[0] !== ':') out[name] = value;
  out.host = headers[':authority'];
  const req = request(
    {
      agent,
      host: '127.0.0.1',
      port: upstreamPort,
      method: headers[':method'],
      path: headers[':path'],
      headers: out,
    },
    (res) => {
      // The client may have reset the stream (or closed the connection) while the upstream answered.
      if (stream.destroyed || stream.closed) return void res.resume();
      const resHeaders: OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 };
      for (const [name, value] of Object.entries(res.headers)) {
        if (!HOP_BY_HOP.has(name)) resHeaders[name] = value;
      }
      stream.respond(resHeaders);
      res.pipe(stream);
    },
  );
  req.on('error', (err) => fail(stream, err));
  stream.pipe(req);
}

let session: ClientHttp2Session | undefined;

/** The shared h2c session to the gRPC upstream, opened again after the upstream closed it. */
function upstreamSession(): ClientHttp2Session {
  if (session === undefined || session.closed || session.destroyed) {
    session = connect(`http://127.0.0.1:${grpcUpstreamPort}`);
    session.on('error', () => {});
  }
  return session;
}

function toHttp2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (name !== ':scheme') out[name] = value;
  const up = upstreamSession().request(out);
  let trailers: OutgoingHttpHeaders = {};
  up.on('response', (h) => {
    if (!stream.destroyed && !stream.closed) stream.respond(h, { waitForTrailers: true });
  });
  up.on('trailers', (t) => {
    trailers = t;
  });
  stream.on('wantTrailers', () => {
    if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers);
  });
  up.on('error', (err) => fail(stream, err));
  stream.on('close', () => up.destroyed || up.close(constants.NGHTTP2_CANCEL));
  stream.pipe(up);
  up.pipe(stream);
}

function serve(port: number, onStream: (s: ServerHttp2Stream, h: IncomingHttpHeaders) => void): void {
  const server = createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    onStream(stream, headers);
  });
  server.on('sessionError', () => {});
  server.listen(port, '127.0.0.1');
}

serve(h2Port!, toHttp1);
if (grpcPort !== undefined && grpcUpstreamPort !== undefined) serve(grpcPort, toHttp2);
process.stdout.write(`node-http2-proxy listening on ${h2Port}${grpcPort ? ` and ${grpcPort}` : ''}\n`);
process.on('SIGTERM', () => process.exit(0));
