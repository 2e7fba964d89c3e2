// A state-of-the-world ADS stream: per type, the subscribed names, what was sent, ACK/NACK by nonce.

import type { DiscoveryRequest, DiscoveryResponse } from '../../xds/protos.js';
import type { Snapshot } from './cache.js';
import type { XdsResource } from './resource.js';
import { AdsStream, inPushOrder, isFullStateType, TypeTracker } from './stream_state.js';

class SotwTracker extends TypeTracker {
  /** Resource name -> version of what this stream last sent; what the proxy holds unless it NACKed. */
  readonly sentVersions = new Map<string, string>();
}

export class SotwStream extends AdsStream<DiscoveryRequest, DiscoveryResponse> {
  protected newTracker(typeUrl: string): TypeTracker {
    return new SotwTracker(typeUrl);
  }

  protected onRequest(req: DiscoveryRequest, t: TypeTracker, snapshot: Snapshot | undefined): void {
    const tracker = t as SotwTracker;
    const nonce = req.response_nonce ?? '';
    if (nonce !== '') {
      // Only a reply to our latest response for the type counts; an older one was superseded by it.
      if (nonce !== tracker.lastSent?.nonce) {
        this.ctx.metrics.staleNonces++;
        return;
      }
      tracker.reply(req.version_info, req.error_detail, this.ctx.now(), this.ctx.metrics);
      if (req.error_detail) {
        // Refused: what the proxy holds is unknown, so the next push of any type sends this type's full set again
        // (the cause may be gone by then, e.g. a port freed), as a full push would.
        tracker.sentVersions.clear();
        tracker.evaluatedVersion = undefined;
      }
    } else {
      // A request without a nonce (re)starts the subscription: the proxy holds nothing we sent for it.
      tracker.sentVersions.clear();
    }
    const namesChanged = this.subscribe(tracker, req.resource_names ?? []);
    if (snapshot !== undefined && (nonce === '' || namesChanged))
      this.respond(tracker, snapshot, nonce === '');
  }

  protected pushSnapshot(snapshot: Snapshot, changeAt: number): void {
    for (const typeUrl of inPushOrder(this.trackers.keys())) {
      const t = this.trackers.get(typeUrl) as SotwTracker;
      // A type already brought up to this version has nothing to send (an endpoint change leaves CDS, LDS, RDS).
      if (t.lastSent !== undefined && t.evaluatedVersion === snapshot.version(typeUrl)) continue;
      // A subscription that waited for a first snapshot gets its first answer even when that is empty.
      this.respond(t, snapshot, t.lastSent === undefined, changeAt);
    }
  }

  /** Replaces the subscription; true when it changed. */
  private subscribe(t: SotwTracker, names: readonly string[]): boolean {
    const wildcard = names.includes('*') || (names.length === 0 && isFullStateType(t.typeUrl));
    const next = new Set(names.filter((n) => n !== '*'));
    let changed = wildcard !== t.wildcard || next.size !== t.names.size;
    for (const n of next) if (!t.names.has(n)) changed = true;
    // A name dropped from the subscription is dropped by the proxy too: subscribing again must resend it.
    for (const n of t.names) if (!next.has(n) && !wildcard) t.sentVersions.delete(n);
    t.names = next;
    t.wildcard = wildcard;
    return changed;
  }

  /**
   * Sends what the proxy lacks of `snapshot` for this type. LDS and CDS responses are the full subscribed set
   * (a name left out is deleted), sent when any of it changed; for other types only the resources that changed
   * are sent. `force` answers even when nothing changed (the first request of a subscription).
   */
  private respond(t: SotwTracker, snapshot: Snapshot, force: boolean, changeAt?: number): void {
    const all = snapshot.resources(t.typeUrl);
    const selected: XdsResource[] = [];
    if (t.wildcard) selected.push(...all.values());
    else for (const name of t.names) if (all.has(name)) selected.push(all.get(name)!);
    let toSend: XdsResource[];
    if (isFullStateType(t.typeUrl)) {
      const same =
        selected.length === t.sentVersions.size &&
        selected.every((r) => t.sentVersions.get(r.name) === r.version);
      toSend = same && !force ? [] : selected;
      if (!same) {
        t.sentVersions.clear();
        for (const r of selected) t.sentVersions.set(r.name, r.version);
      }
    } else {
      toSend = selected.filter((r) => t.sentVersions.get(r.name) !== r.version);
      for (const r of toSend) t.sentVersions.set(r.name, r.version);
    }
    const version = snapshot.version(t.typeUrl);
    if (toSend.length === 0 && !force) {
      t.evaluatedVersion = version;
      return;
    }
    const nonce = this.ctx.nextNonce();
    this.write({ version_info: version, resources: toSend.map((r) => r.any), type_url: t.typeUrl, nonce });
    t.sent(version, nonce, this.ctx.now(), changeAt, this.ctx.metrics);
  }
}
