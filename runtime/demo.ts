// `npm start`: a local 3-member cluster, concurrent clients writing to the KV service, the leader killed
// with SIGKILL partway through, the election as it happens, and at the end a check that every
// acknowledged write is present exactly once. Cleans up after itself; exits 0 only if the check holds.
//
// Each client appends to its own key with compare-and-set: the value is the list of the client's writes
// (`1,2,3,...`), and write n is cas(expected = "1,...,n-1", value = "1,...,n"). So the final value shows
// every write that was applied, in order; a write applied twice or lost would show as a gap or repeat.

import { performance } from 'node:perf_hooks';
import { unpack } from 'msgpackr';
import { encodeKvCommand, type KvResult } from '../actors/services/kv.ts';
import { ChorusClient } from './client/client.ts';
import { endpointsOf, InspectorServer } from './inspector/server.ts';
import { formatRecord, LocalCluster } from './local-cluster.ts';

const CLIENTS = 8;
const BEFORE_KILL_MS = 2500;
const AFTER_KILL_MS = 3500;

const say = (text: string) => process.stdout.write(`${text}\n`);
const since = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s`;

export const runDemo = async (): Promise<number> => {
  const t0 = performance.now();
  say('Chorus demo: a 3-member cluster on this machine, 8 clients, and the leader killed mid-flow.\n');
  const cluster = await LocalCluster.start({
    members: 3,
    onRecord: (id, record) => {
      const msg = String(record.msg ?? '');
      if (
        msg.startsWith('ROLE_CHANGE') ||
        (msg.startsWith('ELECTION_STATE_CHANGE: ') &&
          /-> (CANVASS|NOMINATE|CANDIDATE_BALLOT|LEADER_READY|FOLLOWER_READY)$/.test(msg))
      ) {
        say(`${since(t0)}  ${formatRecord(id, record)}`);
      }
    },
  });
  let exitCode = 1;
  const clients: ChorusClient[] = [];
  const inspector = await InspectorServer.start({ members: endpointsOf(cluster.config) });
  say(`${since(t0)}  inspector: ${inspector.url} (open it to watch the elections and the log live)\n`);
  try {
    const firstLeader = await cluster.waitForLeader(20_000);
    say(
      `${since(t0)}  member ${firstLeader} leads; clients connect to any member and are redirected to it\n`,
    );
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(
        await ChorusClient.connect({ endpoints: cluster.endpoints(), seed: i + 1, commandTimeoutMs: 15_000 }),
      );
    }
    const acknowledged: number[][] = clients.map(() => []);
    let stop = false;
    let lastAckAt = performance.now();
    let longestGapMs = 0;
    const writers = clients.map(async (client, i) => {
      const key = `client-${i}`;
      let value: string | null = null;
      for (let n = 1; !stop; n++) {
        const next: string = value === null ? `${n}` : `${value},${n}`;
        const reply = unpack(
          await client.send(encodeKvCommand({ op: 'cas', key, expected: value, value: next })),
        ) as KvResult;
        if (!('ok' in reply) || !reply.ok)
          throw new Error(`${key}: write ${n} was refused: the value is not what this client last wrote`);
        acknowledged[i].push(n);
        value = next;
        const now = performance.now();
        longestGapMs = Math.max(longestGapMs, now - lastAckAt);
        lastAckAt = now;
      }
    });
    const progress = setInterval(() => {
      const total = acknowledged.reduce((sum, list) => sum + list.length, 0);
      say(`${since(t0)}  ${total} writes acknowledged`);
    }, 1000);

    await new Promise((resolve) => setTimeout(resolve, BEFORE_KILL_MS));
    const victim = cluster.leader() ?? firstLeader;
    say(`\n${since(t0)}  killing the leader, member ${victim}, with SIGKILL\n`);
    const killedAt = performance.now();
    const ackedBeforeKill = acknowledged.reduce((sum, list) => sum + list.length, 0);
    await cluster.kill(victim);
    const newLeader = await cluster.waitForLeader(20_000);
    say(
      `${since(t0)}  member ${newLeader} leads after ${Math.round(performance.now() - killedAt)} ms; clients find it by themselves\n`,
    );
    await new Promise((resolve) => setTimeout(resolve, AFTER_KILL_MS));
    stop = true;
    await Promise.all(writers);
    clearInterval(progress);
    const total = acknowledged.reduce((sum, list) => sum + list.length, 0);
    say(
      `\n${since(t0)}  ${total} writes acknowledged (${total - ackedBeforeKill} after the kill); longest wait for an acknowledgement ${Math.round(longestGapMs)} ms`,
    );

    // The proof: read every key back through the log and compare with what was acknowledged.
    say(`${since(t0)}  reading every key back through the log...`);
    let problems = 0;
    for (let i = 0; i < CLIENTS; i++) {
      const reply = unpack(await clients[i].send(encodeKvCommand({ op: 'get', key: `client-${i}` }))) as {
        value: string | null;
      };
      const applied = reply.value === null ? [] : reply.value.split(',').map(Number);
      const expected = acknowledged[i];
      const same = applied.length === expected.length && applied.every((n, k) => n === expected[k]);
      if (!same) {
        problems++;
        say(
          `  client-${i}: acknowledged ${expected.length} writes but the cluster holds ${applied.length}: MISMATCH`,
        );
      }
    }
    if (problems === 0) {
      say(
        `${since(t0)}  every one of the ${total} acknowledged writes is present exactly once, in order, across the failover.`,
      );
      exitCode = 0;
    } else {
      say(`${since(t0)}  ${problems} key(s) do not match what was acknowledged.`);
    }
  } catch (error) {
    say(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await inspector.close();
    await cluster.close();
    say(`${since(t0)}  cluster stopped and its files removed.`);
  }
  say(
    '\nNext: `npx chorus --help`, `npx chorus cluster up`, `npx chorus sim --seeds 100`, and docs/architecture.md.',
  );
  return exitCode;
};
