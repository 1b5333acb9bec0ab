import { fileURLToPath } from 'node:url';
import { type ProcessExit, TestNodeProcess, waitFor } from '@streamfleet/core/testing';

const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

export type Exit = ProcessExit;

/** A real worker process (`node --import tsx src/main.ts`), its output, and its exit. */
export class WorkerProcess extends TestNodeProcess {
  constructor(env: Record<string, string>, entry = 'src/main.ts') {
    super(PACKAGE_DIR, entry, env);
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
}

export function spawnWorker(env: Record<string, string>): WorkerProcess {
  return new WorkerProcess(env);
}
