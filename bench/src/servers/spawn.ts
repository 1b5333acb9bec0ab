import { type ChildProcess, fork } from 'node:child_process';
import type { ProcessStats } from '../process-watch';

export interface RunningServer {
  url: string;
  /** Starts a new window for `stats()`. */
  resetStats(): void;
  /** Event-loop delay, GC pauses and CPU time of the server process since `resetStats()` (or its start). */
  stats(): Promise<ProcessStats>;
  stop(): Promise<void>;
}

/** Runs a bench TypeScript module in a child process (under tsx), its output inherited, with an IPC channel. */
export function forkTsx(module: URL, args: readonly string[] = [], execArgv: readonly string[] = []): ChildProcess {
  return fork(module, [...args], {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Starts `http-server.ts` in a child process and resolves once it listens. */
export function startServer(mode: 'api' | 'bare' | 'bare-ap', prefix: string): Promise<RunningServer> {
  // BENCH_SERVER_CPU_PROF=<dir>: each server writes a V8 CPU profile there when it stops.
  const profile = process.env.BENCH_SERVER_CPU_PROF;
  const child = forkTsx(
    new URL('./http-server.ts', import.meta.url),
    [mode, prefix],
    profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [],
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`${mode} server did not start within 30 s`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} server exited (code ${code})`));
    });
    child.once('message', (m: { port?: number; error?: string }) => {
      clearTimeout(timer);
      if (m.error || !m.port) {
        reject(new Error(`${mode} server failed: ${m.error}`));
        return;
      }
      resolve({
        url: `http://127.0.0.1:${m.port}`,
        resetStats: () => child.send('stats-reset'),
        stats: () =>
          new Promise((resolveStats) => {
            const onMessage = (reply: { stats?: ProcessStats }) => {
              if (!reply.stats) return;
              child.off('message', onMessage);
              resolveStats(reply.stats);
            };
            child.on('message', onMessage);
            child.send('stats');
          }),
        stop: async () => {
          if (child.exitCode === null) child.send('stop');
          const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(killer);
        },
      });
    });
  });
}
