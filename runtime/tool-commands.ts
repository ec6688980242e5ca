// The cluster tool's commands and what each does: read by `chorus tool --help` without loading the tool
// (runtime/tool.ts), and by the tool to refuse a command it does not have.

export const TOOL_COMMANDS: Record<string, string> = {
  'list-members': 'the members this member knows, which leads, and which are connected',
  'is-leader': 'exit 0 if this member is the leader, 1 if not',
  describe:
    'everything the member reports: role, election state, term, log, snapshots, sessions (always JSON)',
  snapshot: 'take a snapshot now (leader or follower: each member snapshots itself)',
  suspend: 'stop taking client input (leader); resume lets it in again',
  resume: 'take client input again after suspend',
  'transfer-leadership': 'hand leadership to an up-to-date follower (--to N to choose)',
};

/** The tool's commands, one line each (for `chorus tool --help` and an unknown command). */
export const toolCommandList = (): string =>
  Object.entries(TOOL_COMMANDS)
    .map(([name, what]) => `  ${name.padEnd(21)}${what}`)
    .join('\n');
