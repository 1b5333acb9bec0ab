import { type ChildProcess, spawn } from 'node:child_process';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A real Node process running a package's TypeScript entry as the start scripts do
 * (`node --import tsx <entry>`, so signals reach it, not a wrapper), with its stdout lines,
 * its stderr and its exit. For specs about process behaviour: signals, exit codes, logs.
 */
export class TestNodeProcess {
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  stderr = '';
  /**
   * Resolves once the process has exited and its stdout and stderr have closed ('close', not
   * 'exit': at 'exit' the last lines it wrote, such as 'shutdown complete', may still be in the
   * pipe), so that `stdout`, `logs()` and `stderr` are complete. A child of it that inherited
   * the pipes holds this open until it exits too.
   */
  readonly exited: Promise<ProcessExit>;
  /** Set at 'exit': the process is gone, whatever is left unread in its pipes. */
  exit: ProcessExit | undefined;
  private readonly gone: Promise<void>;
  private buffer = '';

  constructor(packageDir: string, entry: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: packageDir,
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
    this.gone = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The stdout lines that are JSON (log lines), parsed. */
  logs(): Record<string, unknown>[] {
    return this.stdout.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exit) this.child.kill(signal);
  }

  /**
   * Kills the process (SIGKILL) if it still runs and waits for it to be gone (not for its
   * pipes: an orphaned child of it may hold them); for afterEach.
   */
  async kill(): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGKILL');
    await this.gone;
  }
}
