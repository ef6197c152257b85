import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';

/** What `waitFor` resolves with: the condition's value minus its falsy cases. */
export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Polls `cond` until it is truthy or `timeout` ms pass; rejects with `message` on timeout. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  {
    timeout = 10_000,
    interval = 20,
    message = 'condition',
  }: { timeout?: number; interval?: number; message?: string } = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await cond();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** A kafkajs client for the test broker, quiet and with fast retries. */
export function kafka(brokers: string[], clientId: string, extra: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 50, maxRetryTime: 1000, retries: 30 },
    ...extra,
  });
}
