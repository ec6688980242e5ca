// The admin channel's frames (cluster tool ↔ member, over the member's Unix socket `admin.sock`): one
// REQUEST naming a command, one RESPONSE. A request is checked before the member acts on it: anything
// else is answered with the reason and acts on nothing.

export const AdminKind = {
  /** tool → member: { command, to? }. */
  REQUEST: 30,
  /** member → tool: { ok: true, result } or { ok: false, error }. */
  RESPONSE: 31,
} as const;

export const ADMIN_COMMANDS = ['status', 'snapshot', 'suspend', 'resume', 'transfer-leadership'] as const;

export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

export interface AdminRequest {
  readonly command: AdminCommand;
  /** For transfer-leadership: the member to hand over to (default: the most up-to-date follower). */
  readonly to?: number;
}

export type AdminResponse =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: string };

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

/** A REQUEST body as an AdminRequest, or the reason it is not one. */
export const parseAdminRequest = (body: unknown): AdminRequest | string => {
  if (!isRecord(body)) return 'an admin request must be an object { command, to? }';
  const { command, to } = body;
  if (!ADMIN_COMMANDS.includes(command as AdminCommand)) {
    return `unknown admin command ${JSON.stringify(command)}: one of ${ADMIN_COMMANDS.join(', ')}`;
  }
  for (const key of Object.keys(body)) {
    if (key !== 'command' && key !== 'to') return `unexpected field "${key}" in an admin request`;
  }
  if (to === undefined || to === null) return { command: command as AdminCommand };
  if (command !== 'transfer-leadership') return `"to" applies to transfer-leadership only, not ${command}`;
  if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 0) {
    return `"to" must be a member id (a whole number from 0), got ${JSON.stringify(to)}`;
  }
  return { command: 'transfer-leadership', to };
};

/** A RESPONSE body as an AdminResponse, or the reason it is not one. */
export const parseAdminResponse = (body: unknown): AdminResponse | string => {
  if (!isRecord(body) || typeof body.ok !== 'boolean')
    return 'an admin response must be an object { ok, ... }';
  if (body.ok) return { ok: true, result: body.result };
  return typeof body.error === 'string'
    ? { ok: false, error: body.error }
    : 'a refused admin response names no error';
};
