import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { has } from '../src/sources.js';

const pinning = has('taskset') && cpus().length >= 2;

// The e2e brokers and publishers are started from the worker, which is pinned to CPU 0: `anyCpu` must let them run
// on every CPU of the machine, or they take the connector's CPU (as they did while it asked availableParallelism(),
// which is 1 inside the pinned worker).
describe('anyCpu', () => {
  it.runIf(pinning)('lets a child of a process pinned to CPU 0 run on every CPU', () => {
    const sources = join(import.meta.dirname, '../dist/sources.js');
    const script = `
      import { execFileSync } from 'node:child_process';
      const { anyCpu } = await import(${JSON.stringify(sources)});
      const [cmd, args] = anyCpu('grep', ['Cpus_allowed_list', '/proc/self/status']);
      process.stdout.write(execFileSync(cmd, args, { encoding: 'utf8' }));`;
    const out = execFileSync('taskset', ['-c', '0', process.execPath, '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe(`Cpus_allowed_list:\t0-${cpus().length - 1}`);
  });
});
