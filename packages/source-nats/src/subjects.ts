/** Why `subject` is not a valid NATS subject or filter (`*` one token, `>` the rest), or undefined when it is. */
export function subjectProblem(subject: string): string | undefined {
  if (subject === '') return 'a non-empty subject';
  if (/\s/.test(subject)) return 'a subject without white space';
  const tokens = subject.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (t === '') return "a subject without empty tokens ('a..b', a leading or trailing '.')";
    if (t === '>' && i !== tokens.length - 1) return "'>' only as the last token of a subject";
    if (t !== '*' && t !== '>' && (t.includes('*') || t.includes('>')))
      return "wildcards '*' and '>' only as a whole token";
  }
  return undefined;
}

/**
 * True when the NATS subject filter `pattern` (`*` one token, `>` one or more trailing tokens) matches `subject`.
 * The `topicMatcher` predicate the NATS connector gives core's topic map.
 */
export function natsMatch(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}

/** True when every subject `filter` matches is also matched by `by` (e.g. `orders.*` is covered by `orders.>`). */
export function subjectCovers(by: string, filter: string): boolean {
  if (by === filter) return true;
  const b = by.split('.');
  const f = filter.split('.');
  for (let i = 0; i < b.length; i++) {
    const tok = b[i];
    if (tok === '>') return i === b.length - 1 && f.length > i;
    if (i >= f.length) return false;
    const ft = f[i];
    if (ft === '>') return false;
    if (tok !== '*' && tok !== ft) return false;
  }
  return b.length === f.length;
}
