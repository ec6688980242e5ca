// `chorus inspect`'s arguments: the members' admin URLs from --cluster or from a configuration's
// adminHttpPort, and the refusals that name what to give instead.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { validateClusterConfig } from '../../../runtime/config.ts';
import { inspectCommand } from '../../../runtime/inspector/inspect-command.ts';
import { endpointsOf, parseEndpoints } from '../../../runtime/inspector/server.ts';

/** What a promise was rejected with (a failed expectation if it resolved). */
const rejection = async (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => expect.fail('expected a refusal'),
    (error: Error) => error.message,
  );

describe('chorus inspect: which members, from --cluster or --config', () => {
  it('--cluster takes admin URLs in member order, or ID=URL, with or without http://', () => {
    expect(parseEndpoints('http://127.0.0.1:9001, 127.0.0.1:9002')).to.deep.equal([
      { id: 0, url: 'http://127.0.0.1:9001' },
      { id: 1, url: 'http://127.0.0.1:9002' },
    ]);
    expect(parseEndpoints('2=http://h:1,0=http://[::1]:2/')).to.deep.equal([
      { id: 2, url: 'http://h:1' },
      { id: 0, url: 'http://[::1]:2' },
    ]);
    expect(() => parseEndpoints('ftp://h:1')).to.throw(/must be an http:\/\/ admin URL/);
    expect(() => parseEndpoints('http://[')).to.throw(/is not an admin URL/);
  });

  it('--config takes the members with an adminHttpPort, reached at the bound address (or the member’s host on a wildcard)', () => {
    const members = [
      { id: 0, host: '10.0.0.5', clientPort: 1001, peerPort: 1002, adminHttpPort: 1003 },
      { id: 1, host: '10.0.0.6', clientPort: 1001, peerPort: 1002 },
    ];
    expect(
      endpointsOf(validateClusterConfig({ members, peerAuthentication: { secrets: ['s'.repeat(32)] } })),
    ).to.deep.equal([{ id: 0, url: 'http://127.0.0.1:1003' }]);
    const wildcard = validateClusterConfig({
      members,
      peerAuthentication: { secrets: ['s'.repeat(32)] },
      adminHttp: { host: '0.0.0.0', token: 't'.repeat(16) },
    });
    expect(endpointsOf(wildcard)).to.deep.equal([{ id: 0, url: 'http://10.0.0.5:1003' }]);
  });

  it('refuses neither or both flags, and a configuration without admin ports, saying what to give', async () => {
    expect(await rejection(inspectCommand({}))).to.match(/either --cluster .* or --config/);
    expect(await rejection(inspectCommand({ cluster: 'http://h:1', config: 'x.json' }))).to.match(
      /either --cluster/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'chorus-inspect-'));
    try {
      const file = join(dir, 'cluster.json');
      writeFileSync(
        file,
        JSON.stringify({ members: [{ id: 0, host: '127.0.0.1', clientPort: 1001, peerPort: 1002 }] }),
      );
      expect(await rejection(inspectCommand({ config: file }))).to.match(/no member has an adminHttpPort/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
