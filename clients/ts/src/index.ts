export { createClient, newIdempotencyKey, backoffDelay } from './client.js';
export type { ClientOptions, ConnectionState, SubscriptionSink, SubscriptionVariables, WebereiClient } from './client.js';
export { WebereiError, ERROR_CODES } from './errors.js';
export type { ErrorCode, WebereiErrorEntry } from './errors.js';
export type { JsonObject, JsonValue } from './json.js';
export type { TypedDocumentNode } from '@graphql-typed-document-node/core';
export * from './generated/graphql.js';
