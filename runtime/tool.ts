// `npx chorus tool DIR COMMAND`: the cluster tool, after Aeron's ClusterTool. DIR is a member's directory;
// the tool talks to the running member through its admin socket (runtime/admin.ts).

import { adminRequest } from './admin.ts';
import type { MemberConfig } from './config.ts';
import type { AdminCommand } from './wire/admin-frames.ts';

export const TOOL_COMMANDS: Record<string, string> = {
  'list-members': 'the members this member knows, which leads, and which are connected',
  'is-leader': 'exit 0 if this member is the leader, 1 if not',
  describe: 'everything the member reports: role, election state, term, log, snapshots, sessions (JSON)',
  snapshot: 'take a snapshot now (leader or follower: each member snapshots itself)',
  suspend: 'stop taking client input (leader); resume lets it in again',
  resume: 'take client input again after suspend',
  'transfer-leadership': 'hand leadership to an up-to-date follower (--to N to choose)',
};

interface Described {
  memberId: number;
  role: string;
  electionState: string;
  moduleState: string;
  term: number;
  leaderId: number | null;
  commitIndex: number;
  appliedIndex: number;
  connectedPeers: number[];
  members: MemberConfig[];
}

/** Run a tool command; returns the exit code. */
export const runTool = async (
  dir: string,
  command: string,
  options: { to?: number; json?: boolean },
): Promise<number> => {
  if (!(command in TOOL_COMMANDS)) {
    throw new Error(`unknown tool command "${command}"; commands: ${Object.keys(TOOL_COMMANDS).join(', ')}`);
  }
  const print = (text: string) => process.stdout.write(`${text}\n`);
  switch (command) {
    case 'describe':
      print(JSON.stringify(await adminRequest(dir, { command: 'status' }), null, 2));
      return 0;
    case 'is-leader': {
      const status = (await adminRequest(dir, { command: 'status' })) as Described;
      const leads = status.role === 'LEADER';
      print(
        leads
          ? `member ${status.memberId} is the leader (term ${status.term})`
          : `member ${status.memberId} is not the leader (${status.role}; leader: ${status.leaderId ?? 'unknown'})`,
      );
      return leads ? 0 : 1;
    }
    case 'list-members': {
      const s = (await adminRequest(dir, { command: 'status' })) as Described;
      print(
        `member ${s.memberId}: ${s.role}, ${s.electionState}, module ${s.moduleState}, term ${s.term}, commit ${s.commitIndex}, applied ${s.appliedIndex}`,
      );
      print('id  client                 peer                   seen from here');
      for (const m of s.members) {
        const notes = [
          m.id === s.leaderId ? 'leader' : null,
          m.id === s.memberId
            ? 'this member'
            : s.connectedPeers.includes(m.id)
              ? 'connected'
              : 'not connected',
        ].filter(Boolean);
        print(
          `${String(m.id).padEnd(4)}${`${m.host}:${m.clientPort}`.padEnd(23)}${`${m.host}:${m.peerPort}`.padEnd(23)}${notes.join(', ')}`,
        );
      }
      return 0;
    }
    case 'transfer-leadership': {
      const moved = (await adminRequest(dir, { command: 'transfer-leadership', to: options.to }, 10_000)) as {
        from: number;
        to: number;
        leaderId: number;
        term: number;
      };
      print(
        options.json
          ? JSON.stringify(moved)
          : `member ${moved.leaderId} leads (term ${moved.term}), taken over from member ${moved.from}` +
              (moved.leaderId === moved.to ? '' : ` (member ${moved.to} was asked)`),
      );
      return 0;
    }
    default: {
      const result = await adminRequest(dir, { command: command as AdminCommand, to: options.to }, 10_000);
      print(JSON.stringify(result));
      return 0;
    }
  }
};
