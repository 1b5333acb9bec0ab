import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SimulatedPaymentGateway } from '@streamfleet/core';

/** A charge the gateway made: one per distinct idempotency key that succeeded. */
export interface GatewayCharge {
  chargeId: string;
  orderId: string;
  amount: number;
  idempotencyKey: string;
}

/**
 * `SimulatedPaymentGateway` over HTTP for worker processes (`PAYMENT_GATEWAY_URL`), shared by
 * every process of a test so that "charged twice" is visible across them (each process's
 * built-in simulator only sees its own calls). It speaks `HttpPaymentGateway`'s protocol;
 * the simulator's rules decide (the same `Idempotency-Key` returns the first outcome; a
 * customer id starting with "decline" is declined, 402), with no amount limit.
 */
export class PaymentGatewayServer {
  readonly charges: GatewayCharge[] = [];
  readonly refunds: Array<{ refundId: string; chargeId: string; idempotencyKey: string }> = [];
  /** Requests received, repeats with a known key included. */
  requests = 0;
  private readonly simulator = new SimulatedPaymentGateway({ declineAbove: Number.POSITIVE_INFINITY });
  private readonly server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => {
      raw += chunk;
    });
    req.on('end', async () => {
      this.requests += 1;
      const key = String(req.headers['idempotency-key'] ?? '');
      const reply = await this.handle(req.url ?? '', key, JSON.parse(raw || '{}'));
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

  private async handle(path: string, key: string, body: Record<string, unknown>) {
    if (!key) return { status: 400, body: { error: 'Idempotency-Key required' } };
    if (path === '/charges') {
      const orderId = String(body.orderId);
      const amount = Number(body.amount);
      const result = await this.simulator.charge({
        orderId,
        customerId: String(body.customerId),
        amount,
        currency: String(body.currency),
        idempotencyKey: key,
      });
      if (result.status === 'declined') return { status: 402, body: { reason: result.reason } };
      // A repeated key answers the first charge; only a new one is a charge made.
      if (!this.charges.some((c) => c.chargeId === result.chargeId)) {
        this.charges.push({ chargeId: result.chargeId, orderId, amount, idempotencyKey: key });
      }
      return { status: 201, body: { chargeId: result.chargeId, orderId, amount, status: 'succeeded' } };
    }
    if (path === '/refunds') {
      const chargeId = String(body.chargeId);
      const { refundId } = await this.simulator.refund({ chargeId, amount: Number(body.amount), idempotencyKey: key });
      if (!this.refunds.some((r) => r.refundId === refundId))
        this.refunds.push({ refundId, chargeId, idempotencyKey: key });
      return { status: 201, body: { refundId, chargeId } };
    }
    return { status: 404, body: { error: 'not found' } };
  }
}
