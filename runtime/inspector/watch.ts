// Which actors a page shows, so that only those are pushed. A page tells `chorus inspect`
// `{ "type": "watch", "actors": [{ "member": 0, "address": "svc/type/id" }, ...] }` (each message replaces
// its list); the inspector tells each member the union over its pages, `{ "type": "watch", "actors":
// ["svc/type/id", ...] }`. Both are read as hostile, with zod: a message that is not such a list is refused
// with the reason (each problem with its path), and nothing else changes.

import { z } from 'zod';

/** Actors one socket may watch at once. */
export const MAX_WATCHED_ACTORS = 32;
/** The longest actor address a watch may name. */
export const MAX_ADDRESS_LENGTH = 256;

export type Checked<T> = { value: T } | { error: string };

/** An actor address as a watch may name it. */
export const watchedAddress = z.string().min(1).max(MAX_ADDRESS_LENGTH);

/** A watch message whose actors are each `entry`. */
export const watchMessage = <T extends z.ZodType>(entry: T) =>
  z.object({ type: z.literal('watch'), actors: z.array(entry).max(MAX_WATCHED_ACTORS) });

/** The `actors` of a watch message (JSON text), each checked by `entry`, or why the message is refused. */
export const parseWatch = <T extends z.ZodType>(text: string, entry: T): Checked<z.output<T>[]> => {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { error: 'a message must be JSON: { "type": "watch", "actors": [...] }' };
  }
  const parsed = watchMessage(entry).safeParse(message);
  if (parsed.success) return { value: parsed.data.actors };
  return {
    error: parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; '),
  };
};
