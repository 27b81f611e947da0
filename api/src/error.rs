//! One error type for every resolver and service, mapped once to GraphQL `extensions.code`.
//!
//! Pure: mapping an error records nothing and publishes nothing. Refused mutations are recorded
//! as `EventRejected` by the GraphQL edge (`graphql/edge.rs` through `rejections.rs`), never
//! from here.

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
