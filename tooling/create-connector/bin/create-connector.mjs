#!/usr/bin/env node
// pnpm create-connector <name> [--source kafka|mqtt|sqs|timer|custom] [--no-install]
// Copies apps/template to apps/<name>, renames it, wires the chosen source package. Plain JS: runs without a build.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SOURCES = ['custom', 'timer', 'mqtt', 'kafka', 'sqs'];

/** How each source package is wired into src/app.ts. */
const WIRING = {
  timer: {
    imports: "import { timerSourceFromEnv } from '@connector/source-timer';",
    expr: 'timerSourceFromEnv(env).source',
    mqtt: false,
  },
  mqtt: {
    imports: "import { mqttOptionsFromEnv, mqttSource } from '@connector/source-mqtt';",
    expr: 'mqttSource(mqttOptionsFromEnv(env))',
    mqtt: true,
  },
  kafka: {
    imports: "import { kafkaOptionsFromEnv, kafkaSource } from '@connector/source-kafka';",
    expr: 'kafkaSource(kafkaOptionsFromEnv(env))',
    mqtt: false,
  },
  sqs: {
    imports: "import { sqsOptionsFromEnv, sqsSource } from '@connector/source-sqs';",
    expr: 'sqsSource(sqsOptionsFromEnv(env))',
    mqtt: false,
  },
};

function fail(message) {
  process.stderr.write(`create-connector: ${message}\n`);
  process.exit(1);
}

/** Why `name` cannot be an app folder and npm package name (@connector/<name>), or undefined. */
export function nameProblem(name) {
  if (!name) return 'a name is required, e.g. pnpm create-connector nats-connector';
  if (name.length > 200) return `"${name}" is too long`;
  if (!/^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$/.test(name)) {
    return `"${name}" is not a valid npm package name here: use lower-case letters, digits and dashes (e.g. nats-connector)`;
  }
  return undefined;
}

function replaceIn(file, pairs) {
  let text = readFileSync(file, 'utf8');
  for (const [from, to] of pairs) text = text.split(from).join(to);
  writeFileSync(file, text);
}

async function ask(question, fallback) {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await rl.question(`${question} `)).trim();
    return answer === '' ? fallback : answer;
  } finally {
    rl.close();
  }
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      install: { type: 'boolean', default: true },
      'no-install': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: pnpm create-connector <name> [--source custom|timer|mqtt|kafka|sqs] [--no-install]\n',
    );
    return;
  }
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  let name = positionals[0];
  let source = values.source;
  if (!name && interactive) name = await ask('Connector name (e.g. nats-connector):', '');
  if (!source && interactive && !positionals[0])
    source = await ask(`Source (${SOURCES.join('|')}) [custom]:`, 'custom');
  source ??= 'custom';
  const problem = nameProblem(name);
  if (problem) fail(problem);
  if (!SOURCES.includes(source)) fail(`--source ${source}: expected one of ${SOURCES.join(', ')}`);
  const target = join(root, 'apps', name);
  if (existsSync(target)) fail(`apps/${name} already exists: choose another name or remove it`);

  cpSync(join(root, 'apps/template'), target, {
    recursive: true,
    filter: (src) => !/[\\/](node_modules|dist|\.turbo)([\\/]|$)/.test(src.slice(root.length)),
  });
  const pkgFile = join(target, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  pkg.name = `@connector/${name}`;
  pkg.description = `${name}: an OpenFaaS connector (${source} source).`;
  pkg.bin = { [name]: './dist/main.js' };
  if (source !== 'custom') pkg.dependencies[`@connector/source-${source}`] = 'workspace:*';
  writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
  for (const f of ['src/main.ts', 'src/app.ts', 'README.md', 'vitest.config.ts', 'test/connector.test.ts']) {
    replaceIn(join(target, f), [
      ['template-connector', name],
      ['@connector/template', `@connector/${name}`],
      ["packageProject('template')", `packageProject('${name}')`],
      ['apps/template', `apps/${name}`],
    ]);
  }

  if (source !== 'custom') {
    const w = WIRING[source];
    const tsconfig = JSON.parse(readFileSync(join(target, 'tsconfig.json'), 'utf8'));
    tsconfig.references.push({ path: `../../packages/source-${source}` });
    writeFileSync(join(target, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
    rmSync(join(target, 'src/source.ts'));
    writeFileSync(
      join(target, 'src/index.ts'),
      "export { type StartOptions, startConnector } from './app.js';\n",
    );
    writeFileSync(
      join(target, 'src/app.ts'),
      `import { type Connector, type Env, type Logger, startConnectorFromEnv } from '@connector/core';
${w.imports}

/** Options of \`startConnector\`. */
export interface StartOptions {
  /** Environment (default \`process.env\`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env \`log_level\`). */
  logger?: Logger;
}

/** Read env (the OpenFaaS connector names plus the source's), then run controller + source as one connector. */
export function startConnector(options: StartOptions = {}): Promise<Connector> {
  return startConnectorFromEnv({
    ...options,
    name: '${name}',
    source: (env) => ${w.expr},${w.mqtt ? "\n    controller: { topicMatcher: 'mqtt' }," : ''}
  });
}
`,
    );
    writeFileSync(
      join(target, 'test/connector.test.ts'),
      `import { noopLogger } from '@connector/core';
import { describe, expect, it } from 'vitest';
import { startConnector } from '../src/index.js';

describe('${name}', () => {
  it('fails with one line naming a bad setting', async () => {
    await expect(startConnector({ env: { upstream_timeout: '30' }, signals: false, logger: noopLogger })).rejects.toThrow(
      'invalid upstream_timeout="30"',
    );
  });
});
`,
    );
    replaceIn(join(target, 'README.md'), [
      [
        "It runs at once with a placeholder source that emits\na message on topic `example` every 5 s; replace `src/source.ts` with your broker's client",
        `It uses \`@connector/source-${source}\` (see its README for the env it reads)`,
      ],
    ]);
  }

  process.stdout.write(`created apps/${name} (${source} source)\n`);
  if (values.install && !values['no-install']) {
    execFileSync('pnpm', ['install', '--prefer-offline', '--no-frozen-lockfile'], {
      cwd: root,
      stdio: 'inherit',
    });
  }
  process.stdout.write(
    `next: pnpm --filter @connector/${name}... build && pnpm --filter @connector/${name} test\n      gateway_url=http://127.0.0.1:8080 node apps/${name}/dist/main.js\n`,
  );
}

main().catch((err) => fail(err?.message ?? String(err)));
