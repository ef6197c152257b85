import type { FunctionSpec } from './gateway.js';

/** Parse `name:topics[@ns]` (topics may be empty). */
export function parseFunctionArg(arg: string, annotation: 'topic' | 'schedule'): FunctionSpec {
  const colon = arg.indexOf(':');
  if (colon <= 0)
    throw new Error(
      `--${annotation === 'topic' ? 'function' : 'cron'} ${JSON.stringify(arg)}: expected name:value`,
    );
  const name = arg.slice(0, colon);
  let value = arg.slice(colon + 1);
  let namespace: string | undefined;
  const at = value.lastIndexOf('@');
  if (at >= 0) {
    namespace = value.slice(at + 1);
    value = value.slice(0, at);
  }
  const annotations = annotation === 'topic' ? { topic: value } : { topic: 'cron-function', schedule: value };
  return namespace === undefined ? { name, annotations } : { name, namespace, annotations };
}
