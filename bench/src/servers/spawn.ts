import { type ChildProcess, fork } from 'node:child_process';

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

/** Starts `http-server.ts` in a child process and resolves once it listens. */
export function startServer(mode: 'api' | 'bare', prefix: string): Promise<RunningServer> {
  const child: ChildProcess = fork(new URL('./http-server.ts', import.meta.url), [mode, prefix], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
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
