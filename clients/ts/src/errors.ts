/** The closed set of error codes: the server's `extensions.code`, plus NETWORK (no answer). */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'VALIDATION'
  | 'CONFLICT'
  | 'NOT_FOUND'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'FEATURE_DISABLED'
  | 'NETWORK';

export const ERROR_CODES: readonly ErrorCode[] = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'VALIDATION',
  'CONFLICT',
  'NOT_FOUND',
  'RATE_LIMITED',
  'UNAVAILABLE',
  'FEATURE_DISABLED',
  'NETWORK',
];

/** One error as the server reported it. */
export interface WebereiErrorEntry {
  message: string;
  code: ErrorCode;
  path?: readonly (string | number)[];
}

/**
 * Every failure of a request or subscription. `message` is the server's human sentence (of the
 * first error); `code` says what to do about it; `errors` holds all of them.
 */
export class WebereiError extends Error {
  readonly code: ErrorCode;
  readonly path?: readonly (string | number)[];
  readonly errors: readonly WebereiErrorEntry[];

  constructor(errors: readonly WebereiErrorEntry[], options?: { cause?: unknown }) {
    const first = errors[0] ?? { message: 'unknown error', code: 'NETWORK' as const };
    super(first.message, options);
    this.name = 'WebereiError';
    this.code = first.code;
    if (first.path !== undefined) this.path = first.path;
    this.errors = errors;
  }

  /** A transport failure: no (usable) answer from the server. */
  static network(message: string, cause?: unknown): WebereiError {
    return new WebereiError([{ message, code: 'NETWORK' }], cause === undefined ? undefined : { cause });
  }

  /** From the `errors` array of a GraphQL response. */
  static fromGraphQL(errors: readonly unknown[]): WebereiError {
    const entries = errors.map(toEntry);
    return new WebereiError(entries.length ? entries : [{ message: 'the server reported an error without details', code: 'UNAVAILABLE' }]);
  }
}

function isCode(c: unknown): c is ErrorCode {
  return typeof c === 'string' && (ERROR_CODES as readonly string[]).includes(c);
}

/**
 * One GraphQL error. Errors without a code come from the GraphQL layer itself (a document or
 * variables the schema rejects, e.g. a missing required input field): that is bad input,
 * VALIDATION.
 */
function toEntry(e: unknown): WebereiErrorEntry {
  const o = (typeof e === 'object' && e !== null ? e : {}) as {
    message?: unknown;
    path?: unknown;
    extensions?: { code?: unknown };
  };
  const message = typeof o.message === 'string' ? o.message : String(e);
  const raw = o.extensions?.code;
  const code: ErrorCode = isCode(raw) && raw !== 'NETWORK' ? raw : 'VALIDATION';
  const entry: WebereiErrorEntry = { message, code };
  if (Array.isArray(o.path)) entry.path = o.path as (string | number)[];
  return entry;
}
