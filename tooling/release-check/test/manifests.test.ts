import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configFromEnv, type Env } from '@connector/core';
import { kafkaOptionsFromEnv } from '@connector/source-kafka';
import { mqttOptionsFromEnv } from '@connector/source-mqtt';
import { natsOptionsFromEnv } from '@connector/source-nats';
import { DEFAULT_QUEUE, rabbitmqOptionsFromEnv } from '@connector/source-rabbitmq';
import { sqsOptionsFromEnv } from '@connector/source-sqs';
import { timerSourceFromEnv } from '@connector/source-timer';
import { loadAll } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const pnpmVersion = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
const secrets = mkdtempSync(join(tmpdir(), 'secrets-'));
writeFileSync(join(secrets, 'basic-auth-user'), 'admin\n');
writeFileSync(join(secrets, 'basic-auth-password'), 's3cret\n');
afterAll(() => rmSync(secrets, { recursive: true, force: true }));

/** Each app's own env reader besides core's (what its src/app.ts passes to startConnectorFromEnv). */
const readers: Record<string, ((env: Env) => unknown) | undefined> = {
  'timer-connector': timerSourceFromEnv,
  'mqtt-connector': mqttOptionsFromEnv,
  'kafka-connector': kafkaOptionsFromEnv,
  'sqs-connector': sqsOptionsFromEnv,
  'nats-connector': natsOptionsFromEnv,
  'rabbitmq-connector': rabbitmqOptionsFromEnv,
  template: undefined, // its reader is the app's own code; the scaffolder test builds and runs it
};

interface Container {
  image: string;
  env: { name: string; value: string }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  volumeMounts: { name: string; mountPath: string }[];
}
interface Deployment {
  kind: string;
  spec: {
    template: {
      spec: {
        terminationGracePeriodSeconds: number;
        securityContext: { runAsNonRoot: boolean };
        containers: Container[];
        volumes: { name: string; secret?: { secretName: string } }[];
      };
    };
  };
}

describe.each(Object.keys(readers))('apps/%s', (app) => {
  const pkg = JSON.parse(readFileSync(join(root, 'apps', app, 'package.json'), 'utf8'));

  it('Dockerfile: multi-stage, pnpm deploy --prod of this app, non-root, node as PID 1', () => {
    const file = readFileSync(join(root, 'apps', app, 'Dockerfile'), 'utf8');
    expect(file.match(/^FROM /gm)).toHaveLength(2);
    // Node 24 is the current LTS (20 is end of life); the engines range still admits >= 20.19 for library users.
    expect(file.match(/^FROM node:24-bookworm-slim/gm)).toHaveLength(2);
    expect(file).toContain(`npm install -g pnpm@${pnpmVersion}`);
    expect(file).toContain('pnpm install --frozen-lockfile');
    expect(file).toContain(`turbo run build --filter=${pkg.name}...`);
    expect(file).toContain(`pnpm --filter ${pkg.name} deploy --prod --legacy /out`);
    expect(file).toContain(`docker build -f apps/${app}/Dockerfile`);
    const runtime = file.slice(file.lastIndexOf('FROM '));
    expect(runtime).toContain('COPY --from=build --chown=node:node /out /app');
    expect(runtime).toMatch(/^USER node$/m);
    // Exec form: node itself is PID 1 and gets SIGTERM (no shell in between that would swallow it).
    expect(runtime.trim().split('\n').pop()).toBe('ENTRYPOINT ["node", "dist/main.js"]');
  });

  it('k8s.yaml: OpenFaaS env names, basic-auth secret at /var/secrets, probes, grace period over the drain', () => {
    const docs = loadAll(readFileSync(join(root, 'apps', app, 'k8s.yaml'), 'utf8')) as Deployment[];
    expect(docs.map((d) => d.kind)).toEqual(['Deployment']);
    const pod = (docs[0] as Deployment).spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0] as Container;
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
    expect(c.env).toHaveLength(Object.keys(env).length); // no name twice
    expect(env).toMatchObject({ basic_auth: 'true', secret_mount_path: '/var/secrets' });
    expect(env['gateway_url']).toMatch(/^http:\/\/gateway\.openfaas:8080/);
    const mount = c.volumeMounts.find((m) => m.mountPath === '/var/secrets');
    expect(pod.volumes.find((v) => v.name === mount?.name)?.secret?.secretName).toBe('basic-auth');

    // Every variable is valid and read by core or the app's source (a misspelt name would be silently ignored),
    // with a folder holding basic-auth-user/-password standing in for the mounted secret.
    const read = new Set<string>();
    const tracked = new Proxy(
      { ...env, secret_mount_path: secrets },
      {
        get: (target, key) => {
          if (typeof key === 'string') read.add(key);
          return Reflect.get(target, key);
        },
      },
    );
    const config = configFromEnv(tracked);
    expect(config.credentials).toEqual({ username: 'admin', password: 's3cret' });
    const reader = readers[app];
    if (reader) reader(tracked);
    const unread = Object.keys(env).filter((k) => !read.has(k));
    expect(unread).toEqual(reader ? [] : ['topic', 'interval']);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.drainTimeout ?? 0);
    // The probes reach the port the app serves /healthz and /readyz on with this env.
    expect(c.ports).toEqual([
      { name: 'http', containerPort: config.http === false ? 'disabled' : config.http.port },
    ]);
    expect([c.livenessProbe.httpGet, c.readinessProbe.httpGet]).toEqual([
      { path: '/healthz', port: 'http' },
      { path: '/readyz', port: 'http' },
    ]);
  });
});

interface KedaDoc {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    scaleTargetRef?: { name: string };
    minReplicaCount?: number;
    maxReplicaCount?: number;
    triggers?: { type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }[];
  };
}

/** What each app's KEDA examples must agree with: its source's metric name and its own env, read by its reader. */
const keda: Record<
  string,
  {
    source: string;
    queue: (env: Env) => string;
    native: string;
    settings: (env: Env) => Record<string, string>;
  }
> = {
  'kafka-connector': {
    source: 'kafka',
    queue: () => '', // the lag is summed over every topic and partition of the group
    native: 'kafka',
    settings: (env) => {
      const o = kafkaOptionsFromEnv(env);
      return { bootstrapServers: o.brokers.join(','), consumerGroup: o.group ?? 'openfaas-kafka-connector' };
    },
  },
  'sqs-connector': {
    source: 'sqs',
    queue: (env) => sqsOptionsFromEnv(env).queues[0] as string,
    native: 'aws-sqs-queue',
    settings: (env) => {
      const o = sqsOptionsFromEnv(env);
      return { queueURL: o.queues[0] as string, awsRegion: o.region as string, scaleOnInFlight: 'true' };
    },
  },
  'nats-connector': {
    source: 'nats',
    queue: (env) => {
      const o = natsOptionsFromEnv(env);
      return `${o.stream}/${o.consumer}`;
    },
    native: 'nats-jetstream',
    settings: (env) => {
      const o = natsOptionsFromEnv(env);
      return { stream: o.stream as string, consumer: o.consumer as string };
    },
  },
  'rabbitmq-connector': {
    source: 'rabbitmq',
    queue: (env) => rabbitmqOptionsFromEnv(env).queue ?? DEFAULT_QUEUE,
    native: 'rabbitmq',
    settings: (env) => ({
      queueName: rabbitmqOptionsFromEnv(env).queue ?? DEFAULT_QUEUE,
      protocol: 'amqp',
      mode: 'QueueLength',
    }),
  },
};

describe.each(Object.keys(keda))('apps/%s KEDA examples', (app) => {
  const spec = keda[app] as (typeof keda)[string];
  const load = (file: string) => loadAll(readFileSync(join(root, 'apps', app, file), 'utf8')) as KedaDoc[];
  const deployment = (
    loadAll(readFileSync(join(root, 'apps', app, 'k8s.yaml'), 'utf8')) as KedaDoc[]
  )[0] as KedaDoc;
  const container = (deployment as unknown as Deployment).spec.template.spec.containers[0] as Container;
  const env: Env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));

  /** The file's one ScaledObject, checked against the Deployment; every authenticationRef defined beside it. */
  const scaledObject = (file: string): KedaDoc => {
    const docs = load(file);
    const scaled = docs.filter((d) => d.kind === 'ScaledObject');
    expect(scaled).toHaveLength(1);
    expect(docs.every((d) => d.kind === 'ScaledObject' || d.kind === 'TriggerAuthentication')).toBe(true);
    const s = scaled[0] as KedaDoc;
    expect(s.metadata.namespace).toBe(deployment.metadata.namespace);
    expect(s.spec.scaleTargetRef?.name).toBe(deployment.metadata.name);
    for (const t of s.spec.triggers ?? []) {
      if (t.authenticationRef === undefined) continue;
      const auth = docs.find(
        (d) => d.kind === 'TriggerAuthentication' && d.metadata.name === t.authenticationRef?.name,
      );
      expect(auth?.metadata.namespace).toBe(deployment.metadata.namespace);
    }
    return s;
  };

  it('keda.yaml: the Prometheus scaler on connector_backlog_messages of this source and queue, never below 1 replica', () => {
    const s = scaledObject('keda.yaml');
    // The metric comes from a running connector: at zero replicas nothing would report the backlog.
    expect(s.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    const [t] = s.spec.triggers ?? [];
    expect(t?.type).toBe('prometheus');
    const queue = spec.queue(env);
    const selector = `{source="${spec.source}"${queue === '' ? '' : `,queue="${queue}"`}}`;
    expect(t?.metadata['query']).toContain(`(connector_backlog_messages${selector})`);
    // Every replica reports the broker-wide figure: max over replicas, never a sum of them.
    expect(t?.metadata['query']).toMatch(/^sum\(max by \(/);
    expect(Number(t?.metadata['threshold'])).toBeGreaterThan(0);
  });

  it(`keda-native.yaml: KEDA's own ${spec.native} scaler with the settings of k8s.yaml`, () => {
    const s = scaledObject('keda-native.yaml');
    const [t] = s.spec.triggers ?? [];
    expect(t?.type).toBe(spec.native);
    expect(t?.metadata).toMatchObject(spec.settings(env));
  });
});
