// In a checkout the layout worker is TypeScript: this plain-JS entry registers tsx and imports it (as
// runtime/actor-runtime/shard-worker.js does). In the package, layout-worker.ts compiles to this name.
import { register } from 'tsx/esm/api';

register();
await import('./layout-worker.ts');
