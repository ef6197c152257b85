/**
 * The one header policy: which message headers reach a function, and how a value HTTP cannot carry is encoded.
 * Sources hand their broker's headers over raw; only the invoker calls this.
 */

/** Header values a message may carry: text, or raw bytes (Kafka headers). */
export type MessageHeaderValue = string | Uint8Array;

/** Raw headers of a message, as its broker had them. */
export type MessageHeaders = Readonly<Record<string, MessageHeaderValue>>;

/**
 * Names a message can never set: hop-by-hop and framing headers, identity, and the connector's own. Content-Type
 * comes from `SourceMessage.contentType`, never from a header.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'connection',
  'content-length',
  'content-type',
  'cookie',
  'expect',
  'host',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'set-cookie',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-call-id',
  'x-callback-url',
  'x-connector',
  'x-topic',
]);

/** Most bytes of message-supplied headers per request (names + values); later headers beyond it are dropped. */
export const MAX_MESSAGE_HEADER_BYTES = 16 * 1024;

// RFC 9110 token characters, as a lookup table (faster than a regex per header on the hot path).
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TOKEN[c.charCodeAt(0)] = 1;

/** True when `name` is an HTTP token (a valid header name). */
export function isHeaderName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) return false;
  }
  return true;
}

/** True when `value` can go out as it is: printable ASCII and tab, no leading/trailing white space. */
export function isPlainHeaderValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) return false;
  }
  const n = value.length;
  return n === 0 || (value.charCodeAt(0) > 0x20 && value.charCodeAt(n - 1) > 0x20);
}

const HEX = '0123456789ABCDEF';

function percentEncode(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    // Kept as they are: visible ASCII but '%' (so the encoding reverses with decodeURIComponent).
    if (b > 0x20 && b < 0x7f && b !== 0x25) out += String.fromCharCode(b);
    else out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

const utf8 = new TextEncoder();

/**
 * A header value HTTP can carry. Printable ASCII passes unchanged; anything else (non-ASCII text, control characters,
 * raw bytes, edge white space) is sent as percent-encoded UTF-8 / bytes, '%' included, so
 * `decodeURIComponent(value)` gives the original text back. The one encoding for every source and for X-Topic.
 */
export function encodeHeaderValue(value: MessageHeaderValue): string {
  if (typeof value === 'string') return isPlainHeaderValue(value) ? value : percentEncode(utf8.encode(value));
  let plain = true;
  for (const b of value) {
    if ((b < 0x20 && b !== 0x09) || b > 0x7e) {
      plain = false;
      break;
    }
  }
  const n = value.length;
  if (plain && (n === 0 || ((value[0] as number) > 0x20 && (value[n - 1] as number) > 0x20)))
    return Buffer.from(value.buffer, value.byteOffset, n).toString('latin1');
  return percentEncode(value);
}

const utf8Text = new TextDecoder();

/** One header of a message by name, case-insensitively (bytes read as UTF-8), or undefined. */
export function messageHeader(headers: MessageHeaders, name: string): string | undefined {
  let v = headers[name];
  if (v === undefined) {
    const lower = name.toLowerCase();
    for (const k in headers) {
      if (k.toLowerCase() === lower) {
        v = headers[k];
        break;
      }
    }
  }
  if (v === undefined || typeof v === 'string') return v;
  return utf8Text.decode(v);
}

/**
 * A CloudEvents attribute as an HTTP `ce-` header value (HTTP protocol binding 3.1.3.2): UTF-8, with space, `"`,
 * `%` and every byte outside printable ASCII percent-encoded, so `decodeURIComponent(value)` gives it back.
 */
export function encodeCloudEventValue(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c > 0x7e || c === 0x22 || c === 0x25) {
      let out = value.slice(0, i);
      for (const b of utf8.encode(value.slice(i))) {
        if (b > 0x20 && b < 0x7f && b !== 0x22 && b !== 0x25) out += String.fromCharCode(b);
        else out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
      }
      return out;
    }
  }
  return value;
}

/** What `copyMessageHeaders` left out, for a debug line. */
export interface DroppedHeaders {
  /** Names that are not HTTP tokens or are reserved. */
  refused: string[];
  /** Names dropped because the header set was over `MAX_MESSAGE_HEADER_BYTES`. */
  oversize: string[];
}

/** Names seen lately → their lower-cased form, or null when refused: a source sends the same few names with every
 * message, and lower-casing them allocated a string per header per message. Bounded: cleared when full. */
const headerKeys = new Map<string, string | null>();

/** `name` lower-cased when a message may set it (an HTTP token, not reserved), else undefined. */
function headerKey(name: string): string | undefined {
  let key = headerKeys.get(name);
  if (key === undefined) {
    const lower = name.toLowerCase();
    key = isHeaderName(name) && !RESERVED_HEADERS.has(lower) ? lower : null;
    if (headerKeys.size >= 1024) headerKeys.clear();
    headerKeys.set(name, key);
  }
  return key ?? undefined;
}

/**
 * Copy a message's headers into `out` (lower-cased names) under the policy: names must be HTTP tokens and not
 * reserved, values are encoded, and the set stays within `maxBytes`. Returns what was dropped, or undefined.
 */
export function copyMessageHeaders(
  headers: MessageHeaders,
  out: Record<string, string>,
  maxBytes = MAX_MESSAGE_HEADER_BYTES,
): DroppedHeaders | undefined {
  let dropped: DroppedHeaders | undefined;
  let bytes = 0;
  for (const name in headers) {
    const lower = headerKey(name);
    if (lower === undefined) {
      (dropped ??= { refused: [], oversize: [] }).refused.push(name);
      continue;
    }
    const value = encodeHeaderValue(headers[name] as MessageHeaderValue);
    bytes += lower.length + value.length + 4;
    if (bytes > maxBytes) {
      (dropped ??= { refused: [], oversize: [] }).oversize.push(name);
      bytes -= lower.length + value.length + 4;
      continue;
    }
    out[lower] = value;
  }
  return dropped;
}

/**
 * One path segment for a function name or namespace: percent-encoded so that no name (`a b`, `../system/x`, `?`,
 * `#`, `%`) can leave `/function/<name>.<namespace>`; `.` and `..` alone are encoded too.
 */
export function pathSegment(s: string): string {
  if (s === '.' || s === '..') return s.replaceAll('.', '%2E');
  return encodeURIComponent(s);
}

/** A lone surrogate: text that is not well-formed UTF-16 (with the `u` flag a pair is one code point, not matched). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * The invocation path of a function address (`name` or `name.namespace`) after `/function/` or `/async-function/`,
 * or undefined when the address cannot be one: an empty name (`''` with namespace `'.'` made `.%2E`, which URL
 * parsers and proxies read as `..`, the parent of `/function/`), `.` or `..` alone, or text that is not well-formed
 * UTF-16 (a lone surrogate, which `encodeURIComponent` refuses with a throw).
 */
export function functionPath(name: string, namespace: string): string | undefined {
  if (name === '' || (namespace === '' && (name === '.' || name === '..'))) return undefined;
  if (LONE_SURROGATE.test(name) || LONE_SURROGATE.test(namespace)) return undefined;
  return namespace === '' ? pathSegment(name) : `${pathSegment(name)}.${pathSegment(namespace)}`;
}
