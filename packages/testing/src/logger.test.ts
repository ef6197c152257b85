import { describe, expect, it } from 'vitest';
import { memoryLogger } from './logger.js';

describe('memoryLogger', () => {
  it('keeps every line, its children’s included, with level, object and message', () => {
    const log = memoryLogger();
    log.info({ a: 1 }, 'one');
    log.child({ component: 'x' }).warn('two');
    expect(log.lines).toEqual([
      { level: 'info', obj: { a: 1 }, msg: 'one' },
      { level: 'warn', obj: 'two', msg: undefined },
    ]);
  });
});
