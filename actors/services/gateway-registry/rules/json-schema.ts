// The rules document's JSON Schema, generated from the zod schema (what a document may contain, as
// written: defaults optional). docs/gateway-rules.schema.json is this, written out; a spec checks it.

import { z } from 'zod';
import { RulesSchema } from './schema.ts';

export const RULES_JSON_SCHEMA: object = {
  ...z.toJSONSchema(RulesSchema, { io: 'input', target: 'draft-2020-12' }),
  title: 'Chorus gateway balancing rules',
};
