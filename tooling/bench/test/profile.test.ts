import { describe, expect, it } from 'vitest';
import { category } from '../src/profile.js';

describe('profile categories', () => {
  it.each([
    ['file:///r/packages/core/dist/engine.js', 'deliver', '@connector/core'],
    ['file:///r/packages/source-sqs/dist/wire.js', 'call', '@connector/source-sqs'],
    ['file:///r/packages/source-mqtt/dist/acks.js', 'send', '@connector/source-mqtt'],
    ['file:///r/tooling/bench/dist/e2e.js', 'more', 'bench harness'],
    [
      'file:///r/node_modules/.pnpm/undici@7.30.2/node_modules/undici/lib/core/request.js',
      'Request',
      'undici',
    ],
    [
      'file:///r/node_modules/.pnpm/@smithy+core@3.0.0/node_modules/@smithy/core/dist-cjs/index.js',
      'x',
      '@smithy/core',
    ],
    ['node:internal/streams/readable', 'read', 'node streams'],
    ['node:net', 'write', 'node internals'],
    ['', '(garbage collector)', 'gc'],
    ['', 'writeBuffer', 'native'],
  ])('%s %s → %s', (url, fn, expected) => {
    expect(category(url, fn)).toBe(expected);
  });
});
