import { describe, expect, it } from 'vitest';
import { parseFunctionArg } from './args.js';

describe('parseFunctionArg', () => {
  it('reads name:topics[@namespace] and cron schedules', () => {
    expect(parseFunctionArg('echo:a,b', 'topic')).toEqual({ name: 'echo', annotations: { topic: 'a,b' } });
    expect(parseFunctionArg('echo:a@staging-fn', 'topic')).toEqual({
      name: 'echo',
      namespace: 'staging-fn',
      annotations: { topic: 'a' },
    });
    expect(parseFunctionArg('tick:*/5 * * * * *', 'schedule')).toEqual({
      name: 'tick',
      annotations: { topic: 'cron-function', schedule: '*/5 * * * * *' },
    });
    expect(() => parseFunctionArg('nocolon', 'topic')).toThrow('--function "nocolon": expected name:value');
  });
});
