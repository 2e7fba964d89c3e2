// The StreamInfo a terminal network filter (tcp_proxy) keeps for a connection, for the filters before it in the
// chain (istio.stats) that report what it decided: the cluster, the response flags. Envoy shares one StreamInfo per
// connection among its network filters; here the terminal filter publishes its own when asked to.

import type { Socket } from 'node:net';
import type { StreamInfo } from './stream_info.js';

const infos = new WeakMap<Socket, StreamInfo>();

export function publishConnectionStreamInfo(socket: Socket, info: StreamInfo): void {
  infos.set(socket, info);
}

/** The StreamInfo the terminal filter published for `socket`; undefined when it published none. */
export function connectionStreamInfo(socket: Socket): StreamInfo | undefined {
  return infos.get(socket);
}
