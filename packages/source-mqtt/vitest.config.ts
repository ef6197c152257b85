import { packageProject, sourceCondition } from '../../vitest.shared.ts';

// vitest forwards resolve.conditions to the worker as `node --conditions`, so the shared list's 'import' makes
// CJS require() pick ESM entry points too (mqtt.js's require('ws') then gets ws's ESM wrapper and websockets
// break). Vite adds 'import'/'require' by itself; keep only the rest here.
const conditions = [sourceCondition, 'module', 'node', 'default'];
const base = packageProject('source-mqtt');
export default {
  ...base,
  resolve: { ...base.resolve, conditions },
  ssr: { ...base.ssr, resolve: { ...base.ssr?.resolve, conditions } },
};
