import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index';
import { NonRetryableError } from '../errors/index';
import {
  type ChargeRequest,
  createPaymentGatewayFromConfig,
  HttpPaymentGateway,
  PaymentGatewayUnavailableError,
  SimulatedPaymentGateway,
} from './payment-gateway';

const charge = (): ChargeRequest => ({
  orderId: randomUUID(),
  customerId: 'cust-1',
  amount: 500,
  currency: 'EUR',
  idempotencyKey: randomUUID(),
});

describe('createPaymentGatewayFromConfig', () => {
  it('PAYMENT_SIMULATOR_FAILURE_RATE=1: every charge and refund fails with a retryable gateway error', async () => {
    const gateway = createPaymentGatewayFromConfig(loadConfig({ PAYMENT_SIMULATOR_FAILURE_RATE: '1' }));
    expect(gateway).toBeInstanceOf(SimulatedPaymentGateway);
    for (let i = 0; i < 50; i++) {
      const err = await gateway.charge(charge()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PaymentGatewayUnavailableError);
      expect(err).not.toBeInstanceOf(NonRetryableError);
      expect((err as PaymentGatewayUnavailableError).code).toBe('PAYMENT_GATEWAY_UNAVAILABLE');
    }
    await expect(
      gateway.refund({ chargeId: 'ch_1', amount: 500, idempotencyKey: randomUUID() }),
    ).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    expect((gateway as SimulatedPaymentGateway).chargeCount).toBe(0);
  });

  it.each([
    ['unset', {}],
    ['0', { PAYMENT_SIMULATOR_FAILURE_RATE: '0' }],
  ])('PAYMENT_SIMULATOR_FAILURE_RATE %s: no charge ever fails', async (_label, env) => {
    const gateway = createPaymentGatewayFromConfig(loadConfig(env));
    for (let i = 0; i < 200; i++) {
      await expect(gateway.charge(charge())).resolves.toMatchObject({ status: 'succeeded' });
    }
    expect((gateway as SimulatedPaymentGateway).chargeCount).toBe(200);
  });

  it('a rate between 0 and 1 fails some calls and not others', async () => {
    const gateway = createPaymentGatewayFromConfig(loadConfig({ PAYMENT_SIMULATOR_FAILURE_RATE: '0.5' }));
    const outcomes = await Promise.all(
      Array.from({ length: 400 }, () =>
        gateway.charge(charge()).then(
          () => 'ok',
          (err: unknown) => (err instanceof PaymentGatewayUnavailableError ? 'failed' : 'other'),
        ),
      ),
    );
    // P(fewer than 100 of either out of 400 at p=0.5) is far below 1e-20.
    expect(outcomes.filter((o) => o === 'failed').length).toBeGreaterThan(100);
    expect(outcomes.filter((o) => o === 'ok').length).toBeGreaterThan(100);
    expect(outcomes).not.toContain('other');
  });

  it('with PAYMENT_GATEWAY_URL set, the HTTP gateway is used and the simulator rate does not apply', () => {
    const gateway = createPaymentGatewayFromConfig(
      loadConfig({ PAYMENT_GATEWAY_URL: 'http://127.0.0.1:1/pay', PAYMENT_SIMULATOR_FAILURE_RATE: '1' }),
    );
    expect(gateway).toBeInstanceOf(HttpPaymentGateway);
  });
});
