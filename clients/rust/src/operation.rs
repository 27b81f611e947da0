//! What the generated operations implement beyond `graphql_client::GraphQLQuery`.

use graphql_client::GraphQLQuery;

/// A query (sent over HTTP).
pub trait QueryOperation: GraphQLQuery {
    /// Response key of the operation's root field (e.g. `"knoten"`).
    const ROOT_FIELD: &'static str;
}

/// A mutation (sent over HTTP). Mutations that take an input carry an idempotency key.
pub trait MutationOperation: GraphQLQuery {
    /// Response key of the operation's root field (e.g. `"createKnoten"`).
    const ROOT_FIELD: &'static str;

    /// The `idempotencyKey` of the operation's input, or `None` for mutations without one
    /// (`logout`, `revokeSession`).
    fn idempotency_key(variables: &mut Self::Variables) -> Option<&mut String>;
}

/// A subscription (over WebSocket, graphql-transport-ws).
pub trait SubscriptionOperation: GraphQLQuery + 'static {
    /// Response key of the operation's root field (e.g. `"viewport"`); its `cursor` is read
    /// from there.
    const ROOT_FIELD: &'static str;
    /// The variable bound to the root field's `after` argument: set to the last diff's
    /// `cursor` when the client resubscribes. `None`: the subscription cannot resume.
    const AFTER_VARIABLE: Option<&'static str>;
}

/// A fresh idempotency key (a UUID v4).
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Fill the mutation's idempotency key with a fresh UUID v4 unless one is set, and return
/// the key in use (`None` for a mutation without one). Keep it to retry the same action:
/// the server answers a retry with the original result (`replayed: true`).
pub fn ensure_idempotency_key<M: MutationOperation>(
    variables: &mut M::Variables,
) -> Option<String> {
    let key = M::idempotency_key(variables)?;
    if key.is_empty() {
        *key = new_idempotency_key();
    }
    Some(key.clone())
}
