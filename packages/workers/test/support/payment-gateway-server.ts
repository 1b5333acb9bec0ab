import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A charge the gateway made: one per distinct idempotency key that succeeded. */
export interface GatewayCharge {
  chargeId: string;
  orderId: string;
  amount: number;
  idempotencyKey: string;
}

/**
 * A card processor over HTTP for worker processes (`PAYMENT_GATEWAY_URL`), shared by every
 * process of a test so that "charged twice" is visible across them (each process's built-in
 * simulator only sees its own calls). It speaks `HttpPaymentGateway`'s protocol and behaves
 * like a real processor: the same `Idempotency-Key` returns the first outcome; a customer id
 * starting with "decline" is declined (402).
 */
export class PaymentGatewayServer {
  readonly charges: GatewayCharge[] = [];
  readonly refunds: Array<{ refundId: string; chargeId: string; idempotencyKey: string }> = [];
  /** Requests received, repeats with a known key included. */
  requests = 0;
  private readonly byKey = new Map<string, { status: number; body: Record<string, unknown> }>();
  private readonly server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => {
      raw += chunk;
    });
    req.on('end', () => {
      this.requests += 1;
      const key = String(req.headers['idempotency-key'] ?? '');
      const reply = this.byKey.get(`${req.url}:${key}`) ?? this.handle(req.url ?? '', key, JSON.parse(raw || '{}'));
      this.byKey.set(`${req.url}:${key}`, reply);
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  });

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  /** Successful charges of one order (more than one = charged twice). */
  chargesOf(orderId: string): GatewayCharge[] {
    return this.charges.filter((c) => c.orderId === orderId);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(path: string, key: string, body: Record<string, unknown>) {
    if (!key) return { status: 400, body: { error: 'Idempotency-Key required' } };
    if (path === '/charges') {
      if (String(body.customerId).startsWith('decline')) return { status: 402, body: { reason: 'card_declined' } };
      const charge = { chargeId: `ch_${randomUUID()}`, orderId: String(body.orderId), amount: Number(body.amount) };
      this.charges.push({ ...charge, idempotencyKey: key });
      return { status: 201, body: { ...charge, status: 'succeeded' } };
    }
    if (path === '/refunds') {
      const refund = { refundId: `re_${randomUUID()}`, chargeId: String(body.chargeId) };
      this.refunds.push({ ...refund, idempotencyKey: key });
      return { status: 201, body: refund };
    }
    return { status: 404, body: { error: 'not found' } };
  }
}
