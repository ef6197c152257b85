/**
 * A stand-in for the object `get()` returns once it is set (e.g. in `beforeAll`), for module-level code: every
 * property read goes to that object; a read before it is set throws `<what> is not set yet`.
 */
export function lateBound<T extends object>(get: () => T | undefined, what: string): T {
  return new Proxy({} as T, {
    get: (_, key) => {
      const value = get();
      if (value === undefined) throw new Error(`${what} is not set yet`);
      return Reflect.get(value, key);
    },
  });
}
