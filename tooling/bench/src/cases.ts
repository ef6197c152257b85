// Every case module, in report order. A new case: write a module that calls registerCase() and import it here.
import './cases/throughput.js';
import './cases/match.js';
import './cases/adaptive.js';
import './cases/batch.js';
import './cases/topics.js';
import './cases/memory.js';
import './sources.js';
import './e2e.js';

export { findCase, registeredCases } from './registry.js';
