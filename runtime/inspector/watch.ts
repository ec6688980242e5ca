// Which actors a page shows, so that only those are pushed. A page tells `chorus inspect`
// `{ "type": "watch", "actors": [{ "member": 0, "address": "svc/type/id" }, ...] }` (each message replaces
// its list); the inspector tells each member the union over its pages, `{ "type": "watch", "actors":
// ["svc/type/id", ...] }`. Both are read as hostile: a message that is not such a list is refused with the
// reason, and nothing else changes.

/** Actors one socket may watch at once. */
export const MAX_WATCHED_ACTORS = 32;
/** The longest actor address a watch may name. */
export const MAX_ADDRESS_LENGTH = 256;

export type Checked<T> = { value: T } | { error: string };

/** The `actors` of a watch message, each checked by `entry`, or why the message is refused. */
export const parseWatch = <T>(text: string, entry: (value: unknown) => Checked<T>): Checked<T[]> => {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { error: 'a message must be JSON: { "type": "watch", "actors": [...] }' };
  }
  const { type, actors } = (typeof message === 'object' && message !== null ? message : {}) as {
    type?: unknown;
    actors?: unknown;
  };
  if (type !== 'watch')
    return { error: 'the only message understood is { "type": "watch", "actors": [...] }' };
  if (!Array.isArray(actors) || actors.length > MAX_WATCHED_ACTORS)
    return { error: `a watch's actors must be a list of at most ${MAX_WATCHED_ACTORS}` };
  const checked: T[] = [];
  for (const value of actors) {
    const result = entry(value);
    if ('error' in result) return result;
    checked.push(result.value);
  }
  return { value: checked };
};

/** An actor address as a watch may name it, or why not. */
export const watchedAddress = (value: unknown): Checked<string> =>
  typeof value === 'string' && value.length > 0 && value.length <= MAX_ADDRESS_LENGTH
    ? { value }
    : { error: `a watched actor must be an address of 1 to ${MAX_ADDRESS_LENGTH} characters` };
