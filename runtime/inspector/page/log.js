// The log timeline: a member's recent entries (index, term, kind, session, size, committed), and time
// travel — an actor's state as of a picked index, which the member computes by replay in isolation.

import { chosenMember, fillMemberSelect, showActor } from './actors.js';
import { addressPath, clock, el, errorBox, getJson, memberPath } from './api.js';

const byId = (id) => document.getElementById(id);

const travel = async (store, index) => {
  const detail = byId('travel-detail');
  const address = byId('travel-address').value.trim();
  const member = chosenMember(store, byId('log-member'));
  if (!Number.isSafeInteger(index) || index < 1) {
    detail.replaceChildren(errorBox('Pick a log index (a whole number from 1).'));
    return;
  }
  byId('travel-index').value = String(index);
  if (address === '') {
    detail.replaceChildren(errorBox(`Type the address of an actor to see its state as of index ${index}.`));
    return;
  }
  if (!member) {
    detail.replaceChildren(errorBox('No member is up to ask.'));
    return;
  }
  detail.replaceChildren(
    el('p', { class: 'hint' }, `replaying ${address} to index ${index} on member ${member.id}…`),
  );
  const result = await getJson(memberPath(member.id, `/actors/${addressPath(address)}/at/${index}`));
  if (!result.ok) {
    detail.replaceChildren(errorBox(`Cannot show ${address} as of index ${index}: ${result.error}`));
    return;
  }
  await showActor(detail, member.id, result.data, index);
};

const showLog = async (store) => {
  const table = byId('log-table');
  const message = byId('log-message');
  const member = chosenMember(store, byId('log-member'));
  if (!member) {
    message.replaceChildren(errorBox('No member is up to ask.'));
    return;
  }
  const from = byId('log-from').value.trim();
  const query = from === '' ? '?limit=100' : `?from=${encodeURIComponent(from)}&limit=100`;
  const result = await getJson(memberPath(member.id, `/log${query}`));
  if (!result.ok) {
    message.replaceChildren(errorBox(`Cannot read the log of member ${member.id}: ${result.error}`));
    return;
  }
  const { firstIndex, lastIndex, commitIndex, entries } = result.data;
  message.replaceChildren(
    el(
      'p',
      { class: 'hint' },
      `member ${member.id} holds ${firstIndex}..${lastIndex}, committed up to ${commitIndex}; newest first`,
    ),
  );
  table.replaceChildren(
    el(
      'table',
      {},
      el(
        'tr',
        {},
        ['index', 'term', 'time', 'kind', 'session', 'size'].map((h) => el('th', {}, h)),
      ),
      [...entries]
        .reverse()
        .map((e) =>
          el(
            'tr',
            { 'data-index': e.index, class: e.committed === false ? 'uncommitted' : '' },
            el(
              'td',
              { class: 'num' },
              el('a', { class: 'index', onclick: () => travel(store, e.index) }, e.index),
            ),
            el('td', { class: 'num' }, e.term),
            el('td', {}, e.timestamp ? clock(e.timestamp) : ''),
            el('td', {}, e.kind),
            el('td', { class: 'num' }, e.session ?? ''),
            el('td', { class: 'num' }, e.size),
          ),
        ),
    ),
  );
};

export const startLog = (store) => {
  const select = byId('log-member');
  store.listeners.add((what) => {
    if (what.type === 'members' || what.type === 'member' || what.type === 'tab')
      fillMemberSelect(store, select);
    if (what.type === 'tab' && what.name === 'log') void showLog(store);
  });
  byId('log-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void showLog(store);
  });
  byId('travel-go').addEventListener('click', () => void travel(store, Number(byId('travel-index').value)));
};
