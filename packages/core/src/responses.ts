import type { InvokeResult, Logger, ResponseSubscriber } from './types.js';

/** Response subscribers (the Go SDK's ResponseSubscriber list): every invocation result is published here once. */
export class ResponseHub {
  private subscribers: ResponseSubscriber[] = [];
  constructor(private readonly log: Logger) {}

  /** Add a subscriber; returns the unsubscribe function. */
  subscribe(s: ResponseSubscriber | ((result: InvokeResult) => void)): () => void {
    const sub: ResponseSubscriber = typeof s === 'function' ? { response: s } : s;
    this.subscribers = [...this.subscribers, sub];
    return () => {
      this.subscribers = this.subscribers.filter((x) => x !== sub);
    };
  }

  /** Hand a result to every subscriber (a throwing subscriber is logged and skipped). */
  publish(result: InvokeResult): void {
    const subs = this.subscribers;
    for (let i = 0; i < subs.length; i++) {
      try {
        (subs[i] as ResponseSubscriber).response(result);
      } catch (err) {
        this.log.error({ err, function: result.function }, 'response subscriber threw; ignored');
      }
    }
  }
}
