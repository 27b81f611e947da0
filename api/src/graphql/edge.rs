//! The GraphQL edge's extension: every response gets its `extensions.code` (errors that never
//! reached a resolver are VALIDATION), and every refused mutation is handed to
//! [`crate::rejections`] to be recorded as `EventRejected`, here and only here (the error type
//! stays pure, resolvers and services record nothing).

use async_graphql::extensions::{ExtensionContext, NextPrepareRequest, NextRequest, NextSubscribe};

use crate::auth::ClientInfo;
use crate::error::ensure_code;
use crate::rejections::{self, Refusal};

/// Codes that mean "the command was refused" (as opposed to failures or auth).
const REFUSAL_CODES: [&str; 4] = ["VALIDATION", "FORBIDDEN", "CONFLICT", "NOT_FOUND"];

/// async-graphql extension applying [`ensure_code`] to every response, HTTP and WebSocket, and
/// recording every refused mutation (in a resolver or before one: syntax, unknown enum value,
/// missing argument) as `EventRejected`, once per refused field.
pub(crate) struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodesExtension {
            query: std::sync::Mutex::new(None),
        })
    }
}

struct ErrorCodesExtension {
    query: std::sync::Mutex<Option<String>>,
}

#[async_graphql::async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodesExtension {
    async fn request(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextRequest<'_>,
    ) -> async_graphql::Response {
        let mut resp = next.run(ctx).await;
        resp.errors.iter_mut().for_each(ensure_code);
        // Every refused mutation is recorded as EventRejected, here and only here.
        let refusals: Vec<(String, String, Option<String>)> = resp
            .errors
            .iter()
            .filter_map(|e| {
                let ext = e.extensions.as_ref()?;
                let code = match ext.get("code")? {
                    async_graphql::Value::String(c) => c.clone(),
                    _ => return None,
                };
                if !REFUSAL_CODES.contains(&code.as_str()) {
                    return None;
                }
                let field = match ext.get("field") {
                    Some(async_graphql::Value::String(f)) => Some(f.clone()),
                    _ => None,
                };
                Some((code, e.message.clone(), field))
            })
            .collect();
        if !refusals.is_empty() {
            let query = self.query.lock().ok().and_then(|q| q.clone());
            if let (Some(command), Some(bus)) = (
                query.as_deref().and_then(mutation_name),
                ctx.data_opt::<bus::Bus>(),
            ) {
                let client = ctx.data_opt::<ClientInfo>();
                for (code, reason, field) in refusals {
                    let refusal = Refusal {
                        command: command.clone(),
                        code,
                        reason,
                        field,
                        aggregate_id: None,
                    };
                    rejections::record(bus, client, refusal).await;
                }
            }
        }
        resp
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> async_graphql::ServerResult<async_graphql::Request> {
        if let Ok(mut q) = self.query.lock() {
            *q = Some(request.query.clone());
        }
        next.run(ctx, request).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, async_graphql::Response>,
        next: NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, async_graphql::Response> {
        use futures::StreamExt;
        next.run(ctx, stream)
            .map(|mut resp| {
                resp.errors.iter_mut().for_each(ensure_code);
                resp
            })
            .boxed()
    }
}

/// The first field of the first mutation operation in `query`, if it is a mutation at all.
fn mutation_name(query: &str) -> Option<String> {
    use async_graphql::parser::types::{OperationType, Selection};
    let doc = async_graphql::parser::parse_query(query).ok()?;
    doc.operations.iter().find_map(|(_, op)| {
        if op.node.ty != OperationType::Mutation {
            return None;
        }
        let first = op.node.selection_set.node.items.first()?;
        match &first.node {
            Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => Some("mutation".to_owned()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::mutation_name;

    #[test]
    fn mutations_are_named_by_their_first_field() {
        assert_eq!(
            mutation_name("mutation { createKnoten(input: {}) { knoten { id } } }").as_deref(),
            Some("createKnoten")
        );
        assert_eq!(mutation_name("{ knoten { id } }"), None);
        assert_eq!(mutation_name("mutation {"), None);
    }
}
