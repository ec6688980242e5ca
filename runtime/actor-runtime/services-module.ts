// The module a member hosts its actor services from (the `services` field of the cluster configuration).
// It must export `services`: an array of `defineService(...)` results. It may also export
// `performEffect(intent, context)`: how the leader carries out an actor's external effect (emitted with
// `effect(intent)`); its return value goes back to the actor through the log as the effect's result.
// The main thread loads it once before anything starts, so a wrong path or a module without services is
// refused with a message naming the field; every shard worker then imports the same module by URL.

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HostedService } from '../../actors/actor-runtime/service.ts';
import { ConfigError } from '../config.ts';

/** What the leader learns of an effect it performs. */
export interface EffectContext {
  /** `address!seq`: unique in the cluster; the same on a retry by a later leader (use it to deduplicate). */
  readonly effectId: string;
  /** The actor that asked for it. */
  readonly address: string;
}

/** Carries out an external effect on the leader. May be called again for the same effectId by a new leader. */
export type PerformEffect = (intent: unknown, context: EffectContext) => unknown | Promise<unknown>;

export interface ServicesModule {
  /** The module's file URL (what shard workers import). */
  readonly url: string;
  readonly services: readonly HostedService[];
  readonly performEffect: PerformEffect | undefined;
}

/** A module path or URL as a URL string: relative paths are taken from `base` (default: the working directory). */
export const servicesModuleUrl = (module: string | URL, base = process.cwd()): string => {
  if (module instanceof URL) return module.href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module)) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(base, module)).href;
};

const isHostedService = (value: unknown): value is HostedService =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as HostedService).name === 'string' &&
  (value as HostedService).actorTypes instanceof Map;

/**
 * Import and check a services module. Throws ConfigError naming `field` (default `services`) when it
 * does not load, exports no services, exports something else, or names two services alike.
 */
export const loadServicesModule = async (
  module: string | URL,
  field = 'services',
): Promise<ServicesModule> => {
  const url = servicesModuleUrl(module);
  const problem = (message: string) => new ConfigError([{ field, message }]);
  let loaded: { services?: unknown; performEffect?: unknown };
  try {
    loaded = (await import(url)) as typeof loaded;
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ? 'no such module' : '';
    throw problem(
      `cannot load ${url}: ${reason || (cause as Error).message}; give the path of a module exporting ` +
        `\`services\` (${field === 'services' ? 'relative to the configuration file' : 'relative to the working directory'}), ` +
        'e.g. ./examples/counter-service.ts',
    );
  }
  const { services, performEffect } = loaded;
  if (!Array.isArray(services) || services.length === 0) {
    throw problem(
      `${url} exports no services: add \`export const services = [defineService({ ... })]\` (from actors/actor-runtime/service.ts)`,
    );
  }
  const names = new Set<string>();
  services.forEach((service, i) => {
    if (!isHostedService(service)) {
      throw problem(`${url}: services[${i}] is not a service; build each one with defineService({ ... })`);
    }
    if (names.has(service.name)) {
      throw problem(`${url}: two services are named '${service.name}'; give each service its own name`);
    }
    names.add(service.name);
  });
  if (performEffect !== undefined && typeof performEffect !== 'function') {
    throw problem(`${url}: performEffect must be a function (intent, { effectId, address }) => result`);
  }
  return { url, services, performEffect: performEffect as PerformEffect | undefined };
};
