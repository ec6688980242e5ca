// Talking to `chorus inspect`: JSON requests whose failures become readable messages (never a thrown
// stack trace on the page), and the live socket /api/live, which reconnects by itself with backoff.

/** GET a JSON document; resolves { ok: true, data } or { ok: false, error } with a sentence to show. */
export const getJson = async (path) => {
  let response;
  try {
    response = await fetch(path, { headers: { accept: 'application/json' } });
  } catch (error) {
    return { ok: false, error: `the inspector at ${location.host} does not answer (${error.message})` };
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // A body that is not JSON is reported by its status below.
  }
  if (!response.ok) {
    const reason =
      body && typeof body.error === 'string' ? body.error : `${response.status} ${response.statusText}`;
    return { ok: false, status: response.status, error: reason };
  }
  return { ok: true, data: body };
};

/** GET text (an SVG, the Prometheus metrics); same result shape as getJson. */
export const getText = async (path) => {
  try {
    const response = await fetch(path);
    const text = await response.text();
    if (!response.ok) {
      let reason = `${response.status} ${response.statusText}`;
      try {
        reason = JSON.parse(text).error ?? reason;
      } catch {
        // not JSON: keep the status
      }
      return { ok: false, status: response.status, error: reason };
    }
    return { ok: true, data: text };
  } catch (error) {
    return { ok: false, error: `the inspector at ${location.host} does not answer (${error.message})` };
  }
};

export const memberPath = (memberId, rest) => `/api/member/${encodeURIComponent(memberId)}${rest}`;

/** An actor address in a URL path: each segment encoded, the slashes kept. */
export const addressPath = (address) => address.split('/').map(encodeURIComponent).join('/');

/**
 * The live socket: calls onMessage(object) for every message, onStatus('open'|'closed'|'connecting', text)
 * as the connection changes, and reconnects after 0.5 s, doubling up to 5 s, until stop() is called.
 */
export const connectLive = ({ onMessage, onStatus }) => {
  let socket = null;
  let delay = 500;
  let stopped = false;
  let timer = null;
  const open = () => {
    onStatus('connecting', 'connecting…');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/api/live`);
    socket.onopen = () => {
      delay = 500;
      onStatus('open', 'live');
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not JSON: nothing to show
      }
      try {
        onMessage(message);
      } catch (error) {
        console.error('inspector: a live message could not be shown', error, message);
      }
    };
    socket.onclose = () => {
      if (stopped) return;
      onStatus('closed', `disconnected from the inspector; reconnecting in ${(delay / 1000).toFixed(1)} s`);
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    };
    socket.onerror = () => socket.close();
  };
  open();
  return {
    /** Send a message now if the socket is open (false if it is not: send it again on the next 'open'). */
    send(message) {
      if (socket?.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(message));
      return true;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
};

/** Text of an element built from a template: `el('td', { class: 'num' }, 'text', child)`. */
export const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

export const errorBox = (message) => el('div', { class: 'error', role: 'alert' }, message);

export const formatMs = (ms) =>
  ms === null || ms === undefined ? '—' : ms < 1000 ? `${ms} ms ago` : `${(ms / 1000).toFixed(1)} s ago`;

export const clock = (atMs) => new Date(atMs).toISOString().slice(11, 23);
