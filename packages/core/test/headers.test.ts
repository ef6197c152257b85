import { describe, expect, it } from 'vitest';
import {
  copyMessageHeaders,
  encodeHeaderValue,
  functionPath,
  isHeaderName,
  isPlainHeaderValue,
  MAX_MESSAGE_HEADER_BYTES,
  pathSegment,
  RESERVED_HEADERS,
} from '../src/headers.js';

// The header policy's edges, one by one (mutation testing showed the integration tests leave them open).

describe('isHeaderName', () => {
  it('accepts every RFC 9110 token character and nothing else', () => {
    expect(isHeaderName("!#$%&'*+-.^_`|~09azAZ")).toBe(true);
    expect(isHeaderName('')).toBe(false);
    for (const c of [
      ' ',
      '"',
      '(',
      ')',
      ',',
      '/',
      ':',
      ';',
      '<',
      '=',
      '>',
      '?',
      '@',
      '[',
      '\\',
      ']',
      '{',
      '}',
      '\x7f',
    ])
      expect(isHeaderName(`a${c}`), JSON.stringify(c)).toBe(false);
    expect(isHeaderName('é')).toBe(false); // > 127
    expect(isHeaderName('a\u0100')).toBe(false);
    expect(isHeaderName('\x00')).toBe(false);
  });
});

describe('isPlainHeaderValue', () => {
  it('printable ASCII and inner tabs pass; controls, DEL, non-ASCII and edge white space do not', () => {
    expect(isPlainHeaderValue('')).toBe(true);
    expect(isPlainHeaderValue('a')).toBe(true);
    expect(isPlainHeaderValue('~')).toBe(true); // 0x7e
    expect(isPlainHeaderValue('!')).toBe(true); // 0x21
    expect(isPlainHeaderValue('a b')).toBe(true);
    expect(isPlainHeaderValue('a\tb')).toBe(true);
    expect(isPlainHeaderValue('a\x7fb')).toBe(false);
    expect(isPlainHeaderValue('a\x1fb')).toBe(false);
    expect(isPlainHeaderValue('a\nb')).toBe(false);
    expect(isPlainHeaderValue('aéb')).toBe(false);
    expect(isPlainHeaderValue(' a')).toBe(false);
    expect(isPlainHeaderValue('a ')).toBe(false);
    expect(isPlainHeaderValue('\ta')).toBe(false);
    expect(isPlainHeaderValue('a\t')).toBe(false);
    expect(isPlainHeaderValue(' ')).toBe(false);
  });
});

describe('encodeHeaderValue', () => {
  it('passes plain text unchanged and percent-encodes the rest as UTF-8, % included', () => {
    expect(encodeHeaderValue('plain value')).toBe('plain value');
    expect(encodeHeaderValue('')).toBe('');
    expect(encodeHeaderValue('50% é')).toBe('50%25%20%C3%A9');
    expect(encodeHeaderValue(' x')).toBe('%20x');
    expect(encodeHeaderValue('a\tb\n')).toBe('a%09b%0A');
    expect(encodeHeaderValue('\x7f~!')).toBe('%7F~!');
    expect(decodeURIComponent(encodeHeaderValue('50% é\u0000 \u{1f600}'))).toBe('50% é\u0000 \u{1f600}');
  });

  it('sends plain bytes as latin1 text and encodes any other byte', () => {
    const b = (...xs: number[]) => new Uint8Array(xs);
    expect(encodeHeaderValue(b())).toBe('');
    expect(encodeHeaderValue(b(0x61, 0x20, 0x09, 0x7e))).toBe('a \t~');
    expect(encodeHeaderValue(b(0x21))).toBe('!');
    expect(encodeHeaderValue(b(0x61, 0x7f))).toBe('a%7F');
    expect(encodeHeaderValue(b(0x61, 0x1f))).toBe('a%1F');
    expect(encodeHeaderValue(b(0x61, 0x00, 0x62))).toBe('a%00b'); // a control byte inside, not at an edge
    expect(encodeHeaderValue(b(0x61, 0x0a, 0x09, 0x62))).toBe('a%0A%09b');
    expect(encodeHeaderValue(b(0x61, 0x80))).toBe('a%80');
    expect(encodeHeaderValue(b(0xff, 0x00))).toBe('%FF%00');
    expect(encodeHeaderValue(b(0x20, 0x61))).toBe('%20a');
    expect(encodeHeaderValue(b(0x61, 0x20))).toBe('a%20');
    expect(encodeHeaderValue(b(0x09, 0x61))).toBe('%09a');
    expect(encodeHeaderValue(b(0x61, 0x09))).toBe('a%09');
    expect(encodeHeaderValue(b(0x25, 0x20, 0x00))).toBe('%25%20%00');
    // A view into a larger buffer: only its own bytes.
    const big = new Uint8Array([0x7a, 0x61, 0x62, 0x7a]);
    expect(encodeHeaderValue(big.subarray(1, 3))).toBe('ab');
    expect(encodeHeaderValue(Buffer.from('xy'))).toBe('xy');
  });
});

describe('copyMessageHeaders', () => {
  it('lower-cases names, refuses non-tokens and reserved names (any case), encodes values', () => {
    const out: Record<string, string> = {};
    const dropped = copyMessageHeaders(
      {
        'X-Good': 'v',
        'Bad Name': 'v',
        'Content-Type': 'text/x',
        'X-TOPIC': 'spoof',
        'x-bytes': new Uint8Array([0xe2]),
      },
      out,
    );
    expect(out).toEqual({ 'x-good': 'v', 'x-bytes': '%E2' });
    expect(dropped).toEqual({ refused: ['Bad Name', 'Content-Type', 'X-TOPIC'], oversize: [] });
    for (const name of RESERVED_HEADERS) {
      const o: Record<string, string> = {};
      expect(copyMessageHeaders({ [name]: 'x' }, o)?.refused).toEqual([name]);
      expect(o).toEqual({});
    }
  });

  it('returns undefined when nothing was dropped', () => {
    const out: Record<string, string> = {};
    expect(copyMessageHeaders({ a: '1' }, out)).toBeUndefined();
    expect(copyMessageHeaders({}, out)).toBeUndefined();
    expect(out).toEqual({ a: '1' });
  });

  it('keeps the set within maxBytes (name + value + 4 each), counting encoded values; later small ones still fit', () => {
    const out: Record<string, string> = {};
    // 'a' + 5 + 4 = 10 bytes; 'b' + 6 + 4 = 11 (over 20 after 10); 'c' + 5 + 4 = 10 (exactly 20: fits).
    const dropped = copyMessageHeaders({ a: '12345', b: '123456', c: '12345', d: '' }, out, 20);
    expect(out).toEqual({ a: '12345', c: '12345' });
    expect(dropped).toEqual({ refused: [], oversize: ['b', 'd'] });
    // The encoded length counts: 'é' is 6 bytes on the wire.
    const o2: Record<string, string> = {};
    expect(copyMessageHeaders({ e: 'é' }, o2, 1 + 5 + 4)?.oversize).toEqual(['e']);
    expect(copyMessageHeaders({ e: 'é' }, o2, 1 + 6 + 4)).toBeUndefined();
  });

  it('defaults to MAX_MESSAGE_HEADER_BYTES', () => {
    expect(MAX_MESSAGE_HEADER_BYTES).toBe(16 * 1024);
    const out: Record<string, string> = {};
    const fits = 'v'.repeat(MAX_MESSAGE_HEADER_BYTES - 1 - 4);
    expect(copyMessageHeaders({ a: fits }, out)).toBeUndefined();
    expect(copyMessageHeaders({ a: `${fits}v` }, {})?.oversize).toEqual(['a']);
  });
});

describe('pathSegment / functionPath', () => {
  it('encodes everything that could leave /function/<name>.<namespace>', () => {
    expect(pathSegment('.')).toBe('%2E');
    expect(pathSegment('..')).toBe('%2E%2E');
    expect(pathSegment('...')).toBe('...');
    expect(pathSegment('a.b')).toBe('a.b');
    expect(pathSegment('../x')).toBe('..%2Fx');
    expect(pathSegment('a b?#%')).toBe('a%20b%3F%23%25');
    expect(functionPath('fn', '')).toBe('fn');
    expect(functionPath('fn', 'ns')).toBe('fn.ns');
    expect(functionPath('a/b', '..')).toBe('a%2Fb.%2E%2E');
  });

  // fast-check counterexamples: an empty name with namespace '.' made '.%2E', read as '..' by URL parsers and
  // proxies (the parent of /function/); a lone surrogate made encodeURIComponent throw inside invoke.
  it.each([
    ['', '.'],
    ['', ''],
    ['', 'ns'],
    ['.', ''],
    ['..', ''],
    ['\ud800', ''],
    ['fn', '\udfff'],
  ])('refuses name %j in namespace %j: it cannot be a function path', (name, namespace) => {
    expect(functionPath(name, namespace)).toBeUndefined();
  });
});
