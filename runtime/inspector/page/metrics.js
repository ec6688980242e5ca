// Metrics as small live time series: every few seconds each member's Prometheus text (GET /metrics,
// prom-client) is read and a few series are charted per member: commit rate, mean commit and append
// latency over the interval, sessions, shard queue depth, log entries, event-loop lag. And the gateways
// panel: the `gateways` service's state once it runs (GET /actors?q=gateways), else it says it does not.

import { addressPath, el, errorBox, getJson, getText, memberPath } from './api.js';
import { memberColor } from './charts.js';

const byId = (id) => document.getElementById(id);
const SAMPLE_MS = 2000;
const KEEP = 90;

/** `name{labels} value` lines → Map(name → [{ labels, value }]) (comments skipped). */
export const parsePrometheus = (text) => {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const list = out.get(match[1]) ?? [];
    list.push({ labels: match[2] ?? '', value: Number(match[3]) });
    out.set(match[1], list);
  }
  return out;
};

const total = (metrics, name) => (metrics.get(name) ?? []).reduce((sum, s) => sum + s.value, 0);
const has = (metrics, name) => metrics.has(name);

/** What each chart shows, from two successive samples (prev may be null). */
const SERIES = [
  {
    id: 'commit-rate',
    title: 'commit rate',
    unit: 'entries/s',
    needs: 'chorus_committed_entries_total',
    value: (m, p, dt) =>
      p
        ? (total(m, 'chorus_committed_entries_total') - total(p, 'chorus_committed_entries_total')) / dt
        : null,
  },
  {
    id: 'commit-latency',
    title: 'commit latency (mean)',
    unit: 'ms',
    needs: 'chorus_commit_latency_seconds_count',
    value: (m, p) => meanMs(m, p, 'chorus_commit_latency_seconds'),
  },
  {
    id: 'append-latency',
    title: 'append latency (mean)',
    unit: 'ms',
    needs: 'chorus_append_latency_seconds_count',
    value: (m, p) => meanMs(m, p, 'chorus_append_latency_seconds'),
  },
  {
    id: 'sessions',
    title: 'sessions',
    unit: '',
    needs: 'chorus_sessions',
    value: (m) => total(m, 'chorus_sessions'),
  },
  {
    id: 'queue',
    title: 'shard queue depth',
    unit: 'entries',
    needs: 'chorus_shard_queue_depth',
    value: (m) => total(m, 'chorus_shard_queue_depth'),
  },
  {
    id: 'log',
    title: 'log entries held',
    unit: '',
    needs: 'chorus_log_entries',
    value: (m) => total(m, 'chorus_log_entries'),
  },
  {
    id: 'lag',
    title: 'event-loop lag',
    unit: 'ms',
    needs: 'nodejs_eventloop_lag_seconds',
    value: (m) => total(m, 'nodejs_eventloop_lag_seconds') * 1000,
  },
];

const meanMs = (m, p, base) => {
  if (!p) return null;
  const count = total(m, `${base}_count`) - total(p, `${base}_count`);
  const sum = total(m, `${base}_sum`) - total(p, `${base}_sum`);
  return count > 0 ? (sum / count) * 1000 : 0;
};

/** memberId → { prev, prevAt, series: Map(seriesId → number[]) , error } */
const samples = new Map();

const sample = async (store) => {
  await Promise.all(
    [...store.members.values()].map(async (member) => {
      const entry = samples.get(member.id) ?? { prev: null, prevAt: 0, series: new Map(), error: null };
      samples.set(member.id, entry);
      if (!member.up) {
        entry.error = `member ${member.id} is down: ${member.reason ?? 'no answer'}`;
        entry.prev = null;
        return;
      }
      const result = await getText(memberPath(member.id, '/metrics'));
      if (!result.ok) {
        entry.error = `metrics of member ${member.id}: ${result.error}`;
        return;
      }
      entry.error = null;
      const metrics = parsePrometheus(result.data);
      const now = performance.now();
      const dt = (now - entry.prevAt) / 1000;
      for (const series of SERIES) {
        if (!has(metrics, series.needs)) continue;
        const value = series.value(metrics, entry.prev, dt);
        if (value === null || !Number.isFinite(value)) continue;
        const list = entry.series.get(series.id) ?? [];
        list.push(value);
        if (list.length > KEEP) list.shift();
        entry.series.set(series.id, list);
      }
      entry.prev = metrics;
      entry.prevAt = now;
    }),
  );
};

const spark = (values, color) => {
  const width = 300;
  const height = 70;
  const max = Math.max(1e-9, ...values);
  const step = width / Math.max(1, KEEP - 1);
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 4 - (v / max) * (height - 10)).toFixed(1)}`)
    .join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.innerHTML = `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points}"/>`;
  return svg;
};

const format = (v, unit) =>
  `${v >= 100 ? Math.round(v) : v.toFixed(v >= 10 ? 1 : 2)}${unit ? ` ${unit}` : ''}`;

const draw = (store) => {
  const grid = byId('metrics-grid');
  const cards = [];
  for (const member of [...store.members.values()].sort((a, b) => Number(a.id) - Number(b.id))) {
    const entry = samples.get(member.id);
    if (!entry) continue;
    if (entry.error) {
      cards.push(
        el(
          'div',
          { class: 'metric', 'data-member': member.id },
          el('h3', {}, `member ${member.id}`),
          errorBox(entry.error),
        ),
      );
      continue;
    }
    for (const series of SERIES) {
      const values = entry.series.get(series.id);
      if (!values || values.length === 0) continue;
      const last = values[values.length - 1];
      cards.push(
        el(
          'div',
          { class: 'metric', 'data-member': member.id, 'data-series': series.id },
          el('h3', {}, `member ${member.id} · ${series.title}`),
          el(
            'div',
            { class: 'value' },
            `now ${format(last, series.unit)}, max ${format(Math.max(...values), series.unit)}`,
          ),
          spark(values, memberColor(member.id)),
        ),
      );
    }
  }
  grid.replaceChildren(
    ...(cards.length > 0 ? cards : [el('p', { class: 'hint' }, 'collecting the first samples…')]),
  );
};

export const startMetrics = (store) => {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await sample(store);
      if (!byId('metrics').hidden) draw(store);
    } finally {
      running = false;
    }
  };
  setInterval(tick, SAMPLE_MS);
  store.listeners.add((what) => {
    if (what.type === 'tab' && what.name === 'metrics') draw(store);
  });
};

const showGateways = async (store) => {
  const panel = byId('gateways-panel');
  const member = store.anyMember();
  if (!member) {
    panel.replaceChildren(errorBox('No member is up to ask.'));
    return;
  }
  const result = await getJson(memberPath(member.id, '/actors?q=gateways'));
  if (!result.ok) {
    panel.replaceChildren(
      errorBox(`Cannot ask member ${member.id} for the gateways service: ${result.error}`),
    );
    return;
  }
  const service = (result.data.services ?? []).find((s) => s.name === 'gateways');
  if (!service) {
    panel.replaceChildren(
      el(
        'p',
        { 'data-field': 'gateways' },
        'gateways service not running: the cluster hosts no service named “gateways”, so there are no gateways, parties or owners to show.',
      ),
    );
    return;
  }
  const actors = service.shards.flatMap((s) => s.actors);
  const registry = actors.find((a) => a.endsWith('/registry/fleet')) ?? actors[0];
  if (registry === undefined) {
    panel.replaceChildren(
      el(
        'p',
        { 'data-field': 'gateways' },
        `gateways service running on member ${member.id}, with no gateway registered yet.`,
      ),
    );
    return;
  }
  const view = await getJson(memberPath(member.id, `/actors/${addressPath(registry)}`));
  if (!view.ok) {
    panel.replaceChildren(
      errorBox(`Cannot read the gateway registry ${registry} on member ${member.id}: ${view.error}`),
    );
    return;
  }
  const snapshot = view.data.context ?? {};
  const data = snapshot.registry ?? {};
  const gateways = data.gateways ?? [];
  const parties = (data.parties ?? []).filter((p) => !p.retired);
  const assignment = (p) => p.assignment?.context ?? p.assignment ?? {};
  const table = (headers, rows) =>
    el(
      'table',
      {},
      el(
        'tr',
        {},
        headers.map((h) => el('th', {}, h)),
      ),
      rows.map((cells) =>
        el(
          'tr',
          {},
          cells.map((c) => el('td', {}, c ?? '')),
        ),
      ),
    );
  panel.replaceChildren(
    el(
      'p',
      { 'data-field': 'gateways' },
      `gateways service on member ${member.id} (${registry}, as of index ${view.data.index}): rules version ${snapshot.rulesVersion ?? '?'}, ${gateways.length} gateway${gateways.length === 1 ? '' : 's'}, ${parties.length} part${parties.length === 1 ? 'y' : 'ies'}`,
    ),
    el('h2', {}, 'gateways'),
    gateways.length === 0
      ? el('p', { class: 'hint' }, 'none registered')
      : table(
          ['name', 'state', 'session', 'capacity', 'capabilities', 'owns'],
          gateways.map((g) => [
            g.name,
            typeof g.state === 'string' ? g.state : JSON.stringify(g.state),
            g.session,
            g.capacity,
            (g.capabilities ?? []).join(', '),
            parties.filter((p) => assignment(p).owner === g.name).length,
          ]),
        ),
    el('h2', {}, 'parties'),
    parties.length === 0
      ? el('p', { class: 'hint' }, 'none declared')
      : table(
          ['party', 'endpoint', 'state', 'owner', 'epoch', 'moving to'],
          parties.map((p) => {
            const a = assignment(p);
            return [
              p.id,
              p.endpoint,
              typeof p.state === 'string' ? p.state : JSON.stringify(p.state),
              a.owner ?? 'none',
              a.epoch,
              a.target,
            ];
          }),
        ),
    el(
      'p',
      { class: 'hint' },
      'Why a party is where it is: npx chorus gateway explain PARTY --endpoints ENDPOINTS (docs/gateways.md).',
    ),
  );
};

export const startGateways = (store) => {
  store.listeners.add((what) => {
    if (what.type === 'tab' && what.name === 'gateways') void showGateways(store);
  });
};
