import { describe, expect, it } from 'vitest';
import { LazyRequestLogger } from '../src/http/request-logger';
import { type LogLine, recordingLogger } from './harness';

/** A recording parent that counts the children built from it. */
function parentAt(level: string) {
  const lines: LogLine[] = [];
  const parent = recordingLogger(lines, level);
  let children = 0;
  const child = parent.child.bind(parent);
  parent.child = ((...args: Parameters<typeof child>) => {
    children++;
    return child(...args);
  }) as typeof parent.child;
  return { parent, lines, children: () => children };
}

describe('LazyRequestLogger (request.log)', () => {
  it('builds no child for lines below the level, then one child with the request id once a line is written', () => {
    const { parent, lines, children } = parentAt('warn');
    const log = new LazyRequestLogger(parent, { reqId: 'req-1' }, {});
    log.info('dropped');
    log.debug({ a: 1 }, 'dropped too');
    expect(children()).toBe(0);
    expect(log.level).toBe('warn');
    log.error({ code: 'X' }, 'kept');
    log.warn('kept too');
    expect(children()).toBe(1);
    expect(lines.map((l) => [l.reqId, l.level, l.msg, l.code])).toEqual([
      ['req-1', 'error', 'kept', 'X'],
      ['req-1', 'warn', 'kept too', undefined],
    ]);
  });

  it('a child of it carries both sets of bindings', () => {
    const { parent, lines } = parentAt('info');
    new LazyRequestLogger(parent, { reqId: 'req-2' }, {}).child({ step: 'x' }).info('hello');
    expect(lines.map((l) => [l.reqId, l.step, l.msg])).toEqual([['req-2', 'x', 'hello']]);
  });
});
