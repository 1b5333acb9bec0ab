/**
 * Regenerates docs/benchmarks.md and docs/benchmarks.svg from bench/results/latest.json
 * (targets re-evaluated), without running anything: `pnpm --filter @streamfleet/bench render`.
 */
import { readFileSync } from 'node:fs';
import { type Results, targets, writeReports } from './report';

const results = JSON.parse(readFileSync(new URL('../results/latest.json', import.meta.url), 'utf8')) as Results;
writeReports({ ...results, targets: targets(results) });
process.stderr.write('rendered docs/benchmarks.md and docs/benchmarks.svg from bench/results/latest.json\n');
