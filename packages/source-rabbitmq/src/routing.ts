// AMQP topic-exchange semantics: routing keys and binding keys are words separated by '.'; in a binding key '*'
// stands for exactly one word and '#' for zero or more words.

/** True when an AMQP topic binding key (`*` one word, `#` zero or more words) matches a routing key. */
export function amqpMatch(bindingKey: string, routingKey: string): boolean {
  if (bindingKey === routingKey) return true;
  if (!bindingKey.includes('*') && !bindingKey.includes('#')) return false;
  return matchWords(bindingKey.split('.'), 0, routingKey.split('.'), 0);
}

function matchWords(pattern: readonly string[], p: number, words: readonly string[], w: number): boolean {
  for (;;) {
    if (p === pattern.length) return w === words.length;
    const seg = pattern[p] as string;
    if (seg === '#') {
      // collapse consecutive '#', then try every split point (zero or more words)
      while (p + 1 < pattern.length && pattern[p + 1] === '#') p++;
      if (p + 1 === pattern.length) return true;
      for (let i = w; i <= words.length; i++) if (matchWords(pattern, p + 1, words, i)) return true;
      return false;
    }
    if (w === words.length) return false;
    if (seg !== '*' && seg !== words[w]) return false;
    p++;
    w++;
  }
}

/** Why `key` cannot be an AMQP binding key, or undefined when it can (the short-string limit is 255 bytes). */
export function bindingKeyProblem(key: string): string | undefined {
  if (typeof key !== 'string') return 'a binding key as a string';
  if (Buffer.byteLength(key, 'utf8') > 255) return 'a binding key of at most 255 bytes';
  return undefined;
}
