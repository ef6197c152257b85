import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify, stripVTControlCharacters } from 'node:util';
import { startGateway } from '@connector/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../../..');
const copy = join(mkdtempSync(join(tmpdir(), 'scaffold-')), 'repo');
const bin = join(copy, 'tooling/create-connector/bin/create-connector.mjs');
const cli = (...args: string[]) =>
  run(process.execPath, [bin, ...args], { cwd: copy }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
const read = (f: string) => readFileSync(join(copy, 'apps', f), 'utf8');

/** Every file of a scaffolded app (no node_modules/dist), relative to it. */
function files(app: string, dir = ''): string[] {
  return readdirSync(join(copy, 'apps', app, dir), { withFileTypes: true }).flatMap((e) =>
    e.name === 'node_modules' || e.name === 'dist'
      ? []
      : e.isDirectory()
        ? files(app, join(dir, e.name))
        : [join(dir, e.name)],
  );
}

/** What each `create-connector` run printed on stdout, by app. */
const printed: Record<string, string> = {};

const APPS = {
  'custom-connector': 'custom',
  'cron-connector': 'timer',
  'sensors-connector': 'mqtt',
  'orders-connector': 'kafka',
  'events-connector': 'rabbitmq',
  'queue-connector': 'sqs', // created through the prompt
  'subjects-connector': 'nats',
} as const;

// Scaffold into a copy of the working tree (tracked and untracked, not ignored files), never into the repo itself.
beforeAll(async () => {
  const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: repo,
    maxBuffer: 64 << 20,
  });
  for (const f of stdout.split('\0').filter(Boolean)) cpSync(join(repo, f), join(copy, f), { force: true });
  for (const [name, source] of Object.entries(APPS)) {
    if (name === 'queue-connector') continue;
    const r = await cli(name, '--source', source, '--no-install');
    expect(r.code, r.stderr).toBe(0);
    printed[name] = r.stdout;
  }
  // The prompt, in a pseudo-terminal (util-linux `script`): both answers pasted at once, then end of input.
  const prompted = await run(
    'sh',
    [
      '-c',
      `printf 'queue-connector\\nsqs\\n' | script -qec "'${process.execPath}' '${bin}' --no-install" /dev/null`,
    ],
    { cwd: copy },
  );
  expect(prompted.stdout).toContain('Connector name (e.g. events-connector):');
  expect(prompted.stdout).toContain('Source (custom|timer|mqtt|kafka|sqs|rabbitmq|nats) [custom]:');
  expect(prompted.stdout).toContain('created apps/queue-connector (sqs source)');
  // The new apps change the lockfile; pnpm would refuse that under CI=true (frozen by default there).
  await run('pnpm', ['install', '--prefer-offline', '--no-frozen-lockfile', '--reporter=silent'], {
    cwd: copy,
    timeout: 600_000,
  });
  const built = await run(
    'pnpm',
    [...Object.keys(APPS).flatMap((n) => ['--filter', `@connector/${n}...`]), 'run', 'build'],
    {
      cwd: copy,
      timeout: 600_000,
    },
  );
  for (const app of Object.keys(APPS))
    expect(
      existsSync(join(copy, 'apps', app, 'dist/main.js')),
      `${app}: ${built.stdout}${built.stderr}`,
    ).toBe(true);
}, 1_200_000);

// The copy holds a full node_modules: removing it takes a while on a busy machine.
afterAll(() => {
  rmSync(dirname(copy), { recursive: true });
  expect(existsSync(dirname(copy))).toBe(false);
}, 300_000);

describe('pnpm create-connector', () => {
  it('refuses an existing directory, a workspace package name, an invalid name and bad flags with one line', async () => {
    const refusals = await Promise.all([
      cli('template'),
      cli('core', '--source', 'timer'),
      cli('My_Connector'),
      cli('ok-name', '--source', 'bogus'),
      cli('ok-name', '--bogus'),
      cli(),
      cli('ok-name'),
    ]);
    expect(refusals.map((r) => [r.code, r.stderr])).toEqual([
      [1, 'create-connector: apps/template already exists: choose another name or remove it\n'],
      [1, 'create-connector: @connector/core is already a package of this workspace: choose another name\n'],
      [
        1,
        'create-connector: "My_Connector" is not a valid npm package name here: use lower-case letters, digits and dashes (e.g. events-connector)\n',
      ],
      [
        1,
        'create-connector: --source bogus: expected one of custom, timer, mqtt, kafka, sqs, rabbitmq, nats\n',
      ],
      [
        1,
        "create-connector: Unknown option '--bogus'; usage: pnpm create-connector <name> [--source custom|timer|mqtt|kafka|sqs|rabbitmq|nats] [--no-install]\n",
      ],
      // Without a terminal nothing is asked, and nothing is picked silently: a usage line, exit 2.
      [
        2,
        'create-connector: a name is required without a terminal; usage: pnpm create-connector <name> [--source custom|timer|mqtt|kafka|sqs|rabbitmq|nats] [--no-install]\n',
      ],
      [
        2,
        'create-connector: --source is required without a terminal; usage: pnpm create-connector <name> [--source custom|timer|mqtt|kafka|sqs|rabbitmq|nats] [--no-install]\n',
      ],
    ]);
    expect(existsSync(join(copy, 'apps/ok-name'))).toBe(false);
    expect(existsSync(join(copy, 'apps/core'))).toBe(false);
  });

  it('renames the package, identifiers, Dockerfile and Kubernetes example', () => {
    for (const app of Object.keys(APPS)) {
      const pkg = JSON.parse(read(`${app}/package.json`));
      expect([pkg.name, pkg.bin]).toEqual([`@connector/${app}`, { [app]: './dist/main.js' }]);
      for (const f of files(app)) {
        expect(read(`${app}/${f}`), `${app}/${f}`).not.toMatch(
          /template-connector|@connector\/template|apps\/template/,
        );
      }
      expect(read(`${app}/src/main.ts`)).toContain(`name: '${app}'`);
      expect(read(`${app}/Dockerfile`)).toContain(
        `pnpm --filter @connector/${app} deploy --prod --legacy /out`,
      );
      expect(read(`${app}/k8s.yaml`)).toContain(`image: ghcr.io/example/${app}:latest`);
      expect(read(`${app}/k8s.yaml`)).toContain('mountPath: /var/secrets');
      expect(read(`${app}/README.md`)).not.toContain('template-only');
    }
  });

  it('keeps the placeholder source for custom and wires the source package otherwise', () => {
    const custom = JSON.parse(read('custom-connector/package.json'));
    expect(Object.keys(custom.dependencies)).toEqual(['@connector/core', '@connector/otel']);
    expect(files('custom-connector').sort()).toEqual(files('../apps/template').sort());
    expect(read('custom-connector/k8s.yaml')).toContain('{ name: interval, value: "5s" }');

    const wired = {
      'cron-connector': ['timerSourceFromEnv(e).source', '{ name: mode, value: "cron" }'],
      'sensors-connector': ['mqttSource(mqttOptionsFromEnv(e))', '{ name: broker, value: "mqtt://'],
      'orders-connector': ['kafkaSource(kafkaOptionsFromEnv(e))', '{ name: brokers, value: "'],
      'queue-connector': ['sqsSource(sqsOptionsFromEnv(e))', '{ name: queue_name, value: "orders" }'],
      'events-connector': [
        'rabbitmqSource(rabbitmqOptionsFromEnv(e))',
        '{ name: rabbitmq_url, value: "amqp://',
      ],
      'subjects-connector': ['natsSource(natsOptionsFromEnv(e))', '{ name: stream, value: "EVENTS" }'],
    } as const;
    for (const [app, [expr, env]] of Object.entries(wired)) {
      const source = APPS[app as keyof typeof APPS];
      const pkg = JSON.parse(read(`${app}/package.json`));
      expect(pkg.dependencies[`@connector/source-${source}`], app).toBe('workspace:*');
      expect(read(`${app}/src/app.ts`)).toContain(expr);
      expect(existsSync(join(copy, 'apps', app, 'src/source.ts'))).toBe(false);
      expect(JSON.parse(read(`${app}/tsconfig.json`)).references).toContainEqual({
        path: `../../packages/source-${source}`,
      });
      expect(read(`${app}/k8s.yaml`)).toContain(env);
      expect(read(`${app}/k8s.yaml`)).not.toContain('name: interval');
      expect(read(`${app}/README.md`)).toContain(`@connector/source-${source}`);
    }
    expect(read('sensors-connector/src/app.ts')).toContain("topicMatcher: 'mqtt'");
    expect(read('orders-connector/src/app.ts')).toContain('deadLetter: source.deadLetter');
    expect(read('events-connector/src/app.ts')).toContain('controller: { topicMatcher: amqpMatch }');
    expect(read('subjects-connector/src/app.ts')).toContain('controller: { topicMatcher: natsMatch }');
  });

  it.each(Object.keys(APPS))('%s built and passes its own test', async (app) => {
    expect(existsSync(join(copy, 'apps', app, 'dist/main.js'))).toBe(true);
    const out = await run('pnpm', ['--filter', `@connector/${app}`, 'test'], { cwd: copy, timeout: 120_000 });
    const stdout = stripVTControlCharacters(out.stdout);
    // custom: 2 own + the conformance suite; timer: config + a real cron invocation; brokers: the two config
    // tests; each also the 4 of test/settings.test.ts (--help, -h, help, look-alike names).
    const passed = Number(/Tests\s+(\d+) passed/.exec(stdout)?.[1]);
    if (app === 'custom-connector') expect(passed).toBeGreaterThanOrEqual(7);
    else expect(passed).toBe(6);
    expect(stdout).not.toMatch(/failed|skipped/);
  });

  it.each([
    ['custom-connector', { interval: '50ms' }, 'fn', { topic: 'example' }],
    ['cron-connector', {}, 'job', { topic: 'cron-function', schedule: '* * * * * *' }],
  ] as const)(
    '%s starts at once from dist/main.js, invokes, and exits 0 on SIGTERM',
    async (app, env, fn, annotations) => {
      const gateway = await startGateway({ functions: [{ name: fn, annotations }] });
      try {
        const child = spawn(process.execPath, ['dist/main.js'], {
          cwd: join(copy, 'apps', app),
          env: { PATH: process.env['PATH'], gateway_url: gateway.url, http_port: '0', ...env },
          stdio: 'ignore',
        });
        const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        const calls = await gateway.waitForInvocations(1, { fn, timeout: 15_000 });
        expect(calls[0]?.headers['x-topic']).toBe(annotations.topic);
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        await gateway.close();
      }
    },
  );

  it.each(['sensors-connector', 'cron-connector'])(
    '%s: the printed next: command starts as printed (with the source setting it needs)',
    async (app) => {
      const lines = printed[app]?.split('\n') ?? [];
      const next = lines.findIndex((l) => l.startsWith('next: '));
      const runLine = lines[next + 1]?.trim() ?? '';
      expect(runLine).toMatch(new RegExp(`^gateway_url=\\S+ .*node apps/${app}/dist/main\\.js$`));
      if (app === 'sensors-connector') expect(runLine).toContain('broker=mqtt://127.0.0.1:1883 ');
      // As printed, from the repository root (`exec env` so that SIGTERM reaches node, not the shell); http_port=0 in
      // the environment only so that parallel tests do not collide on 8081.
      const child = spawn('sh', ['-c', `exec env ${runLine}`], {
        cwd: copy,
        env: { PATH: process.env['PATH'], http_port: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const started = new Promise<void>((resolve, reject) => {
        const onData = (c: Buffer) => {
          out += c.toString();
          if (/"msg":"connector started/.test(out)) resolve();
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        exited.then((code) => reject(new Error(`exited ${code} before starting: ${out}`)));
      });
      try {
        await started;
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    },
  );
});
