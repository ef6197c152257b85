import type { SourceHealth } from '../source.js';

/** Keeps a source's connection state and last error; `snapshot()` builds its `health()` answer. */
export class HealthState {
  private isConnected = false;
  private error: string | undefined;

  /** Connected now. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Message of the last failure, cleared by `up()`. */
  get lastError(): string | undefined {
    return this.error;
  }

  /** The broker is reachable again: clears the last error. */
  up(): void {
    this.isConnected = true;
    this.error = undefined;
  }

  /** The broker is not reachable (or the source stopped): keeps `err`'s message, when given, as the last error. */
  down(err?: unknown): void {
    this.isConnected = false;
    if (err !== undefined) this.error = errorMessage(err);
  }

  /** A failure that does not change the connection state (e.g. one failed ack). */
  failed(err: unknown): void {
    this.error = errorMessage(err);
  }

  /** The `SourceHealth` value, with `detail` when given. */
  snapshot(detail?: Readonly<Record<string, unknown>>): SourceHealth {
    const h: { connected: boolean; lastError?: string; detail?: Readonly<Record<string, unknown>> } = {
      connected: this.isConnected,
    };
    if (this.error !== undefined) h.lastError = this.error;
    if (detail !== undefined) h.detail = detail;
    return h;
  }
}

/** One line from any thrown value: its message (never its stack). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string')
    return (err as { message: string }).message;
  return String(err);
}
