/** Prints the hottest functions (self time) of a .cpuprofile: `tsx src/profile-summary.ts file.cpuprofile`. */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export function summarise(file: string | URL): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const url = n.callFrame.url
      .replace(/^.*node_modules\/\.pnpm\/([^/]+)\/.*?([^/]+)$/, '$1:$2')
      .replace(/^.*\/work\/main\//, '');
    const k = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    byFn.set(k, (byFn.get(k) ?? 0) + us);
  }
  const byPkg = new Map<string, number>();
  for (const [k, us] of byFn) {
    const m = /^\S+ (\S+?)(?::[^:]*)?:\d+$/.exec(k);
    const pkg = m?.[1]?.split(':')[0]?.split('/').slice(0, 3).join('/') ?? '?';
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(
        ([k, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`,
      )
      .join('\n');
  return `total ${(total / 1000).toFixed(0)} ms\n\n-- by function (self) --\n${top(byFn, 40)}\n\n-- by file/package --\n${top(byPkg, 25)}`;
}

if (process.argv[1]?.endsWith('profile-summary.ts') && process.argv[2]) console.log(summarise(process.argv[2]));
