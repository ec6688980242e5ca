// The actors view: services → shards → actors of a member (searchable), and one actor's statechart
// with its current state highlighted, its context as JSON, its pending timers and last inputs. The
// open actor follows the live socket's `actor` pushes. `showActor` is shared with time travel (log.js).

import { addressPath, clock, el, errorBox, getJson, memberPath } from './api.js';
import { highlight, loadChart } from './charts.js';

const byId = (id) => document.getElementById(id);
let opened = null; // { memberId, address }

/** Keep a member <select> filled with the members (the leader first) and keep the user's choice. */
export const fillMemberSelect = (store, select) => {
  const chosen = select.value;
  const leader = store.leader();
  const ids = [...store.members.values()].map((m) => m.id).sort((a, b) => Number(a) - Number(b));
  const options = ids.map((id) => {
    const member = store.members.get(id);
    const label = `member ${id}${leader?.id === id ? ' (leader)' : ''}${member.up ? '' : ' (down)'}`;
    return el('option', { value: id }, label);
  });
  select.replaceChildren(el('option', { value: '' }, 'the leader'), ...options);
  select.value = ids.includes(chosen) ? chosen : '';
};

/** The member a view asks: the one chosen, else the leader, else any member up. */
export const chosenMember = (store, select) => {
  if (select.value !== '') return store.members.get(select.value) ?? null;
  return store.anyMember();
};

const json = (value) => JSON.stringify(value, null, 2);

/**
 * Draw an actor view (GET /actors/ADDRESS or /actors/ADDRESS/at/INDEX) into `target`: header, chart with
 * the state highlighted, context, timers, last inputs. `asOf` says it is a replayed view.
 */
export const showActor = async (target, memberId, view, asOf = null) => {
  const chart = el('div', { class: 'chart', 'data-actor': view.address });
  target.replaceChildren(
    el(
      'h2',
      {},
      view.address,
      ' ',
      el(
        'small',
        { class: 'hint' },
        `on member ${memberId}, ${asOf === null ? `as of index ${view.index} (live)` : `as of index ${asOf} (replayed in isolation)`}`,
      ),
    ),
    el(
      'div',
      { 'data-field': 'actor-state' },
      'state: ',
      el('code', {}, view.kind === 'behaviour' ? 'a behaviour (no statechart)' : json(view.state)),
    ),
    chart,
    el('h3', {}, 'context'),
    el('pre', { 'data-field': 'context' }, json(view.context)),
    el('h3', {}, 'pending timers'),
    (view.timers ?? []).length === 0
      ? el('p', { class: 'hint' }, 'none')
      : el(
          'table',
          {},
          el('tr', {}, el('th', {}, 'timer'), el('th', {}, 'event'), el('th', {}, 'due')),
          view.timers.map((t) =>
            el('tr', {}, el('td', {}, t.id), el('td', {}, t.event ?? ''), el('td', {}, clock(t.dueAtMs))),
          ),
        ),
    el('h3', {}, 'last inputs'),
    (view.lastInputs ?? []).length === 0
      ? el('p', { class: 'hint' }, 'none in the recent log')
      : el(
          'table',
          {},
          el(
            'tr',
            {},
            el('th', {}, 'index'),
            el('th', {}, 'kind'),
            el('th', {}, 'time'),
            el('th', {}, 'input'),
          ),
          view.lastInputs.map((i) =>
            el(
              'tr',
              {},
              el('td', { class: 'num' }, i.index),
              el('td', {}, i.kind),
              el('td', {}, clock(i.timestamp)),
              el('td', {}, el('code', {}, JSON.stringify(i.input))),
            ),
          ),
        ),
  );
  if (view.machine && (await loadChart(chart, memberId, view.machine))) highlight(chart, view.state);
};

const openActor = async (store, address) => {
  const detail = byId('actor-detail');
  const member = chosenMember(store, byId('actor-member'));
  if (!address.trim()) {
    detail.replaceChildren(
      errorBox('Type an actor address: service/actorType/actorId, e.g. bank/account/alice.'),
    );
    return;
  }
  if (!member) {
    detail.replaceChildren(errorBox('No member is up to ask.'));
    return;
  }
  const result = await getJson(memberPath(member.id, `/actors/${addressPath(address.trim())}`));
  if (!result.ok) {
    opened = null;
    store.watch?.(null);
    detail.replaceChildren(errorBox(`Cannot show actor ${address}: ${result.error}`));
    return;
  }
  opened = { memberId: member.id, address: result.data.address };
  store.watch?.(opened);
  byId('travel-address').value = result.data.address;
  await showActor(detail, member.id, result.data);
};

const search = async (store) => {
  const tree = byId('actor-tree');
  const member = chosenMember(store, byId('actor-member'));
  if (!member) {
    tree.replaceChildren(errorBox('No member is up to ask.'));
    return;
  }
  const q = byId('actor-query').value.trim();
  const result = await getJson(memberPath(member.id, `/actors?q=${encodeURIComponent(q)}`));
  if (!result.ok) {
    tree.replaceChildren(errorBox(`Cannot list actors on member ${member.id}: ${result.error}`));
    return;
  }
  const { services = [], truncated, limit } = result.data;
  const count = services.reduce((n, s) => n + s.shards.reduce((m, sh) => m + sh.actors.length, 0), 0);
  tree.replaceChildren(
    el(
      'div',
      { class: 'hint' },
      `${count} actor${count === 1 ? '' : 's'} on member ${member.id}${q ? ` matching “${q}”` : ''}${truncated ? ` (the first ${limit})` : ''}`,
    ),
    services.length === 0
      ? el('p', { class: 'hint' }, 'This member runs no actor services.')
      : el(
          'ul',
          {},
          services.map((service) =>
            el(
              'li',
              { 'data-service': service.name },
              el('strong', {}, service.name),
              service.shards.length === 0
                ? el('div', { class: 'hint' }, 'no actors yet')
                : el(
                    'ul',
                    {},
                    service.shards.map((shard) =>
                      el(
                        'li',
                        {},
                        `shard ${shard.id}`,
                        el(
                          'ul',
                          {},
                          shard.actors.map((address) =>
                            el(
                              'li',
                              {},
                              el(
                                'a',
                                { 'data-address': address, onclick: () => openActor(store, address) },
                                address,
                              ),
                            ),
                          ),
                        ),
                      ),
                    ),
                  ),
            ),
          ),
        ),
  );
};

let refetching = false;

/**
 * A live `actor` push: highlight the open actor's new state at once when it is the one pushed (from the
 * member asked), then read its whole view again (timers, last inputs), one read at a time.
 */
export const showActorMessage = (member, message) => {
  if (!opened || opened.address !== message.address || opened.memberId !== member.id) return;
  const detail = byId('actor-detail');
  const chart = detail.querySelector('.chart');
  const stateField = detail.querySelector('[data-field="actor-state"] code');
  if (stateField) stateField.textContent = JSON.stringify(message.state, null, 2);
  if (chart?.querySelector('svg')) highlight(chart, message.state);
  const store = window.chorusInspector;
  store.shown.push({
    member: member.id,
    machine: 'actor',
    address: message.address,
    to: message.state,
    index: message.index,
    shownAtMs: Date.now(),
  });
  if (refetching) return;
  refetching = true;
  const { memberId, address } = opened;
  void getJson(memberPath(memberId, `/actors/${addressPath(address)}`))
    .then(async (result) => {
      if (result.ok && opened?.address === address && opened.memberId === memberId)
        await showActor(detail, memberId, result.data);
    })
    .finally(() => {
      refetching = false;
    });
};

export const startActors = (store) => {
  const select = byId('actor-member');
  store.listeners.add((what) => {
    if (what.type === 'members' || what.type === 'member' || what.type === 'tab')
      fillMemberSelect(store, select);
    if (what.type === 'tab' && what.name === 'actors' && byId('actor-tree').childElementCount === 0)
      void search(store);
  });
  byId('actor-search').addEventListener('submit', (event) => {
    event.preventDefault();
    void search(store);
  });
  byId('actor-open').addEventListener('click', () => void openActor(store, byId('actor-address').value));
  byId('actor-address').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      void openActor(store, byId('actor-address').value);
    }
  });
};
