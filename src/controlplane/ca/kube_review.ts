// Kubernetes service-account tokens as credentials: the API server says, by a TokenReview, whose token it is.

import type { WorkloadIdentity } from '../../identity/spiffe.js';
import { Refusals, refuse } from './errors.js';

/** The audience Istio's agents ask their projected tokens for, and istiod checks: existing clients work as is. */
export const DEFAULT_TOKEN_AUDIENCES: readonly string[] = ['istio-ca'];

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string };
  audiences?: string[];
  error?: string;
}

type CreateTokenReview = (body: object) => Promise<{ status?: TokenReviewStatus }>;

/**
 * Reviews tokens against the API server of a kubeconfig (the control plane's `--kubeconfig`). A token is accepted
 * when the server authenticates it for one of `audiences` and it belongs to a service account
 * (`system:serviceaccount:<ns>:<sa>`); the client library is loaded on the first review.
 */
export class KubeTokenReviewer {
  private api: Promise<CreateTokenReview> | undefined;

  constructor(
    private readonly kubeconfig: string,
    private readonly audiences: readonly string[] = DEFAULT_TOKEN_AUDIENCES,
  ) {}

  async review(token: string): Promise<WorkloadIdentity> {
    let create: CreateTokenReview;
    try {
      create = await this.client();
    } catch (err) {
      refuse(Refusals.unavailable, `kubeconfig ${this.kubeconfig}: ${firstLine((err as Error).message)}`);
    }
    let status: TokenReviewStatus | undefined;
    try {
      const review = await create({
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [...this.audiences] },
      });
      status = review.status;
    } catch (err) {
      const e = err as { code?: number; message?: string };
      refuse(
        Refusals.unavailable,
        `TokenReview failed: ${e.code === undefined ? '' : `HTTP ${e.code}: `}${firstLine(e.message)}`,
      );
    }
    if (status?.authenticated !== true)
      refuse(
        Refusals.badCredential,
        `the Kubernetes API server does not accept the token: ${status?.error ?? 'not authenticated'}`,
      );
    if (!(status.audiences ?? []).some((a) => this.audiences.includes(a)))
      refuse(Refusals.badCredential, `the token is not for audience ${this.audiences.join(' or ')}`);
    const user = status.user?.username ?? '';
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
    if (m === null)
      refuse(Refusals.badCredential, `the token belongs to ${JSON.stringify(user)}, not a service account`);
    return { namespace: m[1]!, serviceAccount: m[2]! };
  }

  /** The API client, made once; a failure (an unreadable kubeconfig) is not kept, so the next review retries. */
  private client(): Promise<CreateTokenReview> {
    if (this.api === undefined)
      this.api = this.connect().catch((err: unknown) => {
        this.api = undefined;
        throw err;
      });
    return this.api;
  }

  private async connect(): Promise<CreateTokenReview> {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(this.kubeconfig);
    const api = kc.makeApiClient(k8s.AuthenticationV1Api);
    return (body) =>
      api.createTokenReview({ body: body as never }) as Promise<{ status?: TokenReviewStatus }>;
  }
}

function firstLine(text: string | undefined): string {
  return (text ?? 'unknown error').split('\n')[0]!.slice(0, 300);
}
