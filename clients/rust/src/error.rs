//! Typed errors: the server's closed set of codes and the client's own failures.

use std::fmt;

use serde_json::Value;

/// The closed set of `extensions.code` values the Weberei API sends (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No session, or the session is unknown or revoked: register or log in again.
    Unauthenticated,
    /// The session's role may not do this.
    Forbidden,
    /// Bad input; `ServerError::field` names the offending input field when known.
    Validation,
    /// The state changed underneath (a second vote, a stale design version, a faded Knoten).
    Conflict,
    /// The thing does not exist.
    NotFound,
    /// Too many requests: slow down and retry.
    RateLimited,
    /// The server could not complete it now: retry with the same idempotency key.
    Unavailable,
    /// The feature flag for this is off on this server.
    FeatureDisabled,
}

impl ErrorCode {
    /// The code as the server spells it (`"VALIDATION"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Validation => "VALIDATION",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::FeatureDisabled => "FEATURE_DISABLED",
        }
    }

    /// The code for the server's spelling; `None` for anything outside the closed set.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        Some(match code {
            "UNAUTHENTICATED" => ErrorCode::Unauthenticated,
            "FORBIDDEN" => ErrorCode::Forbidden,
            "VALIDATION" => ErrorCode::Validation,
            "CONFLICT" => ErrorCode::Conflict,
            "NOT_FOUND" => ErrorCode::NotFound,
            "RATE_LIMITED" => ErrorCode::RateLimited,
            "UNAVAILABLE" => ErrorCode::Unavailable,
            "FEATURE_DISABLED" => ErrorCode::FeatureDisabled,
            _ => return None,
        })
    }

    /// Whether retrying the same request later (with the same idempotency key) may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Unavailable | ErrorCode::RateLimited)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a GraphQL error's `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A response key.
    Field(String),
    /// A list index.
    Index(u64),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Field(k) => f.write_str(k),
            PathSegment::Index(i) => write!(f, "{i}"),
        }
    }
}

/// One error of a GraphQL response, as the server sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    /// `extensions.code`; `None` when it is missing or outside the closed set (see
    /// `extensions` for the raw value).
    pub code: Option<ErrorCode>,
    /// A message a person can act on.
    pub message: String,
    /// Where in the response it happened (e.g. `["createKnoten"]`).
    pub path: Vec<PathSegment>,
    /// `extensions.field`: the input field a VALIDATION error is about, when the server
    /// names one.
    pub field: Option<String>,
    /// Every extension as sent.
    pub extensions: serde_json::Map<String, Value>,
}

impl ServerError {
    /// Parse one entry of a response's `errors` list (lenient: anything missing stays empty).
    pub fn from_json(value: &Value) -> ServerError {
        let extensions = value
            .get("extensions")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        ServerError {
            code: extensions
                .get("code")
                .and_then(Value::as_str)
                .and_then(ErrorCode::parse),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(the server sent an error without a message)")
                .to_owned(),
            path: value
                .get("path")
                .and_then(Value::as_array)
                .map(|p| {
                    p.iter()
                        .filter_map(|s| match s {
                            Value::String(k) => Some(PathSegment::Field(k.clone())),
                            Value::Number(n) => n.as_u64().map(PathSegment::Index),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            field: extensions
                .get("field")
                .and_then(Value::as_str)
                .map(str::to_owned),
            extensions,
        }
    }

    /// The path joined with dots (`createKnoten`, `room.thread.0`), empty when there is none.
    pub fn path_string(&self) -> String {
        self.path
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code}")?,
            None => f.write_str("error")?,
        }
        if !self.path.is_empty() {
            write!(f, " at {}", self.path_string())?;
        }
        write!(f, ": {}", self.message)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with GraphQL errors; `code`, `message` and `path` are the first
    /// one's, `errors` holds all of them.
    #[error("{}", errors.first().map_or_else(|| message.clone(), ToString::to_string))]
    Server {
        code: Option<ErrorCode>,
        message: String,
        path: Vec<PathSegment>,
        errors: Vec<ServerError>,
    },
    /// An HTTP answer that is not a GraphQL response (e.g. a proxy's 502, a size limit's 413).
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The request did not get through, or the connection broke (connect, TLS, timeout, I/O).
    #[error("transport failure: {message}")]
    Transport {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The server closed the WebSocket before accepting the connection.
    #[error("the server refused the WebSocket connection (close code {code}): {reason}")]
    ConnectionRejected { code: u16, reason: String },
    /// The server said something this client does not understand.
    #[error("protocol error: {message}")]
    Protocol { message: String },
    /// The response does not match the operation's generated types.
    #[error("the response of {operation} does not match its types: {source}")]
    Decode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The base URL cannot be used.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl Error {
    /// A server error built from a response's `errors` list (`None` when it is empty).
    pub(crate) fn from_errors(errors: &[Value]) -> Option<Error> {
        let errors: Vec<ServerError> = errors.iter().map(ServerError::from_json).collect();
        let first = errors.first()?.clone();
        Some(Error::Server {
            code: first.code,
            message: first.message,
            path: first.path,
            errors,
        })
    }

    /// A server error with one entry made on the client's side (e.g. a refused WebSocket
    /// session token).
    pub(crate) fn server(code: ErrorCode, message: impl Into<String>) -> Error {
        let message = message.into();
        let mut extensions = serde_json::Map::new();
        extensions.insert("code".to_owned(), Value::from(code.as_str()));
        Error::Server {
            code: Some(code),
            message: message.clone(),
            path: Vec::new(),
            errors: vec![ServerError {
                code: Some(code),
                message,
                path: Vec::new(),
                field: None,
                extensions,
            }],
        }
    }

    pub(crate) fn transport(message: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Transport {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The error's code: the server's for [`Error::Server`], the one an HTTP status stands
    /// for (401, 403, 413, 429, 503, ...) for [`Error::Http`], `None` otherwise.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => *code,
            Error::Http { status, .. } => match status {
                401 => Some(ErrorCode::Unauthenticated),
                403 => Some(ErrorCode::Forbidden),
                400 | 413 | 422 => Some(ErrorCode::Validation),
                404 => Some(ErrorCode::NotFound),
                409 => Some(ErrorCode::Conflict),
                429 => Some(ErrorCode::RateLimited),
                502..=504 => Some(ErrorCode::Unavailable),
                _ => None,
            },
            _ => None,
        }
    }

    /// Every GraphQL error of a [`Error::Server`] (empty otherwise).
    pub fn server_errors(&self) -> &[ServerError] {
        match self {
            Error::Server { errors, .. } => errors,
            _ => &[],
        }
    }

    /// The input field a VALIDATION error names, if any.
    pub fn field(&self) -> Option<&str> {
        self.server_errors()
            .first()
            .and_then(|e| e.field.as_deref())
    }

    /// Whether retrying later (with the same idempotency key) may succeed: a transport
    /// failure, UNAVAILABLE or RATE_LIMITED.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Transport { .. }) || self.code().is_some_and(ErrorCode::is_retryable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_code_round_trips_and_others_are_none() {
        for code in [
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::Validation,
            ErrorCode::Conflict,
            ErrorCode::NotFound,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::FeatureDisabled,
        ] {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("validation"), None);
        assert_eq!(ErrorCode::parse("INTERNAL"), None);
    }

    #[test]
    fn a_graphql_error_list_becomes_a_server_error() {
        let errors = [
            json!({"message": "title must not be empty", "path": ["createKnoten"],
                   "extensions": {"code": "VALIDATION", "field": "title"}}),
            json!({"message": "second", "path": ["a", 3, "b"], "extensions": {"code": "WHATEVER"}}),
        ];
        let err = Error::from_errors(&errors).unwrap();
        assert_eq!(err.code(), Some(ErrorCode::Validation));
        assert_eq!(err.field(), Some("title"));
        assert_eq!(
            err.to_string(),
            "VALIDATION at createKnoten: title must not be empty"
        );
        let Error::Server { errors, path, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, &[PathSegment::Field("createKnoten".into())]);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].code, None);
        assert_eq!(errors[1].path_string(), "a.3.b");
        assert_eq!(errors[1].extensions["code"], "WHATEVER");
        assert!(Error::from_errors(&[]).is_none());
    }

    #[test]
    fn http_statuses_and_transport_failures_have_codes() {
        let http = |status| Error::Http {
            status,
            body: String::new(),
        };
        assert_eq!(http(401).code(), Some(ErrorCode::Unauthenticated));
        assert_eq!(http(413).code(), Some(ErrorCode::Validation));
        assert_eq!(http(429).code(), Some(ErrorCode::RateLimited));
        assert!(http(503).is_retryable());
        assert_eq!(http(500).code(), None);
        let t = Error::transport("connect", std::io::Error::other("refused"));
        assert_eq!(t.code(), None);
        assert!(t.is_retryable());
        assert!(std::error::Error::source(&t).is_some());
    }
}
