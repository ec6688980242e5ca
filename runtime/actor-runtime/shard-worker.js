// piscina loads this plain-JS entry; it registers tsx so the TypeScript shard worker can be imported.
import { register } from 'tsx/esm/api';

register();
const { default: runShard } = await import('./shard-worker.ts');
export default runShard;
