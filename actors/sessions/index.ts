// Client sessions on a cluster member: the session manager, its authenticators and the payloads of
// the session log entries. See session-manager.ts for the inputs and effects.

export * from './authenticators.ts';
export * from './payloads.ts';
export * from './requests.ts';
export * from './session-manager.ts';
