import { describe, expect, it } from 'vitest';
import { ConnectorMetrics, MAX_SUBSCRIPTION_SERIES, reasonLabel, statusLabel } from './metrics.js';

const probe = {
  inFlight: () => 0,
  topicMap: () => ({ functions: 0, topics: 0, lastSyncAt: undefined, failures: 0 }),
  sourceConnected: () => ({ source: 's', connected: true }),
};

describe('bounded labels', () => {
  it.each([
    [200, '200'],
    [0, '0'],
    [503, '503'],
    [418, '418'],
    [299, '2xx'],
    [599, '5xx'],
    [999, 'other'],
    [-1, 'other'],
    [Number.NaN, 'other'],
  ])('status %d → %s', (status, label) => expect(statusLabel(status)).toBe(label));

  it.each([
    ['status_429', 'status_429'],
    ['status_597', 'status_5xx'],
    ['status_abc', 'status_other'],
    ['ERR_TIMEOUT', 'ERR_TIMEOUT'],
    ['throttled', 'throttled'],
    ['sensors/dev-1', 'other'],
  ])('reason %s → %s', (reason, label) => expect(reasonLabel(reason)).toBe(label));

  it(`subscriptions past ${MAX_SUBSCRIPTION_SERIES} per source share one "_other" series`, async () => {
    const m = new ConnectorMetrics({ ...probe, subscriptions: (t) => [t] });
    for (let i = 0; i < MAX_SUBSCRIPTION_SERIES + 500; i++) m.receivedMessage('s', { topic: `p${i}` });
    m.receivedMessage('s', { topic: 'p1' });
    m.receivedMessage('s', { topic: 'named', functions: ['f'] }); // names its functions: no subscription
    const matched = await m.registry.getSingleMetric('connector_messages_matched_total')?.get();
    expect(matched?.values).toHaveLength(MAX_SUBSCRIPTION_SERIES + 1);
    const other = matched?.values.find((v) => v.labels['subscription'] === '_other');
    expect(other?.value).toBe(500);
    expect(matched?.values.find((v) => v.labels['subscription'] === 'p1')?.value).toBe(2);
    const received = await m.registry.getSingleMetric('connector_messages_received_total')?.get();
    expect(received?.values).toEqual([{ labels: { source: 's' }, value: MAX_SUBSCRIPTION_SERIES + 502 }]);
  });
});
