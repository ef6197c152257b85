import type { TopicMatcherOption } from './config.js';
import type { FunctionInfo } from './types.js';

const EMPTY: readonly FunctionInfo[] = Object.freeze([]);
const EMPTY_SUBS: readonly string[] = Object.freeze([]);

/** Split a `topic` annotation on the delimiter: trimmed, empty parts dropped, duplicates removed. */
export function parseTopics(annotation: string | undefined, delimiter = ','): string[] {
  if (annotation === undefined) return [];
  const out = new Set<string>(); // a Set: 60,000 topics in one annotation must not cost O(n²)
  for (const part of annotation.split(delimiter)) {
    const t = part.trim();
    if (t !== '') out.add(t);
  }
  return [...out];
}

/** True when an MQTT topic filter (`+` one level, `#` the rest) matches a topic; `$`-topics never match a leading wildcard. */
export function mqttMatch(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const seg = f[i];
    if (seg === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (seg !== '+' && seg !== t[i]) return false;
  }
  return f.length === t.length;
}

interface TrieNode {
  children: Map<string, TrieNode>;
  plus: TrieNode | undefined;
  hash: FunctionInfo[] | undefined; // functions whose filter ends with '#' here
  here: FunctionInfo[] | undefined; // functions whose filter ends exactly here
}

const node = (): TrieNode => ({ children: new Map(), plus: undefined, hash: undefined, here: undefined });

/** Route lookup built once per rebuild: exact topics by hash, MQTT filters by a trie, predicates by scan (cached). */
export class TopicMap {
  private readonly exact = new Map<string, FunctionInfo[]>();
  private readonly trie: TrieNode | undefined;
  private readonly predicate: ((pattern: string, topic: string) => boolean) | undefined;
  private readonly cache = new Map<string, readonly FunctionInfo[]>();
  private readonly subsCache = new Map<string, readonly string[]>();
  private readonly exactSubs = new Map<string, readonly string[]>();
  private readonly matcher: TopicMatcherOption;
  private readonly topicList: readonly string[];

  /** The functions this map routes to. */
  readonly functions: readonly FunctionInfo[];

  constructor(functions: readonly FunctionInfo[], matcher: TopicMatcherOption = 'exact') {
    this.functions = functions;
    this.matcher = matcher;
    const topics = new Set<string>();
    for (const fn of functions) {
      for (const t of fn.topics) {
        topics.add(t);
        let list = this.exact.get(t);
        if (!list) this.exact.set(t, (list = []));
        if (list[list.length - 1] !== fn) list.push(fn); // a function lists each topic once
      }
    }
    this.topicList = Object.freeze([...topics].sort());
    for (const t of topics) this.exactSubs.set(t, Object.freeze([t]));
    if (matcher === 'mqtt') {
      const root = node();
      for (const [pattern, fns] of this.exact) {
        if (!pattern.includes('+') && !pattern.includes('#')) continue;
        let n = root;
        const segs = pattern.split('/');
        const last = segs.length - 1;
        for (let i = 0; i <= last; i++) {
          const seg = segs[i] as string;
          if (seg === '#' && i === last) {
            n.hash = [...(n.hash ?? []), ...fns];
            break;
          }
          if (seg === '+') n = n.plus ??= node();
          else {
            let c = n.children.get(seg);
            if (!c) n.children.set(seg, (c = node()));
            n = c;
          }
          if (i === last) n.here = [...(n.here ?? []), ...fns];
        }
      }
      this.trie = root;
    } else if (typeof matcher === 'function') {
      this.predicate = matcher;
    }
  }

  /** Topics named by the functions' annotations, sorted. */
  topics(): readonly string[] {
    return this.topicList;
  }

  /** Number of functions in the map. */
  get size(): number {
    return this.functions.length;
  }

  /** Functions subscribed to `topic`, each once. */
  match(topic: string): readonly FunctionInfo[] {
    if (this.trie) return this.matchMqtt(topic);
    if (this.predicate) return this.matchPredicate(topic);
    return this.exact.get(topic) ?? EMPTY;
  }

  /**
   * The subscription patterns (annotation topics) that match `topic`, each once: a bounded label for metrics, where
   * the concrete topic would grow with the data. Same rule as `match` (it filters the matched functions' topics).
   */
  subscriptions(topic: string): readonly string[] {
    if (this.matcher === 'exact') return this.exactSubs.get(topic) ?? EMPTY_SUBS;
    const cached = this.subsCache.get(topic);
    if (cached) return cached;
    const fns = this.match(topic);
    const test = this.matcher === 'mqtt' ? mqttMatch : this.matcher;
    const found = new Set<string>();
    for (const f of fns) for (const p of f.topics) if (test(p, topic)) found.add(p);
    const subs = found.size === 0 ? EMPTY_SUBS : Object.freeze([...found]);
    if (this.subsCache.size >= 10_000) this.subsCache.clear();
    this.subsCache.set(topic, subs);
    return subs;
  }

  private matchMqtt(topic: string): readonly FunctionInfo[] {
    const cached = this.cache.get(topic);
    if (cached) return cached;
    const found: FunctionInfo[] = [];
    const add = (fns: readonly FunctionInfo[] | undefined) => {
      if (fns) for (const f of fns) if (!found.includes(f)) found.push(f);
    };
    add(this.exact.get(topic));
    const segs = topic.split('/');
    const dollar = topic.startsWith('$');
    const walk = (n: TrieNode, i: number) => {
      if (!(dollar && i === 0)) add(n.hash);
      if (i === segs.length) {
        add(n.here);
        return;
      }
      const c = n.children.get(segs[i] as string);
      if (c) walk(c, i + 1);
      if (n.plus && !(dollar && i === 0)) walk(n.plus, i + 1);
    };
    walk(this.trie as TrieNode, 0);
    return this.remember(topic, found.length === 0 ? EMPTY : found);
  }

  private matchPredicate(topic: string): readonly FunctionInfo[] {
    const cached = this.cache.get(topic);
    if (cached) return cached;
    const pred = this.predicate as (p: string, t: string) => boolean;
    const found: FunctionInfo[] = [];
    for (const [pattern, fns] of this.exact) {
      if (pred(pattern, topic)) for (const f of fns) if (!found.includes(f)) found.push(f);
    }
    return this.remember(topic, found.length === 0 ? EMPTY : found);
  }

  private remember(topic: string, fns: readonly FunctionInfo[]): readonly FunctionInfo[] {
    if (this.cache.size >= 10_000) this.cache.clear();
    this.cache.set(topic, fns);
    return fns;
  }
}
