/**
 * The queue's address: `redis://HOST:PORT[/DB]` (or `rediss://` for TLS, with an optional
 * `user:password@`), turned into the connection options BullMQ hands to ioredis. Every
 * long-lived connection retries forever (maxRetriesPerRequest: null, as BullMQ requires), so a
 * worker or a waiting `experiment run` rides out a Redis restart; the one-shot reachability
 * check below is what turns a wrong address into a prompt bad-input error instead.
 */
import type { RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';

import { RunInputError } from '../run/errors.js';

export interface QueueAddress {
  /** The URL as the user wrote it, password removed (safe to print and to record in a directory). */
  url: string;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

/** Parses `redis://HOST:PORT[/DB]`; `flag` names the flag (or file) in the error message. */
export function parseQueueUrl(text: string, flag = '--queue'): QueueAddress {
  const expected = 'expected redis://HOST:PORT[/DB]';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RunInputError(`${flag} '${text}': not a URL, ${expected}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new RunInputError(`${flag} '${text}': scheme '${url.protocol.replace(/:$/, '')}', ${expected}`);
  }
  if (url.hostname === '') throw new RunInputError(`${flag} '${text}': no host, ${expected}`);
  const port = url.port === '' ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, '');
  if (!/^\d*$/.test(path) || Number(path) > 65535) {
    throw new RunInputError(`${flag} '${text}': database '${path}' is not a number, ${expected}`);
  }
  if (url.search !== '' || url.hash !== '') throw new RunInputError(`${flag} '${text}': unexpected query or fragment, ${expected}`);
  const shown = new URL(url.href);
  shown.password = '';
  return {
    url: shown.href.replace(/\/$/, ''),
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    db: path === '' ? 0 : Number(path),
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    tls: url.protocol === 'rediss:',
  };
}

/** Options for BullMQ's long-lived connections: reconnect forever, with a capped backoff. */
export function connectionOptions(address: QueueAddress): RedisOptions {
  return {
    host: address.host,
    port: address.port,
    db: address.db,
    ...(address.username !== undefined ? { username: address.username } : {}),
    ...(address.password !== undefined ? { password: address.password } : {}),
    ...(address.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    // Reconnect quickly after a restart (50 ms, 100 ms, ... at most 1 s between tries).
    retryStrategy: (times: number) => Math.min(times * 50, 1000),
  };
}

/**
 * Connects once, PINGs and disconnects; a server that does not answer within timeoutMs is a
 * RunInputError naming the flag and the address (the status line a user needs, not an errno).
 */
export async function checkReachable(address: QueueAddress, flag = '--queue', timeoutMs = 3000): Promise<void> {
  const client = new Redis({ ...connectionOptions(address), maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true, connectTimeout: timeoutMs });
  let lastError: unknown = null;
  client.on('error', (error) => { lastError = error; });
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  } catch (error) {
    const reason = describeConnectionError(lastError ?? error);
    throw new RunInputError(`${flag} ${address.url}: cannot reach Redis (${reason})`);
  } finally {
    client.disconnect();
  }
}

function describeConnectionError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED') return 'connection refused: is redis-server running there?';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unknown host';
  if (code === 'ETIMEDOUT') return 'connection timed out';
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}
