// `chorus gateway --config FILE`: one gateway process. It logs one JSON line per event (pino, stdout): its
// session, each order, each connection opened or closed and each report. SIGINT or SIGTERM drains it (its
// parties move to other gateways, each closed in order and reported CLOSED), closes its session, exits 0.

import pino from 'pino';
import { socketTransport } from '../runtime/client/client-transport.ts';
import { GatewayConfigError, loadGatewayConfig } from './config.ts';
import { Gateway } from './gateway.ts';
import { tcpDialer } from './tcp-dialer.ts';

export const runGatewayProcess = async (configFile: string, logLevel = 'info'): Promise<number> => {
  let config: ReturnType<typeof loadGatewayConfig>;
  try {
    config = loadGatewayConfig(configFile);
  } catch (error) {
    if (error instanceof GatewayConfigError) {
      process.stderr.write(`chorus gateway: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = pino({ level: logLevel, base: { gateway: config.name } });
  const gateway = Gateway.start(config, {
    transport: socketTransport,
    dialer: tcpDialer({
      gateway: config.name,
      heartbeatMs: config.heartbeatMs,
      timeoutMs: config.connectionTimeoutMs,
    }),
    log,
  });
  log.info(
    {
      endpoints: config.endpoints,
      capabilities: config.capabilities,
      labels: config.labels,
      capacity: config.capacity,
      leaseMs: config.leaseMs,
      syncIntervalMs: config.syncIntervalMs,
      closeOnDisconnectMs: config.closeOnDisconnectMs,
      dropOnDisconnect: config.dropOnDisconnect,
    },
    'gateway started',
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: closing every connection');
      void gateway.stop().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  log.info('gateway stopped');
  return 0;
};
