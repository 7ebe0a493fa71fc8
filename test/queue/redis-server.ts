/**
 * A real redis-server for the queue tests (Debian's redis-server, installed by .ci/run): its own
 * free port on 127.0.0.1 and its own temporary directory, append-only file fsync'ed on every
 * write so that a server killed with SIGKILL and started again on the same port and directory
 * comes back with every job it had acknowledged.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_HOST = '127.0.0.1';

/** A port nobody listens on right now (the kernel's choice for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, REDIS_HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** True once a PING on host:port is answered +PONG within timeoutMs. */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: REDIS_HOST, port });
    let answer = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) {
        clearTimeout(timer);
        finish(answer.startsWith('+PONG'));
      }
    });
    socket.on('error', () => {
      clearTimeout(timer);
      finish(false);
    });
  });
}

export type AppendFsync = 'always' | 'everysec';

export class RedisServer {
  private process: ChildProcess | null = null;
  private output = '';

  private constructor(readonly port: number, readonly dir: string, readonly appendFsync: AppendFsync) {}

  /**
   * Starts a server on a free port with a fresh temporary directory and waits until it
   * answers. appendFsync 'always' (the tests' default) loses nothing on SIGKILL; 'everysec'
   * is Redis's own default, what a production server runs (the benchmark's choice).
   */
  static async start(options: { appendFsync?: AppendFsync } = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), 'pcdarts-redis-'));
    // Another process may take the free port between the probe and the bind: try a few.
    for (let attempt = 0; ; attempt += 1) {
      const server = new RedisServer(await freePort(), dir, options.appendFsync ?? 'always');
      try {
        await server.launch();
        return server;
      } catch (error) {
        if (attempt >= 4) {
          rmSync(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  }

  get url(): string {
    return `redis://${REDIS_HOST}:${this.port}`;
  }

  /** The server's process id (null while stopped). */
  get pid(): number | null {
    return this.process?.pid ?? null;
  }

  get running(): boolean {
    return this.process !== null;
  }

  private async launch(): Promise<void> {
    this.output = '';
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', REDIS_HOST, '--dir', this.dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', this.appendFsync,
      '--daemonize', 'no', '--logfile', '', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => { this.output += chunk; });
    child.stderr!.on('data', (chunk) => { this.output += chunk; });
    this.process = child;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => { if (this.process === child) this.process = null; });
    const deadline = Date.now() + 10_000;
    while (!(await ping(this.port))) {
      if (this.process !== child || Date.now() > deadline) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`redis-server on port ${this.port} did not answer PING: ${this.output.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Stops the server (SIGTERM: it flushes and exits; SIGKILL: it dies at once) and waits for it. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    if (child === null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.process = null;
  }

  /** Stops the server and starts it again on the same port and directory (same data). */
  async restart(signal: NodeJS.Signals = 'SIGKILL', downMs = 0): Promise<void> {
    await this.stop(signal);
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.launch();
  }

  /** Stops the server and removes its directory. */
  async close(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
