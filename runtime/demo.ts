// `npm start`. Until member processes exist (issue 5), the demo says plainly what it can show today.

export const runDemo = async (): Promise<number> => {
  process.stdout.write(
    [
      'Chorus — a Raft-replicated, event-sourced actor platform.',
      '',
      'The multi-process demo (a 3-member cluster, clients, a leader killed mid-flow) is not built yet.',
      'What works today:',
      '  npx chorus config check FILE   validate a cluster configuration',
      '  npx chorus config schema       the configuration JSON Schema',
      '  npx chorus bench NAME          benchmarks (JSON out)',
      '  npm test                       every test',
      '',
    ].join('\n'),
  );
  return 0;
};
