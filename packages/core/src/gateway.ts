import { GatewayError } from './errors.js';
import type { Invoker } from './invoker.js';

/** The fields of the gateway's FunctionStatus that routing uses. */
export interface FunctionStatus {
  readonly name: string;
  readonly namespace?: string;
  readonly annotations?: Readonly<Record<string, unknown>> | null;
  readonly labels?: Readonly<Record<string, unknown>> | null;
}

function check(path: string, status: number): void {
  if (status === 200) return;
  const hint =
    status === 401 || status === 403
      ? ' (check basic_auth / credentials, or gateway_token_file and its policy)'
      : '';
  throw new GatewayError('ERR_GATEWAY_STATUS', `GET ${path} answered ${status}${hint}`, status);
}

/** Namespaces to scan, or `undefined` when the provider has none (404 or an empty list). */
export async function listNamespaces(invoker: Invoker): Promise<string[] | undefined> {
  const { status, json } = await invoker.system('/system/namespaces');
  if (status === 404) return undefined;
  check('/system/namespaces', status);
  if (!Array.isArray(json) || json.length === 0) return undefined;
  return json.filter((n): n is string => typeof n === 'string' && n !== '');
}

/** Functions of one namespace (or of the provider's only namespace when `namespace` is undefined). */
export async function listFunctions(invoker: Invoker, namespace?: string): Promise<FunctionStatus[]> {
  const path =
    namespace === undefined
      ? '/system/functions'
      : `/system/functions?namespace=${encodeURIComponent(namespace)}`;
  const { status, json } = await invoker.system(path);
  check(path, status);
  if (!Array.isArray(json))
    throw new GatewayError('ERR_GATEWAY_STATUS', `GET ${path}: expected a JSON array`, status);
  return json.filter(
    (f): f is FunctionStatus =>
      typeof f === 'object' && f !== null && typeof f.name === 'string' && f.name !== '',
  );
}
