// The actor services a nemesis run hosts when its workload is `actors`: the example counters (one actor per
// counter, increments) and an order book (submit and cancel by clientOrderId). Members load this module
// by path (the configuration's `services` field), as they would an application's.

import { defineOrdersService } from '../../actors/order-book/service.ts';
import { counterService } from '../../examples/counter-service.ts';

export const NEMESIS_INSTRUMENT = 'NEM';

export const nemesisOrdersService = defineOrdersService({
  instruments: { [NEMESIS_INSTRUMENT]: { referencePrice: 1_000, maxQuantity: 1_000 } },
  replyWith: 'own-reports',
});

export { counterService };

export const services = [counterService, nemesisOrdersService];
