// An incremental (delta) ADS stream: per type, subscriptions changed by name, what the proxy holds at which
// version, and `removed_resources` for what it holds that is gone.

import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DeltaResource } from '../../xds/protos.js';
import type { Snapshot } from './cache.js';
import { AdsStream, inPushOrder, isFullStateType, TypeTracker } from './stream_state.js';

class DeltaTracker extends TypeTracker {
  /**
   * Resource name -> the version the proxy holds; null when it was told the resource does not exist (so it is
   * told once). Seeded from `initial_resource_versions`.
   */
  readonly clientVersions = new Map<string, string | null>();
  started = false;
}

export class DeltaStream extends AdsStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  protected newTracker(typeUrl: string): TypeTracker {
    return new DeltaTracker(typeUrl);
  }

  protected onRequest(req: DeltaDiscoveryRequest, t: TypeTracker, snapshot: Snapshot | undefined): void {
    const tracker = t as DeltaTracker;
    const first = !tracker.started;
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    if (first) {
      tracker.started = true;
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) {
        tracker.clientVersions.set(name, version);
      }
      // Legacy wildcard: a first request naming nothing subscribes to every listener or cluster.
      if (subscribe.length === 0 && isFullStateType(tracker.typeUrl)) tracker.wildcard = true;
    }
    const nonce = req.response_nonce ?? '';
    if (nonce !== '') {
      if (nonce === tracker.lastSent?.nonce) {
        tracker.reply(undefined, req.error_detail, this.ctx.now(), this.ctx.metrics);
      } else {
        this.ctx.metrics.staleNonces++;
      }
    }
    // Subscription changes are deltas: they are applied even when they ride on a stale nonce, or they would be lost.
    for (const name of subscribe) {
      if (name === '*') tracker.wildcard = true;
      else tracker.names.add(name);
    }
    for (const name of unsubscribe) {
      if (name === '*') {
        tracker.wildcard = false;
      } else {
        tracker.names.delete(name);
        tracker.clientVersions.delete(name);
      }
    }
    if (snapshot !== undefined && (first || subscribe.length > 0)) this.respond(tracker, snapshot, first);
  }

  protected pushSnapshot(snapshot: Snapshot, changeAt: number): void {
    for (const typeUrl of inPushOrder(this.trackers.keys())) {
      const t = this.trackers.get(typeUrl) as DeltaTracker;
      this.respond(t, snapshot, t.lastSent === undefined, changeAt);
    }
  }

  /** Sends the subscribed resources whose version the proxy does not hold, and what it holds that is gone. */
  private respond(t: DeltaTracker, snapshot: Snapshot, force: boolean, changeAt?: number): void {
    const all = snapshot.resources(t.typeUrl);
    const resources: DeltaResource[] = [];
    const removed: string[] = [];
    const send = (name: string) => {
      const r = all.get(name);
      if (r === undefined || t.clientVersions.get(name) === r.version) return;
      resources.push({ name, version: r.version, resource: r.any });
      t.clientVersions.set(name, r.version);
    };
    if (t.wildcard) for (const name of all.keys()) send(name);
    for (const name of t.names) send(name);
    for (const [name, version] of t.clientVersions) {
      if (all.has(name) || version === null) continue;
      if (t.names.has(name)) {
        t.clientVersions.set(name, null);
        removed.push(name);
      } else if (t.wildcard) {
        t.clientVersions.delete(name);
        removed.push(name);
      }
    }
    // A name subscribed to that does not exist is reported once, so the proxy need not wait for it.
    for (const name of t.names) {
      if (!all.has(name) && !t.clientVersions.has(name)) {
        t.clientVersions.set(name, null);
        removed.push(name);
      }
    }
    const version = snapshot.version(t.typeUrl);
    if (resources.length === 0 && removed.length === 0 && !force) {
      t.evaluatedVersion = version;
      return;
    }
    const nonce = this.ctx.nextNonce();
    this.write({
      system_version_info: version,
      resources,
      type_url: t.typeUrl,
      removed_resources: removed.sort(),
      nonce,
    });
    t.sent(version, nonce, this.ctx.now(), changeAt, this.ctx.metrics);
  }
}
