import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startTestGateway } from './helpers.js';

/** Opens a keep-alive connection, asks for /health once and resolves with the socket once the answer is in. */
async function idleConnectionAfterOneRequest(port: number): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = connect(port, '127.0.0.1');
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  await new Promise<void>((resolve, reject) => {
    let answer = '';
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      // A whole JSON body after the headers: the connection is idle from here on.
      if (/\r\n\r\n\{.*\}$/s.test(answer)) resolve();
    });
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  });
  return { socket, closed };
}

describe('HTTP keep-alive', () => {
  it('reads HTTP_KEEP_ALIVE_TIMEOUT in seconds, 65 by default (above the 60 s idle timeout of common load balancers), and refuses nonsense', () => {
    expect(loadConfig({}).httpKeepAliveTimeoutMs).toBe(65_000);
    expect(loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT: '120' }).httpKeepAliveTimeoutMs).toBe(120_000);
    expect(() => loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT: '0' })).toThrow(/HTTP_KEEP_ALIVE_TIMEOUT: must be at least 1 second/);
    expect(() => loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT: 'soon' })).toThrow(/HTTP_KEEP_ALIVE_TIMEOUT: must be a number/);
  });

  it('closes an idle connection after HTTP_KEEP_ALIVE_TIMEOUT', async () => {
    const t = await startTestGateway({ env: { HTTP_KEEP_ALIVE_TIMEOUT: '1' } });
    try {
      const idleSince = performance.now();
      const { closed } = await idleConnectionAfterOneRequest(t.gateway.port);
      const after = (await closed) - idleSince;
      expect(after).toBeGreaterThanOrEqual(900);
      // Well before Node's own 5 s default would have closed it.
      expect(after).toBeLessThan(4500);
    } finally {
      await t.close();
    }
  });

  it('keeps an idle connection open past Node\'s 5 s default with the default timeout', { tags: ['process'], timeout: 30_000 }, async () => {
    const t = await startTestGateway();
    try {
      const { socket, closed } = await idleConnectionAfterOneRequest(t.gateway.port);
      const state = await Promise.race([closed.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('open'), 6000))]);
      expect(state).toBe('open');
      socket.destroy();
    } finally {
      await t.close();
    }
  });
});
