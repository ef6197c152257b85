import type { InvokeResult, Logger, ResponseSubscriber } from './types.js';

const decoder = new TextDecoder();

/** The Go SDK's ResponsePrinter: logs each result (status, topic, function, size; the body when asked). */
export function createResponsePrinter(options: { logger: Logger; printBody?: boolean }): ResponseSubscriber {
  const { logger, printBody = false } = options;
  return {
    response(r: InvokeResult) {
      const line: Record<string, unknown> = {
        topic: r.topic,
        function: r.function,
        status: r.status,
        bytes: r.body.byteLength,
        durationMs: Math.round(r.duration * 10) / 10,
        attempt: r.attempt,
      };
      if (r.callId !== undefined) line['callId'] = r.callId;
      if (printBody && r.body.byteLength > 0) line['body'] = decoder.decode(r.body);
      if (r.error) logger.warn({ ...line, err: r.error.message, code: r.error.code }, 'invocation failed');
      else logger.info(line, 'invocation result');
    },
  };
}
