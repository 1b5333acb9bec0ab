import { z } from 'zod';

/**
 * Integer schemas that give one clear message per wrong value.
 *
 * `z.coerce.number()` reads a query value as JavaScript's `Number()` does: `0x10` is 16,
 * `1e1` is 10 and an empty value is 0 (then refused as "too small"). And zod's `.int()` bounds
 * a number to the safe-integer range on top of any `.max()`, so `1e300` was "too big" twice.
 */

/** A query value is a whole number only as plain decimal digits (an optional minus sign first). */
const DECIMAL_INTEGER = /^-?\d+$/;

interface QueryIntegerOptions {
  min: number;
  max: number;
  description?: string;
}

function parsedQueryInteger({ min, max }: QueryIntegerOptions) {
  return (
    z
      .string()
      .refine((value) => value !== '', { message: 'must not be empty: give a whole number', abort: true })
      .refine((value) => DECIMAL_INTEGER.test(value), {
        message: 'must be a whole number in decimal digits, e.g. 50',
        abort: true,
      })
      // Only digits reach the coercion. Not `.transform(Number)`: zod leaves a transform's default out of the document.
      .pipe(z.coerce.number<string>().min(min).max(max))
  );
}

/** The document shows the parameter as the integer it is, not as the string it is parsed from. */
function documented({ min, max, description }: QueryIntegerOptions) {
  return {
    type: 'integer',
    minimum: min,
    maximum: max,
    ...(description === undefined ? {} : { description }),
  };
}

/**
 * An integer query parameter in `[min, max]`: plain decimal digits only (no hex, exponent,
 * fraction, sign `+` or spaces), optional, or `default` when absent. One message per wrong
 * value: empty, not a whole number, or out of range.
 */
export function queryInteger(options: QueryIntegerOptions & { default: number }): ReturnType<typeof withDefault>;
export function queryInteger(options: QueryIntegerOptions): ReturnType<typeof optional>;
export function queryInteger(options: QueryIntegerOptions & { default?: number }) {
  return options.default === undefined ? optional(options) : withDefault(options, options.default);
}

function optional(options: QueryIntegerOptions) {
  return parsedQueryInteger(options).optional().meta(documented(options));
}

function withDefault(options: QueryIntegerOptions, fallback: number) {
  return parsedQueryInteger(options).default(fallback).meta(documented(options));
}

/**
 * An integer JSON value in `[min, max]`. The range is checked first and stops there, so a value
 * out of range (`1e300` included) is one "too big" naming `max`, a fraction one "expected int".
 */
export function jsonInteger(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return z.number().min(min, { abort: true }).max(max, { abort: true }).int();
}
