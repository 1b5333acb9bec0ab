import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

/** What `watchProcess` reports of the process it runs in, since its start or last `reset()`. */
export interface ProcessStats {
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
  /** CPU time of the process (user + system), in microseconds. */
  cpuUs: number;
}

/**
 * Event-loop delay, GC pauses and CPU time of this process. The bench process and each HTTP
 * server watch themselves the same way, so their figures can be set side by side.
 */
export function watchProcess(): { reset(): void; stats(): ProcessStats; stop(): void } {
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  let gc = { count: 0, totalMs: 0, maxMs: 0 };
  let cpuSince = process.cpuUsage();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    reset: () => {
      loopDelay.reset();
      gc = { count: 0, totalMs: 0, maxMs: 0 };
      cpuSince = process.cpuUsage();
    },
    stats: () => {
      const cpu = process.cpuUsage(cpuSince);
      return {
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        loopDelayMaxMs: loopDelay.max / 1e6,
        gcCount: gc.count,
        gcTotalMs: gc.totalMs,
        gcMaxMs: gc.maxMs,
        cpuUs: cpu.user + cpu.system,
      };
    },
    stop: () => {
      loopDelay.disable();
      observer.disconnect();
    },
  };
}

/** `event-loop delay p99 …, max …; GC n pauses, … in all, longest …`. */
export function describeStalls(s: ProcessStats): string {
  return (
    `event-loop delay p99 ${s.loopDelayP99Ms.toFixed(1)} ms, max ${s.loopDelayMaxMs.toFixed(1)} ms; ` +
    `GC ${s.gcCount} pauses, ${s.gcTotalMs.toFixed(0)} ms in all, longest ${s.gcMaxMs.toFixed(1)} ms`
  );
}
