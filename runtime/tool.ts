// `npx chorus tool DIR COMMAND`: the cluster tool, after Aeron's ClusterTool. DIR is a member's directory;
// the tool talks to the running member through its admin socket (runtime/admin.ts).

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { adminRequest, adminSocketPath } from './admin.ts';
import type { MemberConfig } from './config.ts';
import { TOOL_COMMANDS, toolCommandList } from './tool-commands.ts';
import type { AdminCommand } from './wire/admin-frames.ts';

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

/** A command the tool does not have (a usage error: the CLI exits 2), with the list of those it has. */
export class UnknownToolCommandError extends Error {
  override readonly name = 'UnknownToolCommandError';
}

/**
 * A directory without a member's admin socket that holds members' directories (a cluster's base
 * directory, or its data directory): say which to name instead.
 */
const clusterDirHint = (dir: string): string | null => {
  if (existsSync(adminSocketPath(dir))) return null;
  for (const base of [dir, join(dir, 'data')]) {
    let members: string[];
    try {
      members = readdirSync(base).filter((name) => /^member-\d+$/.test(name));
    } catch {
      continue;
    }
    if (members.length > 0) {
      return `${dir} holds a cluster's members, not one member: name a member's directory, e.g. ${join(base, members.sort()[0])}`;
    }
  }
  return null;
};

/** Run a tool command; returns the exit code. */
export const runTool = async (
  dir: string,
  command: string,
  options: { to?: number; json?: boolean },
): Promise<number> => {
  if (!(command in TOOL_COMMANDS)) {
    throw new UnknownToolCommandError(
      `unknown tool command "${command}"; the commands:\n${toolCommandList()}`,
    );
  }
  const hint = clusterDirHint(dir);
  if (hint !== null) throw new Error(hint);
  const print = (text: string) => process.stdout.write(`${text}\n`);
  switch (command) {
    case 'describe':
      print(JSON.stringify(await adminRequest(dir, { command: 'status' }), null, 2));
      return 0;
    case 'is-leader': {
      const status = (await adminRequest(dir, { command: 'status' })) as Described;
      const leads = status.role === 'LEADER';
      const { memberId, role, term, leaderId } = status;
      print(
        options.json
          ? JSON.stringify({ memberId, leader: leads, role, term, leaderId })
          : leads
            ? `member ${memberId} is the leader (term ${term})`
            : `member ${memberId} is not the leader (${role}; leader: ${leaderId ?? 'unknown'})`,
      );
      return leads ? 0 : 1;
    }
    case 'list-members': {
      const s = (await adminRequest(dir, { command: 'status' })) as Described;
      if (options.json) {
        const members = s.members.map((m) => ({
          id: m.id,
          client: `${m.host}:${m.clientPort}`,
          peer: `${m.host}:${m.peerPort}`,
          leader: m.id === s.leaderId,
          self: m.id === s.memberId,
          connected: m.id !== s.memberId && s.connectedPeers.includes(m.id),
        }));
        const { memberId, role, electionState, moduleState, term, leaderId, commitIndex, appliedIndex } = s;
        print(
          JSON.stringify({
            memberId,
            role,
            electionState,
            moduleState,
            term,
            leaderId,
            commitIndex,
            appliedIndex,
            members,
          }),
        );
        return 0;
      }
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
      const result = (await adminRequest(dir, { command: command as AdminCommand }, 10_000)) as {
        snapshotIndex?: number;
        taken?: boolean;
        reason?: string;
        moduleState?: string;
      };
      print(options.json ? JSON.stringify(result) : describeAction(dir, command, result));
      return 0;
    }
  }
};

/** One line for a person on what snapshot, suspend or resume did. */
const describeAction = (
  dir: string,
  command: string,
  result: { snapshotIndex?: number; taken?: boolean; reason?: string; moduleState?: string },
): string => {
  if (command === 'snapshot') {
    return result.taken
      ? `snapshot taken at index ${result.snapshotIndex} (${dir})`
      : `no snapshot taken: ${result.reason}; the last is at index ${result.snapshotIndex}`;
  }
  return command === 'suspend'
    ? `suspended (module ${result.moduleState}): client input is answered BUSY until \`npx chorus tool ${dir} resume\``
    : `resumed (module ${result.moduleState}): taking client input`;
};
