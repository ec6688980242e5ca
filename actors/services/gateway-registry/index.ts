// The gateway registry service (issue 13): what clients send it and what it answers (commands.ts), the
// service itself (service.ts). The balancing rules engine it runs is rules/.

export * from './commands.ts';
export { FAILED_RETRY_MS, REGISTRY_ACTOR, Registry, type RegistrySnapshot } from './registry.ts';
export { gatewaysService } from './service.ts';
