import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, NonRetryableError } from '../errors/index';
import { createEvent } from '../events/envelope';
import { decideCancel, decideCreate, foldOrder } from '../orders/order';
import type { Sql } from '../store/client';
import { appendToStream } from '../store/event-store';
import { handlerContext, type MigratedTestDatabase, migratedTestDatabase, waitFor } from '../testing/index';
import {
  type ChargeRequest,
  HttpPaymentGateway,
  PaymentGatewayUnavailableError,
  SimulatedPaymentGateway,
} from './payment-gateway';
import { createPaymentGroup, getPayment } from './payment-service';

const ctx = handlerContext('payment');

describe('HttpPaymentGateway', () => {
  let server: Server;
  let base: string;
  const seen: Array<{ url: string | undefined; key: string | undefined }> = [];
  let next: (req: IncomingMessage) => {
    status: number;
    body?: unknown;
    hang?: boolean;
    /** Send the headers and half the body, then stall ('stall') or drop the connection ('cut'). */
    partial?: 'stall' | 'cut';
  } = () => ({ status: 200 });

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push({ url: req.url, key: req.headers['idempotency-key'] as string | undefined });
        const answer = next(req);
        if (answer.hang) return;
        if (answer.partial) {
          res.writeHead(answer.status, { 'content-type': 'application/json' }).write('{"id":"ch_');
          if (answer.partial === 'cut') setImmediate(() => res.destroy());
          return;
        }
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body ?? {}));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const charge: ChargeRequest = {
    orderId: 'o1',
    customerId: 'c1',
    amount: 100,
    currency: 'EUR',
    idempotencyKey: 'evt-1',
  };

  it('charges with an Idempotency-Key and reads the charge id', async () => {
    next = () => ({ status: 201, body: { id: 'ch_1', status: 'succeeded' } });
    const gw = new HttpPaymentGateway({ baseUrl: `${base}/` });
    expect(await gw.charge(charge)).toEqual({ status: 'succeeded', chargeId: 'ch_1' });
    expect(seen.at(-1)).toEqual({ url: '/charges', key: 'evt-1' });
  });

  it('a 402 or a declined status is a decline, not an error', async () => {
    const gw = new HttpPaymentGateway({ baseUrl: base });
    next = () => ({ status: 402, body: { reason: 'insufficient_funds' } });
    expect(await gw.charge(charge)).toEqual({ status: 'declined', reason: 'insufficient_funds' });
    next = () => ({ status: 200, body: { status: 'declined' } });
    expect(await gw.charge(charge)).toEqual({ status: 'declined', reason: 'card_declined' });
    // Whatever reason it gives, payment.failed can carry it (non-empty, at most 200 characters).
    next = () => ({ status: 402, body: { reason: '  ' } });
    expect(await gw.charge(charge)).toEqual({ status: 'declined', reason: 'card_declined' });
    next = () => ({ status: 402, body: { reason: 'x'.repeat(5000) } });
    expect(await gw.charge(charge)).toEqual({ status: 'declined', reason: 'x'.repeat(200) });
    // An empty charge id is no charge id.
    next = () => ({ status: 201, body: { id: '' } });
    await expect(gw.charge(charge)).rejects.toBeInstanceOf(NonRetryableError);
  });

  /** The retryable failure a call ends in; fails the test if the call did not fail that way. */
  async function unavailable(call: Promise<unknown>): Promise<PaymentGatewayUnavailableError> {
    const err = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PaymentGatewayUnavailableError);
    return err as PaymentGatewayUnavailableError;
  }

  it('5xx and timeouts are retryable; other 4xx are not', async () => {
    next = () => ({ status: 503 });
    await unavailable(new HttpPaymentGateway({ baseUrl: base }).charge(charge));
    next = () => ({ status: 200, hang: true });
    await unavailable(new HttpPaymentGateway({ baseUrl: base, timeoutMs: 100 }).charge(charge));
    next = () => ({ status: 400, body: { error: 'bad amount' } });
    await expect(new HttpPaymentGateway({ baseUrl: base }).charge(charge)).rejects.toBeInstanceOf(NonRetryableError);
  });

  it('says which failures certainly charged nothing: refused, 429 and 503, not 500, 502, 504 or a timeout', async () => {
    for (const [status, nothingDone] of [
      [429, true],
      [503, true],
      [500, false],
      [502, false],
      [504, false],
    ] as const) {
      next = () => ({ status });
      expect(
        (await unavailable(new HttpPaymentGateway({ baseUrl: base }).charge(charge))).nothingDone,
        `${status}`,
      ).toBe(nothingDone);
    }
    next = () => ({ status: 200, hang: true });
    expect(
      (await unavailable(new HttpPaymentGateway({ baseUrl: base, timeoutMs: 100 }).charge(charge))).nothingDone,
    ).toBe(false);
    // A port nothing listens on: the connection is refused before anything is sent.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await unavailable(new HttpPaymentGateway({ baseUrl: `http://127.0.0.1:${port}` }).charge(charge));
    expect(refused.nothingDone).toBe(true);
  });

  it("a cancelled call (the handler's signal, aborted at its timeout) is retryable", async () => {
    next = () => ({ status: 200, hang: true });
    const cancel = new AbortController();
    const charging = new HttpPaymentGateway({ baseUrl: base, timeoutMs: 60_000 }).charge({
      ...charge,
      signal: cancel.signal,
    });
    cancel.abort(new Error('handler timed out'));
    await expect(charging).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
  });

  it('a 2xx whose body stalls or is cut off is retryable: the charge may have happened', async () => {
    for (const partial of ['stall', 'cut'] as const) {
      next = () => ({ status: 200, partial });
      const err = await unavailable(new HttpPaymentGateway({ baseUrl: base, timeoutMs: 200 }).charge(charge));
      expect(err.nothingDone).toBe(false);
    }
  });

  it('refunds with an Idempotency-Key', async () => {
    next = () => ({ status: 200, body: { id: 're_1' } });
    expect(
      await new HttpPaymentGateway({ baseUrl: base }).refund({ chargeId: 'ch_1', amount: 100, idempotencyKey: 'k' }),
    ).toEqual({
      refundId: 're_1',
    });
    expect(seen.at(-1)).toEqual({ url: '/refunds', key: 'k' });
  });
});

describe('SimulatedPaymentGateway', () => {
  const request = (over: Partial<ChargeRequest> = {}): ChargeRequest => ({
    orderId: randomUUID(),
    customerId: 'cust-1',
    amount: 500,
    currency: 'EUR',
    idempotencyKey: randomUUID(),
    ...over,
  });

  it('declines above 100000 cents or for a customer id starting with "decline" (the documented rule)', async () => {
    const gw = new SimulatedPaymentGateway();
    expect(await gw.charge(request({ amount: 100_000 }))).toMatchObject({ status: 'succeeded' });
    expect(await gw.charge(request({ amount: 100_001 }))).toEqual({ status: 'declined', reason: 'amount_limit' });
    expect(await gw.charge(request({ customerId: 'decline-42' }))).toEqual({
      status: 'declined',
      reason: 'card_declined',
    });
    expect(await gw.charge(request({ customerId: 'cust-decline' }))).toMatchObject({ status: 'succeeded' });
    expect(gw.chargeCount).toBe(2);
    const lowLimit = new SimulatedPaymentGateway({ declineAbove: 1000 });
    expect(await lowLimit.charge(request({ amount: 1001 }))).toMatchObject({ status: 'declined' });
  });

  it('fails transiently at the configured rate', async () => {
    const draws = [0.05, 0.5, 0.2, 0.9];
    let i = 0;
    const gw = new SimulatedPaymentGateway({
      transientFailureRate: 0.25,
      random: () => draws[i++ % draws.length] ?? 1,
    });
    const outcomes: string[] = [];
    for (let n = 0; n < 4; n++) {
      outcomes.push(
        await gw.charge(request()).then(
          (r) => r.status,
          (err: unknown) => (err instanceof PaymentGatewayUnavailableError ? 'transient' : 'other'),
        ),
      );
    }
    expect(outcomes).toEqual(['transient', 'succeeded', 'transient', 'succeeded']);
    expect(gw.calls).toBe(4);
    expect(gw.chargeCount).toBe(2);

    const always = new SimulatedPaymentGateway({ transientFailureRate: 1 });
    await expect(always.charge(request())).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    await expect(always.refund({ chargeId: 'ch_1', amount: 1, idempotencyKey: 'k' })).rejects.toBeInstanceOf(
      PaymentGatewayUnavailableError,
    );
    expect(always.chargeCount).toBe(0);
  });
});

describe('payment group', () => {
  let db: MigratedTestDatabase;
  let sql: Sql;

  beforeAll(async () => {
    db = await migratedTestDatabase('sf_payment', { max: 5 });
    sql = db.sql;
  });

  afterAll(async () => {
    await db?.close();
  });

  function reserved(orderId: string, total = 500) {
    return createEvent({
      type: 'inventory.reserved',
      aggregateId: orderId,
      data: { orderId, customerId: 'c1', items: [{ sku: 'A', quantity: 1 }], total, currency: 'EUR' },
    });
  }

  function cancelled(orderId: string) {
    return createEvent({
      type: 'order.cancelled',
      aggregateId: orderId,
      aggregateVersion: 2,
      data: { orderId, customerId: 'c1', reason: 'r', cancelledBy: 'customer', previousStatus: 'PENDING' },
    });
  }

  it('a cancellation seen first voids the order: a later charge request does nothing', async () => {
    const gateway = new SimulatedPaymentGateway();
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    await group.handler(cancelled(orderId), ctx);
    await group.handler(reserved(orderId), ctx);
    expect(gateway.calls).toBe(0);
    expect((await getPayment(sql, orderId))?.status).toBe('void');
  });

  it('a cancellation landing while the charge is in flight gets the charge refunded', async () => {
    const inner = new SimulatedPaymentGateway();
    const orderId = randomUUID();
    let group: ReturnType<typeof createPaymentGroup> | undefined;
    let cancelling = true;
    const gateway = {
      async charge(request: ChargeRequest) {
        const result = await inner.charge(request);
        // The cancellation is handled by another consumer while the gateway answers (it
        // finds this charge in doubt and asks about it too).
        if (cancelling) {
          cancelling = false;
          await group?.handler(cancelled(orderId), ctx);
        }
        return result;
      },
      refund: inner.refund.bind(inner),
    };
    group = createPaymentGroup({ sql, gateway });
    await group.handler(reserved(orderId), ctx);
    expect(inner.chargeCount).toBe(1);
    expect(inner.refundCount).toBe(1);
    expect(await getPayment(sql, orderId)).toMatchObject({ status: 'refunded', amount: 500 });
    expect(await refundedEvents(orderId)).toBe(1);
  });

  it('a charge whose answer was lost, then a cancellation, then the retry: the charge is refunded', async () => {
    const inner = new SimulatedPaymentGateway();
    let loseAnswer = true;
    const gateway = {
      async charge(request: ChargeRequest) {
        const result = await inner.charge(request);
        if (loseAnswer) {
          loseAnswer = false;
          throw new PaymentGatewayUnavailableError('timed out (the charge went through)');
        }
        return result;
      },
      refund: inner.refund.bind(inner),
    };
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    const event = reserved(orderId);
    await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    await group.handler(cancelled(orderId), ctx); // finds no payment: leaves a 'void' record
    await group.handler(event, { ...ctx, attempt: 2 });
    expect(inner.chargeCount).toBe(1);
    expect(inner.refundCount).toBe(1);
    expect(await getPayment(sql, orderId)).toMatchObject({ status: 'refunded', amount: 500 });
  });

  /** A gateway whose charge calls fail with the outcome unknown: after charging (`answer lost`) or before reaching it. */
  function losing(inner: SimulatedPaymentGateway, lose: 'answer lost' | 'never reached') {
    let failing = true;
    return {
      gateway: {
        async charge(request: ChargeRequest) {
          if (failing && lose === 'never reached') throw new PaymentGatewayUnavailableError('timed out connecting');
          const result = await inner.charge(request);
          if (failing) throw new PaymentGatewayUnavailableError('timed out (the charge went through)');
          return result;
        },
        refund: inner.refund.bind(inner),
      },
      /** The gateway answers again from now on. */
      heal: () => {
        failing = false;
      },
    };
  }

  const refundedEvents = async (orderId: string) =>
    (
      await sql`select 1 from outbox where event->>'type' = 'payment.refunded' and event->'data'->>'orderId' = ${orderId}`
    ).length;

  it.each(['answer lost', 'never reached'] as const)(
    'a charge in doubt (%s) whose request was dead-lettered is refunded by the cancellation; a late replay adds nothing',
    async (lose) => {
      const inner = new SimulatedPaymentGateway();
      const { gateway, heal } = losing(inner, lose);
      const group = createPaymentGroup({ sql, gateway });
      const orderId = randomUUID();
      const event = reserved(orderId);
      // Every attempt loses its answer: the charge request ends in the dead-letter stream.
      await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
      await expect(group.handler(event, { ...ctx, attempt: 2 })).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
      heal();
      await cancelledInEventStore(orderId);
      await group.handler(cancelled(orderId), ctx);

      // Asked again with the same key: the charge it made (or, never reached, one made now) is refunded.
      expect(inner.chargeCount).toBe(1);
      expect(inner.refundCount).toBe(1);
      expect(await getPayment(sql, orderId)).toMatchObject({ status: 'refunded', amount: 500 });
      expect(await refundedEvents(orderId)).toBe(1);
      expect(await sql`select 1 from payment_attempts where order_id = ${orderId}`).toHaveLength(0);

      await group.handler(event, { ...ctx, replayCount: 1 });
      expect(inner.chargeCount).toBe(1);
      expect(inner.refundCount).toBe(1);
      expect(await refundedEvents(orderId)).toBe(1);
    },
  );

  it('a charge in doubt that the gateway declines when asked again: nothing to refund, the order stays void', async () => {
    const inner = new SimulatedPaymentGateway();
    const { gateway, heal } = losing(inner, 'answer lost');
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    const event = createEvent({
      type: 'inventory.reserved',
      aggregateId: orderId,
      data: { orderId, customerId: 'decline-c1', items: [{ sku: 'A', quantity: 1 }], total: 500, currency: 'EUR' },
    });
    await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    heal();
    await group.handler(cancelled(orderId), ctx);
    expect(inner.refundCount).toBe(0);
    expect((await getPayment(sql, orderId))?.status).toBe('void');
    expect(await sql`select 1 from payment_attempts where order_id = ${orderId}`).toHaveLength(0);
  });

  it('a cancellation that cannot reach the gateway to ask about a charge in doubt is retried, and then refunds', async () => {
    const inner = new SimulatedPaymentGateway();
    const { gateway, heal } = losing(inner, 'answer lost');
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    await expect(group.handler(reserved(orderId), ctx)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    const cancel = cancelled(orderId);
    await expect(group.handler(cancel, ctx)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    expect((await getPayment(sql, orderId))?.status).toBe('void');
    heal();
    await group.handler(cancel, { ...ctx, attempt: 2 });
    expect(inner.refundCount).toBe(1);
    expect(await getPayment(sql, orderId)).toMatchObject({ status: 'refunded' });
  });

  it('a charge in doubt recorded without its request (before migration 12) is left for its replay', async () => {
    const gateway = new SimulatedPaymentGateway();
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    const event = reserved(orderId);
    await sql`insert into payment_attempts (event_id, order_id) values (${event.id}, ${orderId})`;
    await group.handler(cancelled(orderId), ctx);
    expect(gateway.calls).toBe(0);
    expect((await getPayment(sql, orderId))?.status).toBe('void');
    // Its replay asks with the same key (here: charges now) and refunds.
    await group.handler(event, { ...ctx, replayCount: 1 });
    expect(gateway.refundCount).toBe(1);
    expect(await getPayment(sql, orderId)).toMatchObject({ status: 'refunded' });
  });

  it('a cancellation that read "no payment" just before a charge committed is retried and refunds', async () => {
    const gateway = new SimulatedPaymentGateway();
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    const cancel = cancelled(orderId);
    // Hold the cancellation's dedup row so its transaction waits after it read "no payment".
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holder = sql.begin(async (tx) => {
      await tx`insert into processed_events ("group", event_id) values ('payment', ${cancel.id})`;
      await held;
      throw new Error('roll back the held row');
    });
    const cancelling = Promise.resolve(group.handler(cancel, ctx)).then(
      () => 'done',
      (err: unknown) => err,
    );
    await waitFor(
      async () =>
        (
          await sql`select 1 from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and query like '%processed_events%'`
        ).length > 0,
      { message: 'cancellation waiting on its dedup row' },
    );
    await group.handler(reserved(orderId), ctx); // charges and commits 'succeeded'
    release();
    await expect(holder).rejects.toThrow('roll back the held row');
    expect(await cancelling).toBeInstanceOf(ConcurrencyError); // rolled back, to be retried
    await group.handler(cancel, { ...ctx, attempt: 2 });
    expect(gateway.chargeCount).toBe(1);
    expect(gateway.refundCount).toBe(1);
    expect(await getPayment(sql, orderId)).toMatchObject({ status: 'refunded' });
  });

  /** The order as the event store holds it: created, then cancelled by the customer. */
  async function cancelledInEventStore(orderId: string): Promise<void> {
    const [created] = decideCreate({ orderId, customerId: 'c1', items: [{ sku: 'A', quantity: 1, unitPrice: 500 }] });
    const { events } = await appendToStream(sql, orderId, 0, created ? [created] : []);
    const order = foldOrder(events);
    if (!order) throw new Error('order not created');
    await appendToStream(sql, orderId, 1, decideCancel(order, 'changed my mind', 'customer'));
  }

  it('an order already cancelled when its charge request is read is not charged (group paused or behind)', async () => {
    const gateway = new SimulatedPaymentGateway();
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    await cancelledInEventStore(orderId);
    // The stream order: the charge request first, then the cancellation.
    await group.handler(reserved(orderId), ctx);
    await group.handler(cancelled(orderId), ctx);
    expect(gateway.calls).toBe(0);
    expect(gateway.refundCount).toBe(0);
    expect((await getPayment(sql, orderId))?.status).toBe('void');
    const events = await sql`select 1 from outbox where event->'data'->>'orderId' = ${orderId}`;
    expect(events).toHaveLength(0);
  });

  it('a gateway outage (503), the cancellation, then the retry or a late replay: nothing is charged', async () => {
    for (const retry of [
      { ...ctx, attempt: 2 },
      { ...ctx, replayCount: 1 },
    ]) {
      const gateway = new SimulatedPaymentGateway({ failNextCalls: 1 });
      const group = createPaymentGroup({ sql, gateway });
      const orderId = randomUUID();
      const event = reserved(orderId);
      await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
      await cancelledInEventStore(orderId);
      await group.handler(cancelled(orderId), ctx);
      await group.handler(event, retry);
      expect(gateway.calls).toBe(1);
      expect(gateway.chargeCount).toBe(0);
      expect(gateway.refundCount).toBe(0);
      expect((await getPayment(sql, orderId))?.status).toBe('void');
    }
  });

  it('two runs of one charge at once: the one the gateway refused cannot erase the other that may have charged', async () => {
    const inner = new SimulatedPaymentGateway();
    let calls = 0;
    let secondStarted: () => void = () => undefined;
    const second = new Promise<void>((resolve) => {
      secondStarted = resolve;
    });
    const gateway = {
      async charge(request: ChargeRequest) {
        calls += 1;
        if (calls === 1) {
          // The first run waits until a duplicate delivery of the same event is charging too,
          // then the gateway refuses it outright (503: nothing done).
          await second;
          throw new PaymentGatewayUnavailableError('503', { nothingDone: true });
        }
        secondStarted();
        await inner.charge(request); // the duplicate's charge goes through, but its answer is lost
        throw new PaymentGatewayUnavailableError('timed out');
      },
      refund: inner.refund.bind(inner),
    };
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    const event = reserved(orderId);
    const runs = await Promise.allSettled([group.handler(event, ctx), group.handler(event, ctx)]);
    expect(runs.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await cancelledInEventStore(orderId);
    // The gateway answers again: the cancellation finds the charge in doubt and refunds it.
    const retrying = createPaymentGroup({ sql, gateway: inner });
    await retrying.handler(cancelled(orderId), ctx);
    await retrying.handler(event, { ...ctx, attempt: 2 });

    expect(inner.chargeCount).toBe(1);
    expect(inner.refundCount).toBe(1);
    expect(await getPayment(sql, orderId)).toMatchObject({ status: 'refunded' });
  });

  it('a retried charge after a transient failure charges once', async () => {
    const gateway = new SimulatedPaymentGateway({ failNextCalls: 1 });
    const group = createPaymentGroup({ sql, gateway });
    const orderId = randomUUID();
    const event = reserved(orderId);
    await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    await group.handler(event, ctx);
    await group.handler(event, ctx);
    expect(gateway.chargeCount).toBe(1);
    expect((await getPayment(sql, orderId))?.status).toBe('succeeded');
    // The outcome is recorded: nothing says "may have charged" any more.
    expect(await sql`select 1 from payment_attempts where event_id = ${event.id}`).toHaveLength(0);
  });
});
