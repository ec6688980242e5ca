// The real party connections (links.ts's PartyDialer): TCP, speaking the stand-in's line protocol
// (gateway/stand-in.ts): a first line naming party, epoch and gateway, answered OK, then a heartbeat line
// every heartbeatMs for as long as the connection is held. A close is a FIN, done once the remote end's FIN
// is back; with no answer within timeoutMs the socket is reset. The heartbeats stop the moment the close
// begins, so a remote end whose liveness window is shorter than timeoutMs (the stand-in's default 1 s
// against the gateway's 2 s) has ended the connection by then in any case.

import { connect, type Socket } from 'node:net';
import type { PartyDialer, PartyLink } from './links.ts';

export interface TcpDialerOptions {
  readonly gateway: string;
  /** A heartbeat line this often on every connection (ms). */
  readonly heartbeatMs: number;
  /** Opening (connect + the remote's OK) and an orderly close each get this long (ms). */
  readonly timeoutMs: number;
}

const splitEndpoint = (endpoint: string): { host: string; port: number } => {
  const at = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(endpoint.slice(at + 1)) };
};

export const tcpDialer = (options: TcpDialerOptions): PartyDialer => ({
  open(target, { proceed, done, remoteClosed }) {
    const { host, port } = splitEndpoint(target.endpoint);
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    let answer = '';
    let answered = false;
    const fail = (why: string) => {
      clearTimeout(timer);
      socket.destroy();
      if (answered) return; // an error is followed by a close: one answer
      answered = true;
      done(why);
    };
    const timer = setTimeout(
      () => fail(`no OK from ${target.endpoint} within ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    socket.once('connect', () => {
      // The first line makes the connection live at the remote end: not if the gateway gave it up meanwhile.
      if (!proceed()) {
        fail('given up before it was announced');
        return;
      }
      socket.write(
        `${JSON.stringify({ party: target.party, epoch: target.epoch, gateway: options.gateway })}\n`,
      );
    });
    const onError = (error: Error) => fail(`${target.endpoint}: ${error.message}`);
    const onClose = () => fail(`${target.endpoint} closed the connection before OK`);
    const onData = (chunk: string) => {
      answer += chunk;
      const newline = answer.indexOf('\n');
      if (newline < 0) {
        if (answer.length > 512) fail(`${target.endpoint} answered a line longer than 512 bytes`);
        return;
      }
      socket.off('data', onData);
      const line = answer.slice(0, newline);
      if (line !== 'OK') {
        fail(`${target.endpoint} refused: ${line.slice(0, 200)}`);
        return;
      }
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('close', onClose);
      answered = true;
      done(held(socket, options, remoteClosed));
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
  },
});

/** An accepted connection: heartbeats until it is closed from either end. */
const held = (socket: Socket, options: TcpDialerOptions, remoteClosed: () => void): PartyLink => {
  let ours = false;
  const heartbeat = setInterval(() => socket.write('HB\n'), options.heartbeatMs);
  socket.on('error', () => {}); // a later reset is a close
  socket.once('close', () => {
    clearInterval(heartbeat);
    if (!ours) remoteClosed();
  });
  return {
    close(done) {
      ours = true;
      clearInterval(heartbeat);
      if (socket.destroyed) {
        done();
        return;
      }
      // An orderly close: FIN, then wait until the remote end's FIN is back (it has seen ours), or time out.
      const timer = setTimeout(() => {
        socket.destroy();
        done();
      }, options.timeoutMs);
      socket.once('close', () => {
        clearTimeout(timer);
        done();
      });
      socket.end();
    },
  };
};
