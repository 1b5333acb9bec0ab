import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Decoder } from 'ioredis/built/resp/decoder.js';
import { describe, expect, it } from 'vitest';

/**
 * patches/ioredis@6.0.0.patch rewrites ioredis's RESP3 decoder (private fields as plain
 * properties, about half the CPU per reply). Every reply the engine reads goes through it, so
 * this pins what it decodes: each reply type, whole, split at every byte, and byte by byte, as
 * the unpatched decoder decoded them.
 */
type Decoded = ['reply' | 'push', unknown] | ['error', string, string];

function decode(chunks: readonly Buffer[]): Decoded[] {
  const out: Decoded[] = [];
  const decoder = new Decoder({
    onReply: (value: unknown) => out.push(['reply', value]),
    onErrorReply: (err: Error) => out.push(['error', err.constructor.name, err.message]),
    onPush: (value: unknown) => out.push(['push', value]),
    getTypeMapping: () => ({}),
  });
  for (const chunk of chunks) decoder.write(chunk);
  return out;
}

/** The payload whole, in every two-piece split, and one byte at a time. */
function splits(payload: string): Buffer[][] {
  const bytes = Buffer.from(payload);
  const ways = [[bytes], Array.from(bytes, (b) => Buffer.from([b]))];
  for (let i = 1; i < bytes.length; i++) ways.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return ways;
}

const CASES: [string, Decoded[]][] = [
  ['+OK\r\n', [['reply', 'OK']]],
  ['-ERR wrong type\r\n', [['error', 'SimpleError', 'ERR wrong type']]],
  [':42\r\n', [['reply', 42]]],
  [':-7\r\n', [['reply', -7]]],
  ['$0\r\n\r\n', [['reply', '']]],
  ['$5\r\na\r\nbc\r\n', [['reply', 'a\r\nbc']]],
  ['_\r\n', [['reply', null]]],
  ['#t\r\n', [['reply', true]]],
  [',3.25\r\n', [['reply', 3.25]]],
  [',-1.5e3\r\n', [['reply', -1500]]],
  [',inf\r\n', [['reply', Number.POSITIVE_INFINITY]]],
  ['(12345678901234567890\r\n', [['reply', 12345678901234567890n]]],
  ['=15\r\ntxt:Some string\r\n', [['reply', 'Some string']]],
  ['!11\r\nSYNTAX oops\r\n', [['error', 'BlobError', 'SYNTAX oops']]],
  ['*0\r\n', [['reply', []]]],
  ['*-1\r\n', [['reply', null]]],
  // An XREADGROUP entry and a trimmed one (null fields), as XAUTOCLAIM returns them.
  ['*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n_\r\n', [['reply', [['1-1', ['a', '1']], null]]]],
  ['%2\r\n+name\r\n$2\r\nc1\r\n+pending\r\n:3\r\n', [['reply', { name: 'c1', pending: 3 }]]],
  ['~2\r\n+a\r\n+b\r\n', [['reply', ['a', 'b']]]],
  [
    '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n',
    [['push', [Buffer.from('message'), Buffer.from('ch'), Buffer.from('hi')]]],
  ],
  ['*3\r\n:1\r\n,0.5\r\n*1\r\n%1\r\n+k\r\n#t\r\n', [['reply', [1, 0.5, [{ k: true }]]]]],
];

describe('ioredis RESP3 decoder (patched)', () => {
  it.each(CASES)('decodes %j the same whole, split anywhere, or byte by byte', (payload, expected) => {
    for (const chunks of splits(payload)) expect(decode(chunks)).toEqual(expected);
  });

  it('decodes replies that arrive back to back in one chunk, in order', () => {
    const all = CASES.map(([payload]) => payload).join('');
    expect(decode([Buffer.from(all)])).toEqual(CASES.flatMap(([, expected]) => expected));
  });

  it('is the patched decoder: no private-field helper calls left on the decoding path', () => {
    const file = createRequire(import.meta.url).resolve('ioredis/built/resp/decoder.js');
    expect(readFileSync(file, 'utf8')).not.toContain('__classPrivateFieldGet(this');
  });
});
