// What the gateway registry (the cluster's `gateways` service) says to a gateway, checked before the
// gateway acts on it: pushed OPEN / CLOSE orders and the duty lists REGISTER and SYNC answer with. The
// cluster is outside the gateway's process, so a message that does not fit is refused with a reason and
// never opens or closes anything. Also the bodies of the commands the gateway and the operator send.

import { pack } from 'msgpackr';
import { z } from 'zod';

/** The registry service's name in the cluster. */
export const REGISTRY_SERVICE = 'gateways';

const name = z.string().min(1).max(200);
const epoch = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** A party's endpoint: host:port (IPv6 in brackets). */
const endpoint = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):\d{1,5}$/, 'endpoint must be host:port');

export const openOrder = z.object({ type: z.literal('OPEN'), party: name, epoch, endpoint });
export const closeOrder = z.object({ type: z.literal('CLOSE'), party: name, epoch });
export const order = z.discriminatedUnion('type', [openOrder, closeOrder]);
export type Order = z.infer<typeof order>;

export const duty = z.object({
  party: name,
  epoch,
  endpoint: endpoint.optional(),
  action: z.enum(['OPEN', 'CLOSE']),
});
export type Duty = z.infer<typeof duty>;

/** REGISTER answers `{ gateway, epochs }`; SYNC the duty list, bare or as `{ epochs }`. */
export const dutyList = z.union([
  z.array(duty),
  z.object({ epochs: z.array(duty) }).transform((v) => v.epochs),
]);

const problems = (error: z.ZodError): string =>
  error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');

/** A pushed message, checked: the order, or why it was refused. */
export const parseOrder = (message: unknown): { ok: true; order: Order } | { ok: false; problem: string } => {
  const parsed = order.safeParse(message);
  return parsed.success ? { ok: true, order: parsed.data } : { ok: false, problem: problems(parsed.error) };
};

/** A REGISTER or SYNC answer's duties, checked (an OPEN duty must name its endpoint). */
export const parseDuties = (
  value: unknown,
): { ok: true; duties: Duty[] } | { ok: false; problem: string } => {
  const parsed = dutyList.safeParse(value);
  if (!parsed.success) return { ok: false, problem: problems(parsed.error) };
  const missing = parsed.data.find((d) => d.action === 'OPEN' && d.endpoint === undefined);
  if (missing) return { ok: false, problem: `party ${missing.party}: an OPEN duty needs an endpoint` };
  return { ok: true, duties: parsed.data };
};

/** The SESSION_MESSAGE body of a registry command: `[service, command]`, as defineService's commandBody. */
export const registryCommand = (command: { readonly type: string } & Record<string, unknown>): Uint8Array =>
  pack([REGISTRY_SERVICE, command]);
