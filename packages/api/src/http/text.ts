import { z } from 'zod';

/** Node 20 has `String#isWellFormed`; TypeScript's ES2023 lib does not declare it. */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

const WELL_FORMED = 'must be well-formed Unicode (a lone surrogate cannot be stored)';

/**
 * Text without lone UTF-16 surrogates. JSON may carry one (`"\ud800"`), but it is not
 * Unicode text: Redis would store it as U+FFFD (so `order-\ud800` and `order-\udbff` would
 * arrive as one and the same id) and Postgres' jsonb refuses it (22P02).
 */
export function wellFormedString(min: number, max: number) {
  return z.string().min(min).max(max).refine(isWellFormed, WELL_FORMED);
}

/**
 * Text that Postgres can store, in text and jsonb columns alike: well-formed, and without NUL
 * (U+0000), which neither type takes. Refused in the route's schema, naming the field, instead
 * of failing the insert (or the lookup) with a 500.
 */
export function storableString(min: number, max: number) {
  return wellFormedString(min, max).refine((s) => !s.includes('\u0000'), 'must not contain a NUL character (U+0000)');
}
