import { type CliIo, CORE_SETTINGS, type Connector, envNamesRead, unknownSettings } from '@connector/core';
import { describe, expect, it } from 'vitest';

/** What `testConnectorSettings` checks for one app. */
export interface SettingsHarness {
  /** The app's name, as its usage line prints it (`mqtt-connector`). */
  app: string;
  /** The app's `cli(argv, io)`. */
  cli(argv: string[], io: Partial<CliIo>): Promise<Connector | undefined>;
  /** The app's own settings (its source's), listed by `--help` before core's. */
  settings: readonly { name: string }[];
  /** Read a valid environment with the source's `*FromEnv`, so every name it reads is recorded. */
  read(): void;
  /** Lines `--help` must contain besides the usage line and `gateway_url` (the source's required setting). */
  help: readonly RegExp[];
  /** Look-alike names and the known name each must suggest. */
  lookalikes: Record<string, string>;
}

/** Register the settings contract of a connector app as vitest tests: `--help`, `-h` and `help` list every setting
 * with its default and exit 0; every env name the source's reader reads is listed; look-alike names get a suggestion. */
export function testConnectorSettings(h: SettingsHarness): void {
  const known = () => [...CORE_SETTINGS, ...h.settings].map((s) => s.name);
  describe(`${h.app} settings`, () => {
    it.each(['--help', '-h', 'help'])('%s lists env names with defaults and exits 0', async (flag) => {
      let out = '';
      const codes: number[] = [];
      const connector = await h.cli([flag], {
        stdout: (text) => void (out += text),
        stderr: (text) => {
          throw new Error(`unexpected stderr: ${text}`);
        },
        exit: (code) => void codes.push(code),
      });
      expect(connector).toBeUndefined();
      expect(codes).toEqual([0]);
      expect(out).toMatch(new RegExp(`^usage: .*${h.app}`));
      expect(out).toMatch(/gateway_url +http:\/\/gateway\.openfaas:8080/);
      for (const line of h.help) expect(out).toMatch(line);
    });

    it('lists every name its source reader reads (the help tells the truth)', () => {
      h.read();
      const listed = known();
      expect([...envNamesRead()].filter((n) => !listed.includes(n))).toEqual([]);
    });

    it('suggests the known name for a look-alike one', () => {
      const env = Object.fromEntries(Object.keys(h.lookalikes).map((n) => [n, 'x']));
      expect(unknownSettings(known(), env)).toEqual(
        Object.entries(h.lookalikes).map(([name, suggestion]) => ({ name, suggestion })),
      );
    });
  });
}
