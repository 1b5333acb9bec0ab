import { randomUUID } from 'node:crypto';
import type { Config } from '../config/index';
import { NonRetryableError, StreamfleetError } from '../errors/index';

export interface ChargeRequest {
  orderId: string;
  customerId: string;
  amount: number;
  currency: string;
  /** Same key, same outcome: a retried charge never charges twice. */
  idempotencyKey: string;
  /** Cancels the call, e.g. the handler's `context.signal` once its attempt has timed out. */
  signal?: AbortSignal;
}

export type ChargeResult = { status: 'succeeded'; chargeId: string } | { status: 'declined'; reason: string };

export interface RefundRequest {
  chargeId: string;
  amount: number;
  idempotencyKey: string;
  signal?: AbortSignal;
}

/**
 * A card processor. Contract: a decline is a result, not an error; a transient failure
 * (5xx, timeout, connection refused, a reply cut off) throws `PaymentGatewayUnavailableError`, which the
 * consumer group retries (its `nothingDone` says whether the call certainly charged nothing); a request the gateway rejects as malformed throws a
 * `NonRetryableError`. Calls with the same idempotency key return the first outcome.
 */
export interface PaymentGateway {
  charge(request: ChargeRequest): Promise<ChargeResult>;
  refund(request: RefundRequest): Promise<{ refundId: string }>;
}

/** The gateway is down or slow: retry later. */
export class PaymentGatewayUnavailableError extends StreamfleetError {
  /**
   * True when the gateway certainly did nothing (connection refused, 429, 503): no charge can
   * have happened. False when the outcome is unknown (a timeout, a reply cut off, another 5xx).
   */
  readonly nothingDone: boolean;

  constructor(message: string, options?: { cause?: unknown; nothingDone?: boolean }) {
    super('PAYMENT_GATEWAY_UNAVAILABLE', message, options);
    this.nothingDone = options?.nothingDone ?? false;
  }
}

/** Failures before the request reached the gateway's application. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function notSent(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' && NOT_SENT_CODES.has(cause.code);
}

export interface SimulatedPaymentGatewayOptions {
  /** Probability (0..1) that a call fails transiently before doing anything. Default 0. */
  transientFailureRate?: number;
  /** The next N calls fail transiently (deterministic tests). Default 0. */
  failNextCalls?: number;
  /** Charges above this amount (cents) are declined. Default 100000 (1000.00). */
  declineAbove?: number;
  random?: () => number;
}

/**
 * In-memory gateway, the default when `PAYMENT_GATEWAY_URL` is unset. Decline rule: an
 * amount above `declineAbove` (default 100000 cents), or a customer id starting with
 * "decline". Remembers outcomes by idempotency key, and counts real charges.
 */
export class SimulatedPaymentGateway implements PaymentGateway {
  private readonly charges = new Map<string, ChargeResult>();
  private readonly refunds = new Map<string, { refundId: string }>();
  private failNext: number;
  private readonly options: Required<Omit<SimulatedPaymentGatewayOptions, 'failNextCalls'>>;
  /** Calls made, including failed ones. */
  calls = 0;

  constructor(options: SimulatedPaymentGatewayOptions = {}) {
    this.failNext = options.failNextCalls ?? 0;
    this.options = {
      transientFailureRate: options.transientFailureRate ?? 0,
      declineAbove: options.declineAbove ?? 100_000,
      random: options.random ?? Math.random,
    };
  }

  /** Makes the next `n` calls fail transiently. */
  failNextCalls(n: number): void {
    this.failNext = n;
  }

  /** Successful charges actually made (distinct idempotency keys). */
  get chargeCount(): number {
    return [...this.charges.values()].filter((c) => c.status === 'succeeded').length;
  }

  get refundCount(): number {
    return this.refunds.size;
  }

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    this.maybeFail();
    const previous = this.charges.get(request.idempotencyKey);
    if (previous) return previous;
    const declined = request.amount > this.options.declineAbove || request.customerId.startsWith('decline');
    const result: ChargeResult = declined
      ? { status: 'declined', reason: request.amount > this.options.declineAbove ? 'amount_limit' : 'card_declined' }
      : { status: 'succeeded', chargeId: `ch_${randomUUID()}` };
    this.charges.set(request.idempotencyKey, result);
    return result;
  }

  async refund(request: RefundRequest): Promise<{ refundId: string }> {
    this.maybeFail();
    const previous = this.refunds.get(request.idempotencyKey);
    if (previous) return previous;
    const result = { refundId: `re_${randomUUID()}` };
    this.refunds.set(request.idempotencyKey, result);
    return result;
  }

  private maybeFail(): void {
    this.calls += 1;
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new PaymentGatewayUnavailableError('simulated gateway outage (503)', { nothingDone: true });
    }
    if (this.options.random() < this.options.transientFailureRate) {
      throw new PaymentGatewayUnavailableError('simulated gateway outage (503)', { nothingDone: true });
    }
  }
}

/** The gateway's decline reason as `payment.failed` carries it: non-empty, at most 200 characters. */
function declineReason(reason: unknown): string {
  const text = typeof reason === 'string' ? reason.trim() : '';
  return text === '' ? 'card_declined' : text.slice(0, 200);
}

export interface HttpPaymentGatewayOptions {
  /** `PAYMENT_GATEWAY_URL`, e.g. `https://pay.example.com`. */
  baseUrl: string;
  /** Per request. Default 5000 ms. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * A gateway over HTTP: `POST {baseUrl}/charges` and `POST {baseUrl}/refunds` with an
 * `Idempotency-Key` header. 2xx `{ id | chargeId, status }` (status `declined` is a
 * decline); 402 is a decline; other 4xx are non-retryable; 5xx, 429 and timeouts retry.
 */
export class HttpPaymentGateway implements PaymentGateway {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: HttpPaymentGatewayOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.fetch = options.fetch ?? fetch;
  }

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    const { status, body } = await this.post('/charges', request.idempotencyKey, request.signal, {
      orderId: request.orderId,
      customerId: request.customerId,
      amount: request.amount,
      currency: request.currency,
    });
    if (status === 402 || body.status === 'declined') return { status: 'declined', reason: declineReason(body.reason) };
    const chargeId = body.chargeId ?? body.id;
    if (typeof chargeId !== 'string' || chargeId === '') {
      throw new NonRetryableError('payment gateway reply has no charge id');
    }
    return { status: 'succeeded', chargeId };
  }

  async refund(request: RefundRequest): Promise<{ refundId: string }> {
    const { body } = await this.post('/refunds', request.idempotencyKey, request.signal, {
      chargeId: request.chargeId,
      amount: request.amount,
    });
    const refundId = body.refundId ?? body.id;
    if (typeof refundId !== 'string' || refundId === '')
      throw new NonRetryableError('payment gateway reply has no refund id');
    return { refundId };
  }

  private async post(
    path: string,
    idempotencyKey: string,
    cancel: AbortSignal | undefined,
    payload: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    try {
      response = await this.fetch(`${this.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
        body: JSON.stringify(payload),
        signal: cancel ? AbortSignal.any([timeout, cancel]) : timeout,
      });
    } catch (err) {
      throw new PaymentGatewayUnavailableError(`payment gateway unreachable: ${(err as Error).message}`, {
        cause: err,
        nothingDone: notSent(err),
      });
    }
    if (response.status >= 500 || response.status === 429) {
      await response.body?.cancel().catch(() => undefined);
      // 429 and 503 say "not processed"; a 500, 502 or 504 may have come after the charge.
      throw new PaymentGatewayUnavailableError(`payment gateway answered ${response.status}`, {
        nothingDone: response.status === 429 || response.status === 503,
      });
    }
    if (response.status >= 400 && response.status !== 402) {
      await response.body?.cancel().catch(() => undefined);
      throw new NonRetryableError(`payment gateway rejected the request (${response.status})`, {
        code: 'PAYMENT_GATEWAY_REJECTED',
      });
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (err) {
      // Timed out, cut off or not JSON: the outcome is unknown, and asking again with the
      // same idempotency key is safe.
      throw new PaymentGatewayUnavailableError(`payment gateway reply could not be read: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return {
      status: response.status,
      body: typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {},
    };
  }
}

export interface PaymentGatewayOptions {
  /** `PAYMENT_GATEWAY_URL`: use `HttpPaymentGateway` there. Unset: the simulator. */
  url?: string;
  /** HTTP gateway only. */
  timeoutMs?: number;
  /** Simulator only (`PAYMENT_SIMULATOR_FAILURE_RATE`). Default 0. */
  transientFailureRate?: number;
}

/** `HttpPaymentGateway` when a URL is given (`PAYMENT_GATEWAY_URL`), else the simulator. */
export function createPaymentGateway(options: PaymentGatewayOptions = {}): PaymentGateway {
  return options.url
    ? new HttpPaymentGateway({ baseUrl: options.url, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) })
    : new SimulatedPaymentGateway({ transientFailureRate: options.transientFailureRate ?? 0 });
}

/** The gateway the parsed environment asks for; what worker processes run. */
export function createPaymentGatewayFromConfig(
  config: Pick<Config, 'paymentGatewayUrl' | 'paymentSimulatorFailureRate'>,
): PaymentGateway {
  return createPaymentGateway({
    ...(config.paymentGatewayUrl ? { url: config.paymentGatewayUrl } : {}),
    transientFailureRate: config.paymentSimulatorFailureRate,
  });
}
