import { createConnector, createController } from '@connector/core';
import { startKafkaBroker } from '@connector/kafka-test-broker';
import { kafkaSource } from '@connector/source-kafka';
import { memoryLogger, startGateway } from '@connector/testing';

const broker = await startKafkaBroker({ port: 0, partitions: 1, advertised: { host: '127.0.0.1', port: 1 } });
broker.createTopic('t', 1);
const g = await startGateway({ functions: [{ name: 'fn', annotations: { topic: 't' } }] });
const logger = memoryLogger();
const s = kafkaSource({ brokers: broker.brokers, topics: ['t'] });
const c = createConnector({ controller: createController({ gatewayUrl: g.url }), source: s, logger });
const t0 = Date.now();
c.start().then(
  () => console.log('STARTED', Date.now() - t0),
  (e) => console.log('START FAILED', Date.now() - t0, e.message),
);
let seen = 0;
const iv = setInterval(() => {
  for (const l of logger.lines.slice(seen))
    if (l.level !== 'debug')
      console.log(Date.now() - t0, l.level, l.msg, JSON.stringify(l.obj).slice(0, 300));
  seen = logger.lines.length;
}, 500);
await new Promise((r) => setTimeout(r, 60000));
clearInterval(iv);
console.log('HEALTH', JSON.stringify(s.health()).slice(0, 400));
await c.stop();
await g.close();
await broker.close();
console.log('done', broker.brokers);
