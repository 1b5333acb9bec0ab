import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a `WebhookRecorder` received. */
export interface RecordedWebhook<Body> {
  /** Its `Idempotency-Key` header. */
  key: string | undefined;
  /** Its JSON body. */
  body: Body;
}

export interface WebhookRecorder<Body = Record<string, unknown>> {
  /** Where to send the webhooks: `http://127.0.0.1:<port>/hook`. */
  readonly url: string;
  /** Every request received so far, in arrival order (failed deliveries included). */
  readonly received: RecordedWebhook<Body>[];
  /** The status answered from now on; set a 5xx to make deliveries fail. Default 204. */
  status: number;
  close(): Promise<void>;
}

/** A local HTTP server standing in for a webhook receiver: records each request, answers `status`. */
export async function startWebhookRecorder<Body = Record<string, unknown>>(): Promise<WebhookRecorder<Body>> {
  const received: RecordedWebhook<Body>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push({ key: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(body) });
      res.writeHead(recorder.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const recorder: WebhookRecorder<Body> = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    status: 204,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return recorder;
}
