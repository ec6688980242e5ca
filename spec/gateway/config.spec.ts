// A gateway's configuration file (gateway/config.ts): the example checks; every problem is named by its
// field, the timing rules between fields included.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  DEFAULT_CLOSE_ON_DISCONNECT_MS,
  GatewayConfigError,
  loadGatewayConfig,
  resolveGatewayConfig,
} from '../../gateway/config.ts';
import { MIN_CLOSE_ON_DISCONNECT_MS } from '../../runtime/client/client-options.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/gateway.json', import.meta.url));
const base = { name: 'g1', capacity: 10, endpoints: ['127.0.0.1:9010'] };

const problems = (input: unknown): string => {
  try {
    resolveGatewayConfig(input);
  } catch (error) {
    expect(error).to.be.instanceOf(GatewayConfigError);
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('gateway configuration', () => {
  it('examples/gateway.json checks; the lease and sync interval default from the session timeout', () => {
    const config = loadGatewayConfig(EXAMPLE);
    expect(config.name).to.equal('gw-eu-1');
    expect(config.leaseMs).to.equal(config.sessionTimeoutMs * 0.8);
    expect(config.syncIntervalMs).to.be.below(config.leaseMs);
    // Close on disconnect is on by default; the gateway then drops its connections the moment its cluster
    // connection is lost. null turns it off: a lost cluster connection alone then drops nothing.
    expect(config.closeOnDisconnectMs).to.equal(DEFAULT_CLOSE_ON_DISCONNECT_MS);
    expect(config.dropOnDisconnect).to.equal(true);
    const off = resolveGatewayConfig({
      ...JSON.parse(readFileSync(EXAMPLE, 'utf8')),
      closeOnDisconnectMs: null,
    });
    expect(off.closeOnDisconnectMs).to.equal(undefined);
    expect(off.dropOnDisconnect).to.equal(false);
  });

  it('names every problem with its field, the rules between fields included', () => {
    const message = problems({ ...base, capacity: 0, endpoints: ['nohost'], capacty: 5 });
    expect(message)
      .to.match(/capacity:/)
      .and.match(/endpoints\.0: must be host:port/)
      .and.match(/capacty/);
    expect(problems({ ...base, sessionTimeoutMs: 2000, leaseMs: 2000 })).to.match(
      /leaseMs \(2000\) must be below sessionTimeoutMs \(2000\)/,
    );
    expect(problems({ ...base, leaseMs: 1000, syncIntervalMs: 1000 })).to.match(
      /syncIntervalMs \(1000\) must be below leaseMs/,
    );
    expect(problems({ ...base, sessionTimeoutMs: 2000, closeOnDisconnectMs: 2000 })).to.match(
      /closeOnDisconnectMs \(2000\) must be below sessionTimeoutMs \(2000\)/,
    );
    expect(problems({ ...base, closeOnDisconnectMs: MIN_CLOSE_ON_DISCONNECT_MS - 1 })).to.match(
      /closeOnDisconnectMs: Too small/,
    );
    expect(problems({ ...base, credentials: 'x', credentialsFile: 'y' })).to.match(
      /credentialsFile: give credentials or/,
    );
  });

  it('reads credentialsFile relative to the configuration file, and says when it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-gateway-config-'));
    writeFileSync(join(dir, 'token'), 'sekrit\n');
    writeFileSync(
      join(dir, 'gateway.yaml'),
      'name: g1\ncapacity: 3\nendpoints: ["127.0.0.1:9010"]\ncredentialsFile: token\n',
    );
    expect(loadGatewayConfig(join(dir, 'gateway.yaml')).credentials).to.equal('sekrit');
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ ...base, credentialsFile: 'missing' }));
    expect(() => loadGatewayConfig(join(dir, 'other.json'))).to.throw(
      /credentialsFile: cannot read .*missing/,
    );
  });
});
