import { describe, expect, it } from 'vitest';
import { GroupRegistry, type GroupSet, UnknownGroupError } from './registry';

const set = (name: string, groups: string[], includedByDefault = true): GroupSet => ({
  name,
  groups,
  includedByDefault,
  create: () => [],
});

describe('GroupRegistry', () => {
  const registry = new GroupRegistry().add(set('domain', ['a', 'b'])).add(set('test', ['t1', 't2'], false));

  it('selects every default set when WORKER_GROUPS is unset', () => {
    const chosen = registry.select(undefined);
    expect(chosen.map((c) => [c.set.name, [...c.groups]])).toEqual([['domain', ['a', 'b']]]);
  });

  it('selects nothing for an empty list: only undefined means every group', () => {
    expect(registry.select([])).toEqual([]);
  });

  it('selects named groups across sets, including non-default ones', () => {
    const chosen = registry.select(['b', 't2']);
    expect(chosen.map((c) => [c.set.name, [...c.groups]])).toEqual([
      ['domain', ['b']],
      ['test', ['t2']],
    ]);
  });

  it('rejects unknown names, listing the known ones', () => {
    expect(() => registry.select(['a', 'zzz'])).toThrow(UnknownGroupError);
    expect(() => registry.select(['zzz'])).toThrow(/WORKER_GROUPS: unknown group\(s\) zzz; known groups: a, b, t1, t2/);
  });
});
