// The testkit's simulated cluster: TestCluster, its checks' models, and a sweep over seeds.

export { type HistoryModel, kvModel, type RegisterSpec, registerModel } from './models.ts';
export type { RecordedCommand } from './recorder.ts';
export { type SeedSweepOptions, sweepSeeds } from './seeds.ts';
export {
  type ClusterInvariant,
  TestCluster,
  TestClusterFailure,
  type TestClusterOptions,
  type TestClusterReport,
  type TestClusterServices,
} from './test-cluster.ts';
