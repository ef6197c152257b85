import { packageProject } from '../../vitest.shared.ts';

// One file at a time: the broker-restart test closes every connection of the shared RabbitMQ server.
export default packageProject('source-rabbitmq', { fileParallelism: false, testTimeout: 60_000 });
