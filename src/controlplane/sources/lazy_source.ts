// A source whose module is loaded when it starts: the etcd and Kubernetes clients take seconds to import.

import type { Source, SourceListener } from './source.js';

/**
 * Stands for the source `load` makes, so that registering a source kind (or reading a manifest directory with
 * `remora analyze`) does not import a client library that only a running source of that kind needs.
 */
export class LazySource implements Source {
  private inner: Source | undefined;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly load: () => Promise<Source>,
  ) {}

  async start(listener: SourceListener): Promise<void> {
    const source = await this.load();
    if (this.closed) {
      await source.close();
      return;
    }
    this.inner = source;
    await source.start(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner?.close();
  }
}
