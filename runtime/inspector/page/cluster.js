// The cluster view (each member's role, term, election and module states, positions, followers; the
// election and module statecharts with each member's badge on its state and its last transition
// flashed; each member's last transitions) and the sessions view.

import { clock, el, errorBox, formatMs } from './api.js';
import { flashTransition, loadChart, memberColor, pathOfLeaf, placeBadges } from './charts.js';

const byId = (id) => document.getElementById(id);
const members = (store) => [...store.members.values()].sort((a, b) => Number(a.id) - Number(b.id));

const memberCard = (member, leader) => {
  const s = member.state;
  const card = el('div', {
    class: `member${member.up ? '' : ' down'}`,
    'data-member': member.id,
    'data-up': member.up ? 'true' : 'false',
    'data-role': member.up && s ? s.role : 'DOWN',
    style: `--member-color: ${memberColor(member.id)}`,
  });
  card.append(
    el(
      'h3',
      {},
      `member ${member.id}`,
      el(
        'span',
        { class: 'role', 'data-role': member.up && s ? s.role : 'DOWN' },
        member.up && s ? s.role : 'DOWN',
      ),
      leader && leader.id === member.id
        ? el('span', { class: 'role', 'data-role': 'LEADER' }, 'leader')
        : null,
    ),
  );
  if (!member.up) {
    card.append(errorBox(`member ${member.id} is down: ${member.reason ?? 'no answer'}`));
    if (!s) return card;
    card.append(el('div', { class: 'hint' }, 'last known:'));
  }
  if (!s) {
    card.append(el('div', { class: 'hint' }, 'waiting for its state…'));
    return card;
  }
  card.append(
    el(
      'dl',
      {},
      el('dt', {}, 'term'),
      el('dd', { 'data-field': 'term' }, s.term),
      el('dt', {}, 'leader'),
      el('dd', {}, s.leaderId ?? 'none known'),
      el('dt', {}, 'election'),
      el('dd', { 'data-field': 'election' }, s.electionState),
      el('dt', {}, 'module'),
      el('dd', { 'data-field': 'module' }, s.moduleState),
      el('dt', {}, 'append / commit'),
      el('dd', {}, `${s.appendPosition} / ${s.commitPosition}`),
      el('dt', {}, 'sessions'),
      el('dd', {}, (s.sessions ?? []).length),
    ),
  );
  if (s.storageFailure) card.append(errorBox(`storage failed: ${s.storageFailure}`));
  if ((s.followers ?? []).length > 0) {
    card.append(
      el(
        'table',
        { class: 'followers' },
        el(
          'tr',
          {},
          el('th', {}, 'follower'),
          el('th', {}, 'match'),
          el('th', {}, 'lag'),
          el('th', {}, 'progress'),
        ),
        s.followers.map((f) =>
          el(
            'tr',
            { 'data-follower': f.id },
            el('td', {}, f.id),
            el('td', { class: 'num' }, f.matchIndex),
            el('td', { class: 'num' }, f.lag),
            el('td', {}, f.progress ?? ''),
          ),
        ),
      ),
    );
  }
  return card;
};

const historyList = (member) => {
  const recent = member.history
    .filter((r) => r.machine !== 'session')
    .slice(-25)
    .reverse();
  return el(
    'div',
    { class: 'history', 'data-member': member.id },
    el('strong', {}, `member ${member.id}`),
    recent.length === 0
      ? el('div', { class: 'hint' }, 'no transitions seen yet')
      : el(
          'ol',
          { reversed: true },
          recent.map((r) =>
            el(
              'li',
              { 'data-machine': r.machine, 'data-from': r.from, 'data-to': r.to, 'data-at': r.atMs },
              `${clock(r.atMs)} ${r.machine} ${r.from} → ${r.to}${r.event ? ` (${r.event})` : ''}`,
            ),
          ),
        ),
  );
};

let chartsLoading = null;
let chartsRetry = null;
/** The cluster charts, drawn by a member; one that fails (a member busy or down) is asked for again in 3 s. */
const loadClusterCharts = (store) => {
  const source = store.anyMember();
  if (!source) return Promise.resolve(false);
  chartsLoading ??= Promise.all([
    loadChart(byId('election-chart'), source.id, 'election'),
    loadChart(byId('module-chart'), source.id, 'consensus-module'),
    loadChart(byId('session-chart'), source.id, 'client-session'),
  ])
    .then((loaded) => {
      if (loaded.every(Boolean) || chartsRetry !== null) return;
      chartsRetry = setTimeout(() => {
        chartsRetry = null;
        void renderCluster(store, { type: 'retry' });
        void renderSessions(store);
      }, 3000);
    })
    .finally(() => {
      chartsLoading = null;
    });
  return chartsLoading;
};

const badges = (store, container, field) =>
  placeBadges(
    container,
    members(store)
      .filter((m) => m.up && m.state)
      .map((m) => ({
        key: `member-${m.id}`,
        label: m.id,
        color: memberColor(m.id),
        path: pathOfLeaf(container, m.state[field]),
      })),
  );

/** Each member's states as its badges last showed them. */
const drawn = new Map();

/**
 * Place the badges, and note when a member's badge moves (for `chorus bench inspector`: from the state
 * change in the member, its transition's atMs, to the frame that shows it).
 */
const drawCharts = (store) => {
  badges(store, byId('election-chart'), 'electionState');
  badges(store, byId('module-chart'), 'moduleState');
  const moved = [];
  for (const member of members(store)) {
    if (!member.up || !member.state) continue;
    const before = drawn.get(member.id) ?? {};
    for (const [field, machine] of [
      ['electionState', 'election'],
      ['moduleState', 'module'],
    ]) {
      if (before[field] !== member.state[field])
        moved.push({ member: member.id, machine, to: member.state[field] });
    }
    drawn.set(member.id, {
      electionState: member.state.electionState,
      moduleState: member.state.moduleState,
    });
  }
  if (moved.length === 0) return;
  requestAnimationFrame(() => {
    const shownAtMs = Date.now();
    for (const entry of moved) store.shown.push({ ...entry, shownAtMs });
    if (store.shown.length > 5000) store.shown.splice(0, store.shown.length - 5000);
  });
};

export const renderCluster = async (store, what) => {
  const leader = store.leader();
  const list = members(store);
  const up = list.filter((m) => m.up).length;
  byId('summary').textContent =
    list.length === 0
      ? 'no members known'
      : `${list.length} members, ${up} up · ${leader ? `leader: member ${leader.id}, term ${leader.state.term}` : 'no leader'}`;
  byId('summary').dataset.leader = leader ? leader.id : '';
  byId('members').replaceChildren(...list.map((m) => memberCard(m, leader)));
  byId('histories').replaceChildren(...list.map(historyList));
  await loadClusterCharts(store);
  drawCharts(store);
  if (what?.type === 'transition' && what.fresh) {
    const { record } = what;
    const container =
      record.machine === 'election'
        ? byId('election-chart')
        : record.machine === 'module'
          ? byId('module-chart')
          : record.machine === 'session'
            ? byId('session-chart')
            : null;
    if (container) flashTransition(container, record.from, record.to, record.event);
  }
};

export const renderSessions = async (store) => {
  const rows = [];
  const counts = new Map();
  for (const member of members(store)) {
    if (!member.up || !member.state) continue;
    for (const session of member.state.sessions ?? []) {
      rows.push({ member, session });
      if (member === store.leader()) counts.set(session.state, (counts.get(session.state) ?? 0) + 1);
    }
  }
  const table =
    rows.length === 0
      ? el('p', { class: 'hint' }, 'No client sessions: none is open on any member that is up.')
      : el(
          'table',
          {},
          el(
            'tr',
            {},
            ['member', 'session', 'state', 'principal', 'connected', 'last activity', 'in flight'].map((h) =>
              el('th', {}, h),
            ),
          ),
          rows.map(({ member, session }) =>
            el(
              'tr',
              { 'data-session': session.id, 'data-member': member.id, 'data-state': session.state },
              el('td', {}, member.id),
              el('td', { class: 'num' }, session.id),
              el('td', {}, session.state),
              el('td', {}, session.principal ?? ''),
              el('td', {}, session.connected === undefined ? '' : session.connected ? 'yes' : 'no'),
              el('td', {}, formatMs(session.lastActivityMs)),
              el('td', { class: 'num' }, session.inFlight ?? ''),
            ),
          ),
        );
  byId('sessions-table').replaceChildren(table);
  const chart = byId('session-chart');
  if (chart.dataset.loaded !== 'client-session') await loadClusterCharts(store);
  placeBadges(
    chart,
    [...counts].map(([state, n]) => ({
      key: `state-${state}`,
      label: n,
      color: '#2f6fdb',
      path: pathOfLeaf(chart, state),
    })),
  );
};
