//! Why a command was refused. Refusals are domain facts, not technical failures.

use thiserror::Error;

/// A command the domain refuses. Each variant maps to one GraphQL `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// The input is malformed or out of range; `field` names the input field.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The command contradicts the current state (duplicate, stale version, ...).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The target does not exist.
    #[error("{0}")]
    NotFound(String),
}

impl DomainError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The closed set of codes of DESIGN.md §5 this refusal belongs to.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "VALIDATION",
            Self::Conflict(_) => "CONFLICT",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
        }
    }
}
