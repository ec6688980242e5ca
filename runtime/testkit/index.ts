// chorus/testkit: what a service developer imports to test their own services.
// Model-based testing of any statechart (runtime/testkit/model/) and TestCluster, an in-process
// simulated cluster. See docs/testing.md.

// A machine's actor input, and the types of what an actor emits (a step record's `emitted`).
export { actorInput, REPLY_EVENT, TELL_EVENT } from '../../actors/actor-runtime/service.ts';
export * from './cluster/index.ts';
export { type CoverageReport, formatCoverage, type Reach } from './model/coverage.ts';
export { ModelPathError, NondeterminismError } from './model/errors.ts';
export { type DescribeModelOptions, describeModel, type PathKind } from './model/mocha.ts';
export { createModel, MachineModel, type ModelOptions, type WalkOptions } from './model/model.ts';
export type { Oracle, StepProperty, StepRecord } from './model/oracle.ts';
export type { ModelPath, SimplePathBounds } from './model/paths.ts';
export { checkProperty, propertySeed } from './model/property.ts';
export { type Step, stepLabel, WAIT, type Wait, wait } from './model/steps.ts';
