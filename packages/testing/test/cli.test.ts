import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testCertificates } from '../src/certs.js';
import type { TestGateway } from '../src/gateway.js';
import { formatCall, runGatewayCli } from '../src/gateway-cli.js';
import { waitFor } from '../src/wait.js';

let gateway: TestGateway | null = null;
afterEach(async () => {
  await gateway?.close();
  gateway = null;
});

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body: new Uint8Array(Buffer.from(body)), headers });

describe('connector-test-gateway', () => {
  it('logs one line per function call by default: function, X-Topic, status, bytes, ms', async () => {
    const lines: string[] = [];
    gateway = await runGatewayCli(['--port', '0', '--function', 'echo:orders'], (l) => lines.push(l));
    expect(lines).toEqual([
      `test gateway listening at ${gateway?.url} with 1 function(s)`,
      '  echo.openfaas-fn {"topic":"orders"}',
    ]);
    const url = gateway?.url ?? '';
    await post(`${url}/function/echo.openfaas-fn`, 'hello', { 'x-topic': 'orders' });
    await post(`${url}/function/missing`, '');
    await post(`${url}/async-function/echo`, 'abc', { 'x-topic': 'orders' });
    gateway?.fault('echo', { drop: true, times: 1 });
    await post(`${url}/function/echo`, 'x').catch(() => undefined);
    await waitFor(() => lines.length >= 6, { message: 'four call lines' });
    const calls = lines.slice(2).map((l) => l.replace(/ms=\d+$/, 'ms=N'));
    expect(calls).toEqual([
      'invoke echo.openfaas-fn topic=orders status=200 bytes=5 ms=N',
      'invoke missing.openfaas-fn topic=- status=404 bytes=0 ms=N',
      'invoke-async echo.openfaas-fn topic=orders status=202 bytes=3 ms=N',
      'invoke echo.openfaas-fn topic=- status=none bytes=1 ms=N',
    ]);
    // /system calls (the connector's topic-map rebuilds) are not function calls: not logged.
    await fetch(`${url}/system/functions`);
    expect(lines).toHaveLength(6);
  });

  it('--quiet logs the start-up lines only', async () => {
    const lines: string[] = [];
    gateway = await runGatewayCli(['--port', '0', '--quiet', '--function', 'echo:orders'], (l) =>
      lines.push(l),
    );
    await post(`${gateway?.url}/function/echo`, 'hello', { 'x-topic': 'orders' });
    expect(gateway?.invocations('echo')[0]?.status).toBe(200);
    expect(lines).toHaveLength(2);
  });

  it('--tls-cert/--tls-key serve HTTPS and --iam-token turns on the token endpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-tls-'));
    try {
      const c = testCertificates(dir);
      const lines: string[] = [];
      gateway = await runGatewayCli(
        ['--port', '0', '--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--iam-token', 'id-1'],
        (l) => lines.push(l),
      );
      expect(gateway?.url).toMatch(/^https:/);
      expect(lines[0]).toContain(`listening at ${gateway?.url}`);
      expect(gateway?.tokens).toEqual([]);
      await expect(runGatewayCli(['--tls-cert', c.serverCert])).rejects.toThrow(
        '--tls-cert and --tls-key go together',
      );
      await expect(runGatewayCli(['--iam-token', 'x', '--iam-expires-in', '0'])).rejects.toThrow(
        '--iam-expires-in 0',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('formats a call on one line, ms rounded', () => {
    expect(
      formatCall({ function: 'f.ns', async: false, topic: 'a/b', status: 500, bytes: 12, ms: 3.6 }),
    ).toBe('invoke f.ns topic=a/b status=500 bytes=12 ms=4');
  });

  it('prints usage for --help and refuses bad arguments with one line', async () => {
    const lines: string[] = [];
    expect(await runGatewayCli(['--help'], (l) => lines.push(l))).toBeNull();
    expect(lines.join('\n')).toContain('--quiet');
    await expect(runGatewayCli(['--port', 'x'])).rejects.toThrow('--port x: expected 0-65535');
    await expect(runGatewayCli(['--user', 'u'])).rejects.toThrow('--user and --password go together');
    await expect(runGatewayCli(['--bogus'])).rejects.toThrow(/bogus/);
  });
});
