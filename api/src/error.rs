//! One error type for every resolver, mapped once to GraphQL `extensions.code`.

use async_graphql::{ErrorExtensions, ServerError};

use domain::DomainError;
use tracing::error;

/// The closed set of codes of DESIGN.md §5 and what each carries.
///
/// Deliberately not `Display`: async-graphql converts anything `Display` into an error
/// without a code, so the only way from here to the client is the `From` below.
#[derive(Debug)]
pub enum ApiError {
    Domain(DomainError),
    Unauthenticated(String),
    RateLimited(String),
    FeatureDisabled(String),
    /// Infrastructure failure: logged with its cause, the client sees only that it may retry.
    Unavailable(String),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl ApiError {
    /// What the person sees.
    pub fn message(&self) -> String {
        match self {
            Self::Domain(d) => d.to_string(),
            Self::Unauthenticated(m) | Self::RateLimited(m) | Self::FeatureDisabled(m) => m.clone(),
            Self::Unavailable(_) => {
                "the service is temporarily unavailable; try again with the same idempotency key"
                    .into()
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Domain(d) => d.code(),
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::RateLimited(_) => "RATE_LIMITED",
            Self::FeatureDisabled(_) => "FEATURE_DISABLED",
            Self::Unavailable(_) => "UNAVAILABLE",
        }
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let cause = cause.to_string();
        error!(%cause, "request failed on infrastructure");
        Self::Unavailable(cause)
    }
}

impl From<bus::BusError> for ApiError {
    fn from(e: bus::BusError) -> Self {
        Self::unavailable(e)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::unavailable(e)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let field = match &e {
            ApiError::Domain(DomainError::Validation { field, .. }) => Some(field.clone()),
            _ => None,
        };
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", e.code());
            if let Some(field) = &field {
                ext.set("field", field.as_str());
            }
        })
    }
}

/// Errors that never reached a resolver (syntax, unknown fields, wrong argument types, a
/// missing required argument) carry no code yet: they are all VALIDATION.
pub(crate) fn ensure_code(err: &mut ServerError) {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", "VALIDATION");
    }
}

/// Codes that mean "the command was refused" (as opposed to failures or auth).
const REFUSAL_CODES: [&str; 4] = ["VALIDATION", "FORBIDDEN", "CONFLICT", "NOT_FOUND"];

/// async-graphql extension applying [`ensure_code`] to every response, HTTP and WebSocket, and
/// recording a refused mutation that never reached its resolver as `EventRejected`.
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

use async_graphql::extensions::{ExtensionContext, NextPrepareRequest, NextRequest, NextSubscribe};

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
                let client = ctx.data_opt::<crate::graphql::ClientInfo>();
                for (code, message, field) in refusals {
                    crate::graphql::record_rejection(
                        bus, client, &command, &code, &message, field, None,
                    )
                    .await;
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
