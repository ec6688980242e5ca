import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  type ClusterConfigInput,
  ConfigError,
  clusterConfigJsonSchema,
  formatMembersString,
  loadClusterConfig,
  MAX_APPEND_BATCH_BYTES,
  maxEntryPayloadBytes,
  maxPeerFrameBytes,
  memberById,
  parseMembersString,
  peerSecrets,
  validateClusterConfig,
} from '../../runtime/config.ts';
import { ClientKind, maxCommandBytes } from '../../runtime/wire/client-frames.ts';
import { encodeFrame } from '../../runtime/wire/frame-codec.ts';
import { PeerKind, toWire } from '../../runtime/wire/peer-frames.ts';
import { TEST_SECRET } from '../security/peers.ts';

const members = [
  { id: 0, host: '127.0.0.1', clientPort: 9000, peerPort: 9100 },
  { id: 1, host: '127.0.0.1', clientPort: 9001, peerPort: 9101 },
  { id: 2, host: '127.0.0.1', clientPort: 9002, peerPort: 9102 },
];

/** Validate and return the problems (field + message), failing the test if it was accepted. */
const problemsOf = (input: unknown) => {
  try {
    validateClusterConfig(input);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
};

const expectRefused = (input: unknown, field: string, mentions: RegExp) => {
  const problems = problemsOf(input);
  const problem = problems.find((p) => p.field === field);
  expect(problem, `a problem naming ${field}, got ${JSON.stringify(problems)}`).to.not.equal(undefined);
  expect(problem!.message).to.match(mentions);
};

const base = (overrides: Partial<ClusterConfigInput> = {}): ClusterConfigInput => ({
  members,
  peerAuthentication: { secrets: [TEST_SECRET] },
  ...overrides,
});

/** A directory holding a peer secret file with `mode`, and a configuration file naming it relatively. */
const secretFileSetup = (mode: number, secret = TEST_SECRET) => {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-config-'));
  const secretFile = join(dir, 'peer-secret');
  writeFileSync(secretFile, `${secret}\n`);
  chmodSync(secretFile, mode);
  const file = join(dir, 'cluster.json');
  writeFileSync(file, JSON.stringify({ members, peerAuthentication: { secretFile: './peer-secret' } }));
  return { dir, file, secretFile };
};

describe('cluster configuration (O1)', () => {
  it('accepts a minimal configuration and fills defaults for fast LAN failover', () => {
    const config = validateClusterConfig(base());
    expect(config.members).to.have.length(3);
    // About a second from leader loss to a new leader.
    expect(config.leaderHeartbeatTimeoutMs + config.electionTimeoutMs).to.be.at.most(1000);
    expect(config.leaderHeartbeatIntervalMs * 3).to.be.at.most(config.leaderHeartbeatTimeoutMs);
    expect(config.workerShards).to.be.at.least(1);
    expect(config.snapshot.keep).to.be.at.least(1);
  });

  it('O1: refuses duplicate member ids, naming the second member', () => {
    expectRefused(
      base({ members: [members[0], { ...members[1], id: 0 }, members[2]] }),
      'members[1].id',
      /already used by members\[0\]/,
    );
  });

  it('O1: refuses member ids with gaps, saying which ids are expected', () => {
    expectRefused(base({ members: [members[0], { ...members[1], id: 5 }, members[2]] }), 'members', /0\.\.2/);
  });

  it('O1: refuses two listeners on the same host and port, naming the clashing field', () => {
    expectRefused(
      base({ members: [members[0], { ...members[1], peerPort: 9000 }, members[2]] }),
      'members[1].peerPort',
      /already taken by members\[0\]\.clientPort/,
    );
  });

  it('O1: treats localhost and 127.0.0.1 as the same host when checking ports', () => {
    expectRefused(
      base({ members: [members[0], { ...members[1], host: 'localhost', clientPort: 9100 }, members[2]] }),
      'members[1].clientPort',
      /9100/,
    );
  });

  it('O1: refuses a member whose client and peer port are the same', () => {
    expectRefused(
      base({ members: [{ ...members[0], peerPort: 9000 }, members[1], members[2]] }),
      'members[0].peerPort',
      /already taken by members\[0\]\.clientPort/,
    );
  });

  it('O1: allows the same port on different hosts', () => {
    const spread = members.map((m, i) => ({
      ...m,
      host: `10.0.0.${i + 1}`,
      clientPort: 9000,
      peerPort: 9100,
    }));
    expect(validateClusterConfig(base({ members: spread })).members).to.have.length(3);
  });

  it('O1: refuses a heartbeat interval that is not well under the heartbeat timeout', () => {
    expectRefused(
      base({ leaderHeartbeatIntervalMs: 300, leaderHeartbeatTimeoutMs: 500 }),
      'leaderHeartbeatIntervalMs',
      /at most a third of the timeout/,
    );
  });

  it('O1: refuses an election status interval too long for the election timeout', () => {
    expectRefused(
      base({ electionStatusIntervalMs: 300, electionTimeoutMs: 400 }),
      'electionStatusIntervalMs',
      /at most half of electionTimeoutMs/,
    );
  });

  it('O1: refuses an election timeout not longer than the heartbeat interval', () => {
    expectRefused(
      base({ electionTimeoutMs: 40, electionStatusIntervalMs: 10, leaderHeartbeatIntervalMs: 50 }),
      'electionTimeoutMs',
      /longer than leaderHeartbeatIntervalMs/,
    );
  });

  it('O1: refuses a start-up canvass timeout shorter than the election timeout', () => {
    expectRefused(
      base({ startupCanvassTimeoutMs: 100 }),
      'startupCanvassTimeoutMs',
      /at least electionTimeoutMs/,
    );
  });

  it('O1: refuses a session timeout that an ordinary failover would exceed', () => {
    expectRefused(base({ sessionTimeoutMs: 1000 }), 'sessionTimeoutMs', /twice a failover/);
  });

  it('O1: refuses ports out of range, naming the member field', () => {
    expectRefused(
      base({ members: [{ ...members[0], clientPort: 70000 }, members[1], members[2]] }),
      'members[0].clientPort',
      /1\.\.65535/,
    );
  });

  it('O1: refuses a missing field, saying it is missing', () => {
    const { peerPort: _, ...noPeer } = members[0];
    expectRefused(
      base({ members: [noPeer as never, members[1], members[2]] }),
      'members[0].peerPort',
      /missing/,
    );
  });

  it('O1: refuses unknown fields, naming them so a typo is found', () => {
    expectRefused({ ...base(), electionTimeotMs: 300 }, '(root)', /"electionTimeotMs".*check the spelling/);
  });

  it('O1: refuses zero or fractional timeouts', () => {
    expectRefused(base({ sessionTimeoutMs: 0 }), 'sessionTimeoutMs', /above 0/);
    expectRefused(base({ electionTimeoutMs: 1.5 }), 'electionTimeoutMs', /whole number/);
  });

  it('O1: refuses an empty member list and a worker shard count out of range', () => {
    expectRefused(base({ members: [] }), 'members', /at least one member/);
    expectRefused(base({ workerShards: 0 }), 'workerShards', /at least 1/);
  });

  it('O1: refuses a snapshot policy keeping no snapshots', () => {
    expectRefused(base({ snapshot: { keep: 0 } }), 'snapshot.keep', /at least 1/);
  });

  it('O1: reports every problem at once, not just the first', () => {
    const problems = problemsOf(base({ leaderHeartbeatIntervalMs: 400, startupCanvassTimeoutMs: 10 }));
    expect(problems.map((p) => p.field)).to.include.members([
      'leaderHeartbeatIntervalMs',
      'startupCanvassTimeoutMs',
    ]);
  });

  it('O1: refuses a shared token too short to be a secret, naming the field', () => {
    expectRefused(
      base({ authentication: { kind: 'shared-token', token: 'short' } }),
      'authentication.token',
      /at least 16 characters/,
    );
  });

  it('O1: refuses an unknown authenticator kind', () => {
    const problems = problemsOf(base({ authentication: { kind: 'ldap' } as never }));
    expect(problems.map((p) => p.field)).to.include('authentication.kind');
  });

  it('accepts the built-in authenticators and defaults to allow-all', () => {
    expect(validateClusterConfig(base()).authentication).to.deep.equal({ kind: 'allow-all' });
    const config = validateClusterConfig(
      base({ authentication: { kind: 'challenge-response', secrets: { alice: 'a-secret-of-16-chars' } } }),
    );
    expect(config.authentication.kind).to.equal('challenge-response');
  });

  it('parses and formats the compact members string operators know from Aeron', () => {
    const text = '0,127.0.0.1:9000:9100|1,127.0.0.1:9001:9101|2,[::1]:9002:9102';
    const parsed = parseMembersString(text);
    expect(parsed[2]).to.deep.equal({ id: 2, host: '::1', clientPort: 9002, peerPort: 9102 });
    expect(formatMembersString(parsed)).to.equal(text);
  });

  it('O1: refuses a malformed members string, naming the entry and showing the form', () => {
    expect(() => parseMembersString('0,127.0.0.1:9000:9100|1,127.0.0.1:9001')).to.throw(
      ConfigError,
      /members\[1\].*id,host:clientPort:peerPort/,
    );
  });

  it('resolves every path in a file relative to that file: the data directory (and its default), the services module', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-config-'));
    const file = join(dir, 'cluster.json');
    const base = { members: formatMembersString(members), peerAuthentication: { secrets: [TEST_SECRET] } };
    writeFileSync(file, JSON.stringify({ ...base, dir: './state', services: './svc.ts' }));
    const config = loadClusterConfig(file);
    expect(config.dir).to.equal(join(dir, 'state'));
    expect(config.services).to.equal(join(dir, 'svc.ts'));
    writeFileSync(file, JSON.stringify(base));
    expect(loadClusterConfig(file).dir).to.equal(join(dir, 'data'));
    writeFileSync(file, JSON.stringify({ ...base, dir: '/var/lib/chorus' }));
    expect(loadClusterConfig(file).dir).to.equal('/var/lib/chorus');
  });

  it('O1: reports every problem at once, each with its file and field: a malformed members string hides nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-config-'));
    const file = join(dir, 'cluster.json');
    writeFileSync(
      file,
      JSON.stringify({
        members: '0,127.0.0.1:9000:9100|1,127.0.0.1',
        electionTimeoutMs: 'fast',
        leaderHeartbeatIntervalMs: 500,
        leaderHeartbeatTimeoutMs: 1000,
        colour: 'blue',
        peerAuthentication: { secrets: [TEST_SECRET] },
      }),
    );
    let error: ConfigError | null = null;
    try {
      loadClusterConfig(file);
    } catch (caught) {
      error = caught as ConfigError;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect(error?.source).to.equal(file);
    expect(error?.message.startsWith(`${file}: invalid cluster configuration:`)).to.equal(true);
    const fields = error?.problems.map((p) => p.field);
    // Each field's own problem, and the rule between two fields that parsed; none that reads the bad
    // electionTimeoutMs (its default would have been compared instead of what the file says).
    expect(fields).to.have.members([
      'members[1]',
      'electionTimeoutMs',
      '(root)',
      'leaderHeartbeatIntervalMs',
    ]);
    // The same for an object: cross-field rules run beside a field that does not parse.
    const inCode = () =>
      validateClusterConfig({
        members,
        electionTimeoutMs: -1,
        leaderHeartbeatIntervalMs: 500,
        leaderHeartbeatTimeoutMs: 1000,
      });
    expect(inCode).to.throw(
      ConfigError,
      /electionTimeoutMs:.*\n.*leaderHeartbeatIntervalMs: 500 ms is not well under/s,
    );
  });

  it('loads a JSON file whose members are a compact string', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-config-'));
    const file = join(dir, 'cluster.json');
    writeFileSync(
      file,
      JSON.stringify({
        members: formatMembersString(members),
        electionTimeoutMs: 300,
        peerAuthentication: { secrets: [TEST_SECRET] },
      }),
    );
    const config = loadClusterConfig(file);
    expect(config.members).to.deep.equal(members);
    expect(config.electionTimeoutMs).to.equal(300);
    expect(memberById(config, 2).peerPort).to.equal(9102);
    expect(() => memberById(config, 7)).to.throw(ConfigError, /no member 7.*0, 1, 2/);
  });

  it('O1: names the file for unreadable or malformed JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-config-'));
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "members": ');
    expect(() => loadClusterConfig(file)).to.throw(ConfigError, /broken\.json.*not valid JSON/s);
    expect(() => loadClusterConfig(join(dir, 'absent.json'))).to.throw(ConfigError, /no such file/);
  });

  it('publishes a JSON Schema for editors that describes every field', () => {
    const schema = clusterConfigJsonSchema() as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).to.include.members([
      'members',
      'electionTimeoutMs',
      'snapshot',
      'workerShards',
    ]);
  });

  it('O1: refuses a cluster of several members without a peer secret, saying how to make one', () => {
    const { peerAuthentication: _, ...noSecret } = base();
    expectRefused(noSecret, 'peerAuthentication', /is missing.*secretFile.*0600.*cluster up/);
    // One member has no peers to authenticate.
    expect(validateClusterConfig({ members: [members[0]] }).peerAuthentication).to.equal(undefined);
    expectRefused(
      base({ peerAuthentication: { secrets: ['short'] } }),
      'peerAuthentication.secrets[0]',
      /32 characters/,
    );
  });

  it('reads the peer secret file relative to the configuration file; first secret signs, any verifies', () => {
    const { file, secretFile } = secretFileSetup(0o600);
    writeFileSync(secretFile, `${TEST_SECRET}-new\n\n${TEST_SECRET}\n`);
    const config = loadClusterConfig(file);
    expect(config.peerAuthentication).to.deep.equal({ secretFile });
    expect(peerSecrets(config).map((b) => b.toString())).to.deep.equal([`${TEST_SECRET}-new`, TEST_SECRET]);
  });

  it('O1: refuses a peer secret file other users can read, or that is missing or too short, naming the field', () => {
    const readable = secretFileSetup(0o644);
    expect(() => loadClusterConfig(readable.file)).to.throw(
      ConfigError,
      /peerAuthentication\.secretFile: .*readable by other users \(mode 0644\): `chmod 600/,
    );
    const short = secretFileSetup(0o600, 'too-short');
    expect(() => loadClusterConfig(short.file)).to.throw(
      ConfigError,
      /peerAuthentication\.secretFile: line 1 .*32/,
    );
    const missing = secretFileSetup(0o600);
    writeFileSync(missing.file, JSON.stringify({ members, peerAuthentication: { secretFile: './absent' } }));
    expect(() => loadClusterConfig(missing.file)).to.throw(
      ConfigError,
      /peerAuthentication\.secretFile: .*does not exist.*openssl rand/,
    );
  });

  it('O1: names every port limit as a setting with a default, and refuses nonsense values', () => {
    const { limits } = validateClusterConfig(base());
    expect(limits).to.deep.equal({
      handshakeTimeoutMs: 5_000,
      idleTimeoutMs: 30_000,
      maxConnectionsPerAddress: 256,
      maxPendingPeerConnections: 64,
      maxAdminConnections: 4,
    });
    expectRefused(base({ limits: { handshakeTimeoutMs: 0 } }), 'limits.handshakeTimeoutMs', /above 0/);
    expectRefused(base({ limits: { maxAdminConnections: 0 } }), 'limits.maxAdminConnections', /at least 1/);
  });

  it('any command that fits in a client frame replicates in one peer frame; the client edge limit (maxCommandBytes) fits in a client frame', () => {
    const big = 2 ** 48;
    const request = (body: Uint8Array) =>
      encodeFrame(ClientKind.CLIENT_REQUEST, {
        type: 'SESSION_MESSAGE',
        sessionId: big,
        correlationId: big,
        lowestAwaited: big,
        body,
      });
    for (const maxFrameBytes of [1024 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024]) {
      const config = { maxFrameBytes };
      expect(request(new Uint8Array(maxCommandBytes(config))).length).to.be.at.most(maxFrameBytes);
      // The largest body any client frame can carry, whatever the client edge then decides.
      const probe = 1024 * 1024;
      const largest = maxFrameBytes - (request(new Uint8Array(probe)).length - probe);
      expect(request(new Uint8Array(largest)).length).to.equal(maxFrameBytes);
      // Its entry (body + the 24-byte session message header) in an APPEND with every field at its widest.
      const entry = {
        index: big,
        term: big,
        timestamp: big,
        kind: 3 as const,
        payload: new Uint8Array(largest + 24),
      };
      const append = {
        type: 'APPEND',
        term: big,
        prevIndex: big - 1,
        prevTerm: big,
        entries: [entry],
        commitIndex: big,
        leaderLastIndex: big,
      };
      expect(encodeFrame(PeerKind.CONSENSUS, toWire(append)).length).to.be.at.most(maxPeerFrameBytes(config));
      expect(largest + 24).to.be.at.most(maxEntryPayloadBytes(config));
      // A full batch of small entries fits too (each entry's fields cost ~40 bytes; the batch bound counts 32).
      const small = Array.from({ length: MAX_APPEND_BATCH_BYTES / 32 }, (_, i) => ({
        ...entry,
        index: i,
        payload: new Uint8Array(0),
      }));
      expect(encodeFrame(PeerKind.CONSENSUS, toWire({ ...append, entries: small })).length).to.be.at.most(
        maxPeerFrameBytes(config),
      );
    }
  });
});
