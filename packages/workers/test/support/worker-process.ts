import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@streamfleet/core/testing';

const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A real worker process (`node --import tsx src/main.ts`), its output, and its exit. */
export class WorkerProcess {
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  private buffer = '';

  constructor(env: Record<string, string>, entry = 'src/main.ts') {
    // `node --import tsx` rather than the tsx CLI: the CLI runs the script in a child process,
    // so a SIGKILL would hit the wrapper and leave the real worker running.
    this.child = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: PACKAGE_DIR,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffer += chunk;
      const lines = this.buffer.split('\n');
      this.buffer = lines.pop() ?? '';
      this.stdout.push(...lines);
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Parsed JSON log lines. */
  logs(): Record<string, unknown>[] {
    return this.stdout.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  /** The bound health port, from the "health and metrics on port" log line. */
  async port(timeoutMs = 45_000): Promise<number> {
    return waitFor(
      () => {
        if (this.exit) throw new Error(`worker exited early (${JSON.stringify(this.exit)}): ${this.stderr}`);
        const line = this.logs().find((l) => typeof l.port === 'number' && l.msg !== undefined);
        return line ? (line.port as number) : undefined;
      },
      { timeoutMs, intervalMs: 50, message: `worker ${this.pid} to log its port` },
    );
  }

  /** Waits until `/readyz` answers 200. */
  async ready(timeoutMs = 45_000): Promise<number> {
    const port = await this.port(timeoutMs);
    await waitFor(
      async () => {
        if (this.exit) throw new Error(`worker exited early (${JSON.stringify(this.exit)}): ${this.stderr}`);
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 200;
      },
      { timeoutMs, intervalMs: 50, message: `worker ${this.pid} to be ready` },
    );
    return port;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** Kills the process (SIGKILL) if it still runs; for afterEach. */
  async kill(): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export function spawnWorker(env: Record<string, string>): WorkerProcess {
  return new WorkerProcess(env);
}
