// Abuse accounting of one native HTTP/2 connection: Envoy's flood limits and the premature-reset check.

import type { Http2Options } from '../../../../config/model.js';
import { monotonicMs } from '../../../clock.js';
import { PREMATURE_RESET_LIFETIME_MS, PREMATURE_RESET_TOTAL_STREAMS } from '../server_options.js';
import { ErrorCode, H2ConnectionError } from './frames.js';

/**
 * Counters of what the peer makes us do, against the limits of `http2_protocol_options`. The inbound checks
 * throw an H2ConnectionError(ENHANCE_YOUR_CALM); the others return whether the connection should go.
 */
export class FloodGuard {
  private streamsOpened = 0;
  private closedStreams = 0;
  private prematureResets = 0;
  private dataFramesSent = 0;
  private emptyFrames = 0;
  private priorityFrames = 0;
  private windowUpdates = 0;
  /** Frames (and control frames) written while the socket was still busy with earlier ones. */
  private framesOwed = 0;
  private controlOwed = 0;
  /** Control frames the peer made us answer within the current second. */
  private answered = 0;
  private answeredSince = 0;

  constructor(private readonly limits: Http2Options) {}

  streamOpened(): void {
    this.streamsOpened++;
  }

  dataFrameSent(): void {
    this.dataFramesSent++;
  }

  /** A HEADERS, CONTINUATION or DATA frame; `empty`: it carried nothing (and did not end the stream). */
  frame(empty: boolean): void {
    if (!empty) {
      this.emptyFrames = 0;
      return;
    }
    if (++this.emptyFrames > this.limits.maxConsecutiveInboundFramesWithEmptyPayload) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many consecutive empty frames');
    }
  }

  priorityFrame(): void {
    if (++this.priorityFrames > this.limits.maxInboundPriorityFramesPerStream * (1 + this.streamsOpened)) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'PRIORITY flood');
    }
  }

  windowUpdate(): void {
    const limit =
      1 +
      2 *
        (this.streamsOpened + this.limits.maxInboundWindowUpdateFramesPerDataFrameSent * this.dataFramesSent);
    if (++this.windowUpdates > limit + 100) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'WINDOW_UPDATE flood');
    }
  }

  /** A control frame the peer asked for (PING, SETTINGS ACK): more than any client needs is a flood. */
  answer(): void {
    const now = monotonicMs();
    if (now - this.answeredSince > 1000) {
      this.answeredSince = now;
      this.answered = 0;
    }
    if (++this.answered > this.limits.maxOutboundControlFrames) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'control frame flood');
    }
  }

  streamClosed(): void {
    this.closedStreams++;
  }

  /** The peer reset a stream opened at `opened` (ms since the epoch): true when too many resets were premature. */
  peerReset(opened: number): boolean {
    if (Date.now() - opened >= PREMATURE_RESET_LIFETIME_MS) return false;
    this.prematureResets++;
    const limit = PREMATURE_RESET_TOTAL_STREAMS;
    return this.closedStreams < limit
      ? this.prematureResets >= limit / 2
      : this.prematureResets * 2 >= this.closedStreams;
  }

  /**
   * A write of `frames` frames (`control` of them control frames); `busy`: the socket still held earlier bytes.
   * True when the peer leaves more unread than max_outbound_frames / max_outbound_control_frames.
   */
  written(frames: number, control: number, busy: boolean): boolean {
    if (!busy) {
      this.framesOwed = 0;
      this.controlOwed = 0;
      return false;
    }
    this.framesOwed += frames;
    this.controlOwed += control;
    return (
      this.framesOwed > this.limits.maxOutboundFrames ||
      this.controlOwed > this.limits.maxOutboundControlFrames
    );
  }
}
