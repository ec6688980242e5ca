// The inspector page: one store of what each member last said (state, transitions, up or down), fed by
// GET /api/members, each member's GET /state and the live socket /api/live (a member's whole `state`, then
// `delta`s of the fields that changed, and its `transition`s); tabs draw from it. Nothing
// here is fetched from anywhere but the inspector that served the page.

import { showActorMessage, startActors } from './actors.js';
import { connectLive, getJson, memberPath } from './api.js';
import { renderCluster, renderSessions } from './cluster.js';
import { startLog } from './log.js';
import { startGateways, startMetrics } from './metrics.js';

/** Kept per member: the transitions the page has seen, oldest first. */
const HISTORY = 200;

const store = {
  /** id → { id, url, up, reason, state, history: [], lastSeenMs } */
  members: new Map(),
  listeners: new Set(),
  /** Highlights shown, for `chorus bench inspector`: { member, machine, to, atMs, shownAtMs }. */
  shown: [],
};
window.chorusInspector = store;

const changed = (what) => {
  for (const listener of store.listeners) listener(what);
};

/** The member that leads in the highest term among those up (null when none does). */
const leaderOf = () => {
  let leader = null;
  for (const member of store.members.values()) {
    if (!member.up || member.state?.role !== 'LEADER') continue;
    if (leader === null || member.state.term > leader.state.term) leader = member;
  }
  return leader;
};

/** A member to ask for cluster-wide things: the leader, else any member that is up. */
const anyMember = () => leaderOf() ?? [...store.members.values()].find((m) => m.up) ?? null;

store.leader = leaderOf;
store.anyMember = anyMember;

const memberOf = (id) => {
  const key = String(id);
  let member = store.members.get(key);
  if (!member) {
    member = { id: key, url: null, up: false, reason: 'not heard from yet', state: null, history: [] };
    store.members.set(key, member);
  }
  return member;
};

const remember = (member, record) => {
  const key = `${record.machine}|${record.id ?? ''}|${record.from}|${record.to}|${record.atMs}`;
  if (member.history.some((r) => r.key === key)) return false;
  member.history.push({ ...record, key });
  member.history.sort((a, b) => a.atMs - b.atMs);
  if (member.history.length > HISTORY) member.history.splice(0, member.history.length - HISTORY);
  return true;
};

const acceptState = (member, state) => {
  if (!state || typeof state !== 'object') return;
  member.state = state;
  member.up = true;
  member.reason = null;
  for (const record of state.transitions ?? []) remember(member, record);
};

/** One message of the live socket (every message names its member). */
const onLive = (message) => {
  if (message.member === undefined || message.member === null) {
    if (message.type === 'members' && Array.isArray(message.members)) acceptMembers(message.members);
    return;
  }
  const member = memberOf(message.member);
  if (typeof message.up === 'boolean') {
    member.up = message.up;
    member.reason = message.reason ?? (message.up ? null : 'down');
    changed({ type: 'member', member });
  }
  if (message.type === 'state') {
    acceptState(member, message.state);
    changed({ type: 'state', member });
  } else if (message.type === 'delta') {
    // The fields of the member's state that changed since its last push (it sent the whole state first).
    if (!member.state || !message.state || typeof message.state !== 'object') return;
    for (const [key, value] of Object.entries(message.state))
      if (key !== '__proto__' && key !== 'transitions') member.state[key] = value;
    member.up = true;
    member.reason = null;
    changed({ type: 'state', member });
  } else if (message.type === 'transition') {
    const fresh = remember(member, message);
    // The member's own record of a change: its state is the new one now (its next `state` push agrees).
    const field = { election: 'electionState', module: 'moduleState', role: 'role' }[message.machine];
    if (fresh && field && member.state && typeof message.to === 'string') member.state[field] = message.to;
    changed({ type: 'transition', member, record: message, fresh });
  } else if (message.type === 'actor') {
    showActorMessage(member, message);
  } else if (message.type === 'down' || message.type === 'member-down') {
    member.up = false;
    member.reason = message.reason ?? 'down';
    changed({ type: 'member', member });
  }
};

const acceptMembers = (list) => {
  for (const entry of list) {
    const member = memberOf(entry.id ?? entry.memberId);
    member.url = entry.adminUrl ?? entry.url ?? member.url;
    const up = typeof entry.up === 'boolean' ? entry.up : entry.status === 'up';
    member.up = up;
    member.reason = up ? null : (entry.reason ?? entry.error ?? 'down');
  }
};

/** Everything from scratch: the members, then each one's state (on load and after a reconnect). */
const refresh = async () => {
  const result = await getJson('/api/members');
  const banner = document.getElementById('banner');
  if (!result.ok) {
    banner.hidden = false;
    banner.textContent = `Cannot list the cluster's members: ${result.error}`;
    changed({ type: 'members' });
    return;
  }
  banner.hidden = true;
  acceptMembers(Array.isArray(result.data) ? result.data : (result.data?.members ?? []));
  await Promise.all(
    [...store.members.values()].map(async (member) => {
      if (!member.up) return;
      const state = await getJson(memberPath(member.id, '/state'));
      if (state.ok) acceptState(member, state.data);
      else {
        member.up = false;
        member.reason = state.error;
      }
    }),
  );
  changed({ type: 'members' });
};

const showTab = () => {
  const name = (location.hash || '#cluster').slice(1);
  for (const section of document.querySelectorAll('section.tab')) section.hidden = section.id !== name;
  for (const link of document.querySelectorAll('nav a'))
    link.classList.toggle('current', link.dataset.tab === name);
  changed({ type: 'tab', name });
};

const start = () => {
  store.listeners.add((what) => {
    renderCluster(store, what);
    renderSessions(store, what);
  });
  startActors(store);
  startLog(store);
  startMetrics(store);
  startGateways(store);
  window.addEventListener('hashchange', showTab);
  showTab();
  let everOpen = false;
  // The actor the page shows is the only one members push (runtime/inspector/watch.ts).
  const watch = () => {
    const actor = store.watchedActor;
    live.send({
      type: 'watch',
      actors: actor ? [{ member: Number(actor.memberId), address: actor.address }] : [],
    });
  };
  store.watch = (actor) => {
    store.watchedActor = actor;
    watch();
  };
  const live = connectLive({
    onMessage: onLive,
    onStatus: (status, text) => {
      const live = document.getElementById('live');
      live.dataset.live = status;
      live.textContent = text;
      if (status === 'open') {
        watch();
        // After a reconnect the page may have missed changes: read everything again.
        if (everOpen) void refresh();
        everOpen = true;
      }
    },
  });
  void refresh();
};

start();
