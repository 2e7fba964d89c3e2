// HTTP/2 protocol options (Http2ProtocolOptions) for downstream connections and upstream clusters.

import type { Http2Options } from './model.js';
import type { Fields } from './reader.js';

const MAX_INT32 = 2_147_483_647;

/**
 * Envoy's defaults, except the flow-control windows: Envoy opens 256 MiB windows and bounds memory with its
 * buffer watermarks; Remora bounds it with the window itself, so the default is 1 MiB per stream and 16 MiB
 * per connection (explicit values are honoured).
 */
export const DEFAULT_HTTP2: Http2Options = {
  maxConcurrentStreams: MAX_INT32,
  initialStreamWindowSize: 1024 * 1024,
  initialConnectionWindowSize: 16 * 1024 * 1024,
  hpackTableSize: 4096,
  maxOutboundFrames: 10_000,
  maxOutboundControlFrames: 1000,
  maxConsecutiveInboundFramesWithEmptyPayload: 1,
  maxInboundPriorityFramesPerStream: 100,
  maxInboundWindowUpdateFramesPerDataFrameSent: 10,
};

/** An Http2ProtocolOptions message; undefined `f` gives the defaults. */
export function http2Options(f: Fields | undefined): Http2Options {
  if (f === undefined) return DEFAULT_HTTP2;
  const d = DEFAULT_HTTP2;
  const o: Http2Options = {
    maxConcurrentStreams:
      f.int('max_concurrent_streams', { min: 1, max: MAX_INT32 }) ?? d.maxConcurrentStreams,
    initialStreamWindowSize:
      f.int('initial_stream_window_size', { min: 65_535, max: MAX_INT32 }) ?? d.initialStreamWindowSize,
    initialConnectionWindowSize:
      f.int('initial_connection_window_size', { min: 65_535, max: MAX_INT32 }) ??
      d.initialConnectionWindowSize,
    hpackTableSize: f.int('hpack_table_size', { min: 0, max: 0xffffffff }) ?? d.hpackTableSize,
    maxOutboundFrames: f.int('max_outbound_frames', { min: 1 }) ?? d.maxOutboundFrames,
    maxOutboundControlFrames: f.int('max_outbound_control_frames', { min: 1 }) ?? d.maxOutboundControlFrames,
    maxConsecutiveInboundFramesWithEmptyPayload:
      f.int('max_consecutive_inbound_frames_with_empty_payload', { min: 0 }) ??
      d.maxConsecutiveInboundFramesWithEmptyPayload,
    maxInboundPriorityFramesPerStream:
      f.int('max_inbound_priority_frames_per_stream', { min: 0 }) ?? d.maxInboundPriorityFramesPerStream,
    maxInboundWindowUpdateFramesPerDataFrameSent:
      f.int('max_inbound_window_update_frames_per_data_frame_sent', { min: 1 }) ??
      d.maxInboundWindowUpdateFramesPerDataFrameSent,
  };
  f.unsupported(
    [
      'allow_connect',
      'allow_metadata',
      'stream_error_on_invalid_http_messaging',
      'override_stream_error_on_invalid_http_message',
      'custom_settings_parameters',
      'connection_keepalive',
      'use_oghttp2_codec',
      'max_metadata_size',
      'enable_huffman_encoding',
    ],
    { allow_connect: false, allow_metadata: false, stream_error_on_invalid_http_messaging: false },
  );
  f.finish();
  return o;
}
