import { describe, expect, it } from 'vitest';
import { type ConformanceSuite, conformanceSuite } from '../src/index.js';
import { type Flaw, MemoryBroker, memorySource } from './memory-broker.js';

const broker = new MemoryBroker();

const suiteFor = (flaws: Flaw[]): ConformanceSuite =>
  conformanceSuite({
    name: flaws.join('+') || 'correct',
    // Short (a broken source often fails by never delivering what it should), with room for every case of every
    // suite running at once.
    timeout: 8000,
    createSource: ({ topic }) => memorySource(broker, topic, flaws),
    publish: async (topic, messages) =>
      broker.publish(
        topic,
        messages.map((m) => m.body),
      ),
    inFlightAtBroker: (topic) => broker.inFlight(topic),
  });

/** Run every case of the suite at once (each has its own topics); the failures by case name. */
async function failures(suite: ConformanceSuite): Promise<Map<string, string>> {
  await suite.setup();
  const results = await Promise.allSettled(suite.cases.map((c) => c.run()));
  await suite.teardown();
  const failed = new Map<string, string>();
  results.forEach((r, i) => {
    if (r.status === 'rejected') failed.set(suite.cases[i]?.name ?? '?', (r.reason as Error).message);
  });
  return failed;
}

// Each flaw, and the cases that must catch it with the reason they give.
const expectations: [Flaw, [RegExp, RegExp][]][] = [
  [
    'acks-early',
    [
      [/^acks only settled messages/, /redelivery after a failed delivery/],
      [/^redelivers after a crash/, /all 3 messages after the restart/],
      [/^does not ack after ShutdownError/, /rejected with ShutdownError to reach the next consumer/],
    ],
  ],
  [
    'acks-on-shutdown',
    [
      [/^redelivers after a crash/, /all 3 messages after the restart/],
      [/^does not ack after ShutdownError/, /rejected with ShutdownError to reach the next consumer/],
    ],
  ],
  [
    'ignores-capacity',
    [[/^takes no more than a bounded number/, /called deliver\(\) \d+ times .* ignores hasCapacity/]],
  ],
  ['buffers-ahead', [[/^takes no more than a bounded number/, /the broker handed out \d+ messages/]]],
  [
    'stop-does-not-wait',
    [[/^stop\(\) waits for the deliveries/, /stop\(\) resolved while a delivery was unsettled/]],
  ],
  [
    'consumes-after-stop',
    [[/^takes nothing after stop\(\)/, /"after-stop", published after stop\(\), to reach the next consumer/]],
  ],
  ['no-restart', [[/^restarts/, /"second-run" to be delivered and settled/]]],
  ['no-health', [[/^reports health\(\)/, /has no health\(\)/]]],
];

// The correct in-memory source passes every case: conformance.test.ts.
describe('the conformance suite catches broken sources', () => {
  for (const [flaw, caught] of expectations) {
    it.concurrent(`fails a source that ${flaw.replaceAll('-', ' ')}`, async () => {
      const failed = await failures(suiteFor([flaw]));
      for (const [casePattern, reason] of caught) {
        const hit = [...failed].find(([name]) => casePattern.test(name));
        expect(
          hit,
          `case ${casePattern} should fail for ${flaw}; failed: ${[...failed.keys()].join(' | ')}`,
        ).toBeDefined();
        expect(hit?.[1]).toMatch(reason);
      }
    });
  }
});
