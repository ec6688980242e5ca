// The specs' way to run a fast-check property lives in the testkit (users get the same seeds and replay
// line); this re-export keeps the specs' import path.
export { checkProperty, propertySeed } from '../../runtime/testkit/model/property.ts';
