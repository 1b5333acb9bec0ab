/**
 * One error base for streamfleet. Every error carries a stable string `code`; the HTTP
 * layer maps codes to statuses, nothing in core knows about HTTP.
 */
export class StreamfleetError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options?.details) this.details = options.details;
  }
}

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `data.items.0.quantity`. */
  field: string;
  message: string;
}

/** Input that does not match its schema. Never retried. */
export class ValidationError extends StreamfleetError {
  readonly issues: FieldIssue[];
  constructor(message: string, issues: FieldIssue[]) {
    super('VALIDATION_ERROR', message, { details: { issues } });
    this.issues = issues;
  }
}

/** Throw from a handler to skip retries: the entry goes straight to the dead-letter stream. */
export class NonRetryableError extends StreamfleetError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'NON_RETRYABLE', message, options);
  }
}

/**
 * A handler did not settle within its group's timeout (`handlerTimeoutMs`). Retryable: the
 * attempt counts as failed, the entry goes on to its retry job, and the handler's
 * `context.signal` is aborted with this error so it can stop its work.
 */
export class HandlerTimeoutError extends StreamfleetError {
  constructor(readonly timeoutMs: number) {
    super('HANDLER_TIMEOUT', `the handler did not finish within ${timeoutMs} ms`, { details: { timeoutMs } });
  }
}

/** An optimistic-concurrency check failed (expected version did not match). */
export class ConcurrencyError extends StreamfleetError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONCURRENCY_CONFLICT', message, details ? { details } : undefined);
  }
}

export class NotFoundError extends StreamfleetError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('NOT_FOUND', message, details ? { details } : undefined);
  }
}

/** The request conflicts with the current state (e.g. replaying an entry twice). */
export class ConflictError extends StreamfleetError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, details ? { details } : undefined);
  }
}

/** A business rule refused a command (e.g. cancelling a shipped order). */
export class DomainError extends StreamfleetError {}

export interface ErrorSummary {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

const MAX_STACK = 2000;

/** Normalises anything thrown into a bounded, serialisable summary. */
export function summariseError(err: unknown): ErrorSummary {
  const summary: ErrorSummary = briefError(err);
  if (err instanceof Error && err.stack) summary.stack = err.stack.slice(0, MAX_STACK);
  return summary;
}

/**
 * Name, message and code, without the stack: for log lines about expected failures (a
 * handler failing and being retried), where a stack on every attempt is noise. It never
 * reads `err.stack`: formatting one is costly (source maps), and a failing handler's
 * event pays for it on the consumer loop.
 */
export function briefError(err: unknown): Omit<ErrorSummary, 'stack'> {
  if (err instanceof Error) {
    const brief: Omit<ErrorSummary, 'stack'> = { name: err.name, message: err.message };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') brief.code = code;
    return brief;
  }
  return { name: 'NonError', message: typeof err === 'string' ? err : safeJson(err) };
}

export function isNonRetryable(err: unknown): boolean {
  return err instanceof NonRetryableError || err instanceof ValidationError || err instanceof DomainError;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** An entry kept killing (or outliving) its consumers: it was delivered too many times. */
export class MaxDeliveriesError extends StreamfleetError {
  constructor(deliveries: number) {
    super('MAX_DELIVERIES', `delivered ${deliveries} times without being acknowledged`, { details: { deliveries } });
  }
}
