import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './harness';

interface RawAnswer {
  statusLine: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `request` as raw bytes (no client library would send what Node's parser refuses)
 * and reads until the server closes the connection: it resolves only once the server has
 * closed it (a connection left open would time the test out).
 */
function sendRaw(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    // The server destroys the socket after answering; a reset after the answer is fine.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((line) => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
        }),
      );
      resolve({ statusLine, headers, body });
    });
    socket.write(request);
  });
}

describe('client errors (refused by the HTTP parser, before any route)', () => {
  let h: Harness;
  let port: number;
  beforeAll(async () => {
    h = await createHarness();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    port = (h.app.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await h.close();
  });

  it('answers a request line and headers over the limit with a 431 problem and closes the connection', async () => {
    const res = await sendRaw(
      port,
      `GET /v1/orders?customerId=${'c'.repeat(20_000)} HTTP/1.1\r\nhost: localhost\r\n\r\n`,
    );
    expect(res.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
    const problem = JSON.parse(res.body);
    expect(problem).toMatchObject({
      type: '/problems/headers-too-large',
      title: 'Request Header Fields Too Large',
      status: 431,
      code: 'HEADERS_TOO_LARGE',
      errors: [{ field: 'headers', message: expect.stringContaining('16384 bytes') }],
    });
    expect(problem.requestId).toBe(res.headers['x-request-id']);
    expect(res.headers.connection).toBe('close');
    // The server itself goes on serving.
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
  });

  it('answers a request that is not HTTP with a 400 problem naming what does not parse', async () => {
    const res = await sendRaw(port, 'NOT-A-METHOD / HTTP/1.1\r\nhost: localhost\r\n\r\n');
    expect(res.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(res.body)).toMatchObject({
      title: 'Bad Request',
      status: 400,
      code: 'BAD_REQUEST',
      errors: [{ field: 'method' }],
    });
  });

  it('answers conflicting framing headers with a 400 problem naming content-length', async () => {
    const res = await sendRaw(
      port,
      'POST /v1/events HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}',
    );
    expect(res.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(res.body)).toMatchObject({ status: 400, errors: [{ field: 'headers.content-length' }] });
  });
});
