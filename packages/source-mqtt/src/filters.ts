/** True when every topic that filter `b` matches is also matched by filter `a` (MQTT wildcard semantics). */
export function covers(a: string, b: string): boolean {
  if (a === b) return true;
  const A = a.split('/');
  const B = b.split('/');
  for (let i = 0; i < A.length; i++) {
    const x = A[i] as string;
    if (x === '#') {
      // `a/#` also matches `a`; a leading wildcard never matches `$`-topics
      if (i === 0 && (B[0] as string).startsWith('$')) return false;
      return B.length >= i;
    }
    if (i >= B.length) return false;
    const y = B[i] as string;
    if (y === '#') return false;
    if (x === '+') {
      if (i === 0 && y.startsWith('$')) return false;
      continue;
    }
    if (y === '+' || x !== y) return false;
  }
  return A.length === B.length;
}

/** The filters of `filters` not covered by another one (first of equal ones kept), in input order. */
export function reduceFilters(filters: Iterable<string>): string[] {
  const list = [...new Set(filters)];
  return list.filter((f, i) => !list.some((g, j) => j !== i && covers(g, f) && (!covers(f, g) || j < i)));
}
