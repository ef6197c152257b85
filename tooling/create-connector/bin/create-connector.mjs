#!/usr/bin/env node
// pnpm create-connector <name> [--source custom|timer|mqtt|kafka|sqs|rabbitmq|nats] [--no-install]
// Copies apps/template to apps/<name>, renames it, wires the chosen source package. Plain JS: runs without a build.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SOURCES = ['custom', 'timer', 'mqtt', 'kafka', 'sqs', 'rabbitmq', 'nats'];
const USAGE =
  'usage: pnpm create-connector <name> [--source custom|timer|mqtt|kafka|sqs|rabbitmq|nats] [--no-install]\n';

/**
 * How each source package is wired: the import, the source expression, extra startConnectorFromEnv options, the
 * setting its env reader requires (the generated test checks it is named), env for a local run (README) and example
 * env for k8s.yaml ([name, value, comment]).
 */
const WIRING = {
  timer: {
    imports: "import { timerSourceFromEnv } from '@connector/source-timer';",
    source: '(e) => timerSourceFromEnv(e).source',
    extra: '',
    required: undefined,
    run: '',
    settings: [
      ['mode', 'cron', 'cron (schedule annotations) or interval'],
      ['topic', 'cron-function', 'topic invoked'],
      ['interval', undefined, 'period with mode=interval, e.g. 10s'],
      ['timezone', undefined, 'IANA timezone of cron schedules'],
    ],
    env: [['mode', 'cron', 'functions annotated topic=cron-function and schedule="*/5 * * * *"']],
  },
  mqtt: {
    imports: "import { mqttOptionsFromEnv, mqttSource } from '@connector/source-mqtt';",
    source: '(e) => mqttSource(mqttOptionsFromEnv(e))',
    extra:
      "    // MQTT wildcards in the functions' topic annotations (sensors/+/temperature, sensors/#).\n    controller: { topicMatcher: 'mqtt' },\n",
    required: 'broker',
    run: 'broker=mqtt://127.0.0.1:1883 ',
    settings: [
      ['broker', '(required)', 'broker URL, e.g. mqtt://127.0.0.1:1883'],
      ['topic', undefined, 'topic filter(s), comma-separated (default: the annotated topics)'],
      ['qos', '1', '0, 1 or 2'],
      ['id', 'openfaas-mqtt-connector', 'client id (keep it stable: the session survives)'],
      ['clean', 'false', 'start with a clean session'],
    ],
    env: [
      ['broker', 'mqtt://mosquitto.default:1883', undefined],
      ['qos', '1', undefined],
      ['id', 'openfaas-<name>', 'stable client id: the persistent session survives restarts'],
      ['clean', 'false', undefined],
    ],
  },
  kafka: {
    imports: "import { kafkaOptionsFromEnv, kafkaSource } from '@connector/source-kafka';",
    source: '(e) => kafkaSource(kafkaOptionsFromEnv(e))',
    extra: `    // A dead-letter topic (dead_letter_topic) implies dead-lettering failed records unless on_failure=redeliver.
    connector: (source) =>
      source.deadLetter
        ? {
            deadLetter: source.deadLetter,
            onFailure: env['on_failure']?.trim().toLowerCase() === 'redeliver' ? 'redeliver' : 'dead-letter',
          }
        : {},
`,
    required: 'brokers',
    run: 'brokers=127.0.0.1:9092 ',
    settings: [
      ['brokers', '(required)', 'host:port list, e.g. 127.0.0.1:9092'],
      ['topics', undefined, 'topics, comma-separated (default: the annotated topics)'],
      ['group', 'openfaas-kafka-connector', 'consumer group'],
    ],
    env: [
      ['brokers', 'kafka.default:9092', undefined],
      ['group', 'openfaas-<name>', undefined],
    ],
  },
  sqs: {
    imports: "import { sqsOptionsFromEnv, sqsSource } from '@connector/source-sqs';",
    source: '(e) => sqsSource(sqsOptionsFromEnv(e))',
    extra: '',
    required: 'queue_name',
    run: 'queue_name=orders region=eu-west-1 ',
    settings: [
      ['queue_name', '(required)', 'queue name(s), comma-separated (or queue_url)'],
      ['queue_url', undefined, 'queue URL(s)'],
      ['region', undefined, 'AWS region (default: the SDK chain)'],
      ['endpoint', undefined, 'SQS endpoint, e.g. http://127.0.0.1:4566 for an emulator'],
    ],
    env: [
      ['queue_name', 'orders', undefined],
      ['region', 'eu-west-1', 'credentials: the AWS SDK default chain (IRSA, env, ...)'],
    ],
  },
  rabbitmq: {
    imports:
      "import { amqpMatch, rabbitmqOptionsFromEnv, rabbitmqSource } from '@connector/source-rabbitmq';",
    source: '(e) => rabbitmqSource(rabbitmqOptionsFromEnv(e))',
    extra:
      "    // AMQP wildcards in the functions' topic annotations (orders.*, orders.#), as the topic exchange routes.\n    controller: { topicMatcher: amqpMatch },\n",
    required: 'rabbitmq_url',
    run: 'rabbitmq_url=amqp://guest:guest@127.0.0.1:5672 ',
    settings: [
      ['rabbitmq_url', '(required)', 'amqp://user:password@host:5672/vhost'],
      ['exchange', 'amq.topic', 'topic exchange the queue is bound to'],
      ['queue', '<connector_name>', 'the durable queue of this connector'],
      ['prefetch', '64', 'unacked messages per queue'],
    ],
    env: [
      ['rabbitmq_url', 'amqp://rabbitmq.rabbitmq:5672', undefined],
      [
        'exchange',
        'amq.topic',
        "the queue (named after connector_name) is bound to it by the functions' topics",
      ],
    ],
  },
  nats: {
    imports: "import { natsMatch, natsOptionsFromEnv, natsSource } from '@connector/source-nats';",
    source: '(e) => natsSource(natsOptionsFromEnv(e))',
    extra:
      "    // NATS wildcards in the functions' topic annotations (orders.*, orders.>).\n    controller: { topicMatcher: natsMatch },\n",
    required: 'stream',
    run: 'nats_url=nats://127.0.0.1:4222 stream=EVENTS ',
    settings: [
      ['nats_url', 'nats://127.0.0.1:4222', 'NATS server URL (also broker_host)'],
      ['stream', '(required)', 'JetStream stream (or mode=core for at-most-once core NATS)'],
      ['consumer', 'openfaas-<name>', 'durable pull consumer, shared by replicas'],
      ['mode', 'jetstream', 'jetstream or core'],
    ],
    env: [
      ['nats_url', 'nats://nats.openfaas:4222', undefined],
      ['stream', 'EVENTS', "JetStream stream, created with the functions' topics when missing"],
      ['consumer', 'openfaas-<name>', 'durable pull consumer, shared by replicas'],
    ],
  },
};

/** One line on stderr, exit 1 (exit 2: the command line itself is incomplete). */
function fail(message, code = 1) {
  process.stderr.write(`create-connector: ${message}\n`);
  process.exit(code);
}

/** Names of every workspace package (a new app must not take one: pnpm refuses duplicate names). */
function workspaceNames() {
  const names = new Set();
  for (const group of ['packages', 'apps', 'tooling']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) {
      try {
        names.add(JSON.parse(readFileSync(join(dir, entry, 'package.json'), 'utf8')).name);
      } catch {
        // not a package
      }
    }
  }
  return names;
}

/** Why `name` cannot be an app folder and npm package name (@connector/<name>), or undefined. */
function nameProblem(name) {
  if (!name) return 'a name is required, e.g. pnpm create-connector events-connector';
  if (name.length > 200) return `"${name}" is too long for an npm package name`;
  if (!/^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$/.test(name)) {
    return `"${name}" is not a valid npm package name here: use lower-case letters, digits and dashes (e.g. events-connector)`;
  }
  if (existsSync(join(root, 'apps', name)))
    return `apps/${name} already exists: choose another name or remove it`;
  if (workspaceNames().has(`@connector/${name}`)) {
    return `@connector/${name} is already a package of this workspace: choose another name`;
  }
  return undefined;
}

/** Replace every occurrence of each pair in `file`; throws if a pair that must match does not (template drift). */
function replaceIn(file, pairs, { required = false } = {}) {
  let text = readFileSync(file, 'utf8');
  for (const [from, to] of pairs) {
    if (required && !text.includes(from))
      throw new Error(`${file}: expected to find ${JSON.stringify(from)}`);
    text = text.split(from).join(to);
  }
  writeFileSync(file, text);
}

function appTs(name, source) {
  const w = WIRING[source];
  const needsEnv = w.extra.includes("env['");
  const settings = w.settings
    .map(
      ([n, d, help]) => `  { name: '${n}', ${d === undefined ? '' : `default: '${d}', `}help: '${help}' },`,
    )
    .join('\n');
  return `import {
  type Connector,
  type Env,
  type Logger,
  type Setting,
  startConnectorFromEnv,
} from '@connector/core';
${w.imports}

/** This connector's main env settings besides core's (see @connector/source-${source}'s README for the rest). */
export const SETTINGS: readonly Setting[] = [
${settings}
];

/** Options of \`startConnector\`. */
export interface StartOptions {
  /** Environment (default \`process.env\`). */
  env?: Env;
  /** Handle SIGTERM/SIGINT (default true). */
  signals?: boolean;
  /** Logger (default: pino at env \`log_level\`). */
  logger?: Logger;
}

/** Read env (the OpenFaaS connector names plus @connector/source-${source}'s), then run controller + source. */
export function startConnector(options: StartOptions = {}): Promise<Connector> {
${needsEnv ? '  const env = options.env ?? process.env;\n' : ''}  return startConnectorFromEnv({
    ...options,
${needsEnv ? '    env,\n' : ''}    name: '${name}',
    settings: SETTINGS,
    source: ${w.source},
${w.extra}  });
}
`;
}

function testTs(name, source) {
  const w = WIRING[source];
  const imports =
    source === 'timer'
      ? "import { noopLogger } from '@connector/core';\nimport { startGateway } from '@connector/testing';\n"
      : "import { noopLogger } from '@connector/core';\n";
  const sourceTest =
    source === 'timer'
      ? `
  it('invokes a function on its cron schedule', async () => {
    const gateway = await startGateway({
      functions: [{ name: 'job', annotations: { topic: 'cron-function', schedule: '* * * * * *' } }],
    });
    const connector = await startConnector({
      env: { gateway_url: gateway.url, http_port: '0' },
      signals: false,
      logger: noopLogger,
    });
    try {
      const calls = await gateway.waitForInvocations(1, { fn: 'job', timeout: 5000 });
      expect(calls[0]?.headers['x-topic']).toBe('cron-function');
    } finally {
      await connector.stop();
      await gateway.close();
    }
  });
`
      : `
  // End to end needs a broker: start one on loopback and run testSource() from @connector/testing against it.
  it('names the source setting it needs', async () => {
    await expect(startConnector({ env: {}, signals: false, logger: noopLogger })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      setting: '${w.required}',
    });
  });
`;
  return `${imports}import { describe, expect, it } from 'vitest';
import { startConnector } from '../src/index.js';

describe('${name}', () => {
  it('fails with one line naming a bad setting', async () => {
    await expect(
      startConnector({ env: { upstream_timeout: '30' }, signals: false, logger: noopLogger }),
    ).rejects.toThrow('invalid upstream_timeout="30"');
  });
${sourceTest}});
`;
}

function readme(name, source) {
  const w = WIRING[source];
  const env = w.env.map(([k, v]) => [k, v.replace('<name>', name)]);
  return `# ${name}

An OpenFaaS connector: it reads messages with [\`@connector/source-${source}\`](../../packages/source-${source}/README.md)
and invokes the functions whose \`topic\` annotation matches, through the gateway.

\`\`\`sh
pnpm --filter @connector/${name}... build
gateway_url=http://127.0.0.1:8080 ${w.run}node apps/${name}/dist/main.js
pnpm --filter @connector/${name} test
docker build -f apps/${name}/Dockerfile -t ${name} .    # from the repository root
\`\`\`

\`k8s.yaml\` is an example Deployment next to OpenFaaS (gateway credentials from the \`basic-auth\` secret mounted at
\`/var/secrets\`, probes on \`/healthz\` and \`/readyz\`).

| env | |
| --- | --- |
| every \`@connector/core\` variable | \`gateway_url\`, \`basic_auth\`, \`max_inflight\`, \`on_failure\`, \`http_port\`, ... |
| every \`@connector/source-${source}\` variable | ${env.map(([k]) => `\`${k}\``).join(', ')}, ... (see its README) |
`;
}

function k8sEnv(name, source) {
  return WIRING[source].env
    .map(([k, v, note]) => {
      const line = `            - { name: ${k}, value: "${v.replace('<name>', name)}" }`;
      return note ? `${line} # ${note}\n` : `${line}\n`;
    })
    .join('');
}

/** Copy apps/template to apps/<name>, rename it and wire `source`. */
function scaffold(name, source) {
  const target = join(root, 'apps', name);
  cpSync(join(root, 'apps/template'), target, {
    recursive: true,
    filter: (src) => !/[\\/](node_modules|dist|\.turbo)([\\/]|$)/.test(src.slice(root.length)),
  });
  const pkgFile = join(target, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  pkg.name = `@connector/${name}`;
  pkg.description = `${name}: an OpenFaaS connector (${source === 'custom' ? 'own' : source} source).`;
  pkg.bin = { [name]: './dist/main.js' };
  if (source !== 'custom') pkg.dependencies[`@connector/source-${source}`] = 'workspace:*';
  writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);

  const renames = [
    ['template-connector', name],
    ['@connector/template', `@connector/${name}`],
    ["packageProject('template')", `packageProject('${name}')`],
    ['apps/template', `apps/${name}`],
  ];
  for (const f of [
    'src/main.ts',
    'src/app.ts',
    'vitest.config.ts',
    'test/connector.test.ts',
    'test/settings.test.ts',
    'Dockerfile',
  ]) {
    replaceIn(join(target, f), renames);
  }
  const readmeFile = join(target, 'README.md');
  writeFileSync(
    readmeFile,
    readFileSync(readmeFile, 'utf8').replace(
      /<!-- template-only -->[\s\S]*?<!-- \/template-only -->\n\n/,
      '',
    ),
  );
  replaceIn(readmeFile, renames);
  replaceIn(join(target, 'k8s.yaml'), renames);
  if (source === 'custom') return;

  const tsconfigFile = join(target, 'tsconfig.json');
  const tsconfig = JSON.parse(readFileSync(tsconfigFile, 'utf8'));
  tsconfig.references.push({ path: `../../packages/source-${source}` });
  writeFileSync(tsconfigFile, `${JSON.stringify(tsconfig, null, 2)}\n`);
  rmSync(join(target, 'src/source.ts'));
  writeFileSync(
    join(target, 'src/index.ts'),
    "export { SETTINGS, type StartOptions, startConnector } from './app.js';\nexport { cli } from './main.js';\n",
  );
  writeFileSync(join(target, 'src/app.ts'), appTs(name, source));
  writeFileSync(join(target, 'test/connector.test.ts'), testTs(name, source));
  writeFileSync(readmeFile, readme(name, source));
  replaceIn(
    join(target, 'k8s.yaml'),
    [
      [
        '            # the source\'s env\n            - { name: topic, value: "example" }\n            - { name: interval, value: "5s" }\n',
        `            # @connector/source-${source}\n${k8sEnv(name, source)}`,
      ],
    ],
    { required: true },
  );
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        source: { type: 'string' },
        install: { type: 'boolean', default: true },
        'no-install': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    fail(`${err.message.split('. ')[0]}; ${USAGE.trim()}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals.length > 1) fail(`expected one name, got ${positionals.length}: ${positionals.join(' ')}`);
  let name = positionals[0];
  let source = values.source;

  // In a terminal, ask for what the flags did not give. Lines are read through one iterator, which buffers them:
  // answers typed ahead or pasted together are kept (rl.question would drop a line that arrives before its question).
  if ((!name || !source) && process.stdin.isTTY === true && process.stdout.isTTY === true) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const lines = rl[Symbol.asyncIterator]();
    const ask = async (question) => {
      rl.setPrompt(question);
      rl.prompt();
      const next = await lines.next();
      if (next.done) fail('no answer: input closed');
      return next.value.trim();
    };
    try {
      if (!name) name = await ask('Connector name (e.g. events-connector): ');
      const problem = nameProblem(name);
      if (problem) fail(problem);
      if (!source) source = (await ask(`Source (${SOURCES.join('|')}) [custom]: `)) || 'custom';
    } finally {
      rl.close();
    }
  }
  // Without a terminal nothing can be asked: a script must say what it wants instead of getting \`custom\` silently.
  if (!name) fail(`a name is required without a terminal; ${USAGE.trim()}`, 2);
  const problem = nameProblem(name);
  if (problem) fail(problem);
  if (!source) fail(`--source is required without a terminal; ${USAGE.trim()}`, 2);
  if (!SOURCES.includes(source)) fail(`--source ${source}: expected one of ${SOURCES.join(', ')}`);

  scaffold(name, source);
  process.stdout.write(`created apps/${name} (${source} source)\n`);
  if (values.install && !values['no-install']) {
    // A new workspace package changes the lockfile; pnpm freezes it by default under CI=true.
    execFileSync('pnpm', ['install', '--prefer-offline', '--no-frozen-lockfile'], {
      cwd: root,
      stdio: 'inherit',
    });
  }
  // The run line carries the source's required setting with a local default, so it starts as printed.
  const run = source === 'custom' ? '' : WIRING[source].run;
  process.stdout.write(
    `next: pnpm --filter @connector/${name}... build && pnpm --filter @connector/${name} test\n      gateway_url=http://127.0.0.1:8080 ${run}node apps/${name}/dist/main.js\n`,
  );
}

main().catch((err) => fail(err?.message ?? String(err)));
