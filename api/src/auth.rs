//! Who is calling: session tokens (opaque bearer tokens, stored only as SHA-256 hashes,
//! revocable), the [`Caller`] a live session makes, and the salted [`ClientInfo`] of a request.
//! Sessions are the API's own login state (not a projection); their rows are read and written by
//! `read::accounts`, never here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sea_orm::{DatabaseConnection, DbErr};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Who is calling: a role with a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub rolle_id: Uuid,
    pub session_id: Uuid,
}

/// A presented token that is unknown, revoked or malformed. Kept apart from "no token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

const PREFIX: &str = "wb_";

/// A new random token (256 bits) and its stored hash.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `Authorization: Bearer <token>` → the token.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The token in a WebSocket `connection_init` payload: `{"authorization": "Bearer …"}`,
/// `{"Authorization": …}` or `{"token": "…"}`.
pub fn token_from_init(payload: &serde_json::Value) -> Option<String> {
    for key in ["authorization", "Authorization"] {
        if let Some(v) = payload.get(key).and_then(|v| v.as_str()) {
            return bearer(Some(v)).map(str::to_owned);
        }
    }
    payload
        .get("token")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Look a token up; touches `last_seen_at` at most once a minute.
pub async fn authenticate(
    db: &DatabaseConnection,
    token: &str,
) -> Result<Result<Caller, InvalidToken>, DbErr> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Ok(Err(InvalidToken));
    }
    Ok(
        match crate::read::accounts::touch_session(db, &token_hash(token)).await? {
            Some((session_id, rolle_id)) => Ok(Caller {
                session_id,
                rolle_id,
            }),
            None => Err(InvalidToken),
        },
    )
}

/// Salted hashes of the caller's address and user agent (never the raw values).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip_hash: Option<String>,
    pub ua_hash: Option<String>,
}

impl ClientInfo {
    pub fn new(salt: &str, ip: Option<&str>, ua: Option<&str>) -> Self {
        let hash = |v: &str| hex::encode(Sha256::digest(format!("{salt}\u{0}{v}").as_bytes()));
        Self {
            ip_hash: ip.map(hash),
            ua_hash: ua.map(hash),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_only_their_hash_is_kept() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("wb_") && a.len() > 40);
        assert_eq!(ha, token_hash(&a));
        assert!(!ha.contains(&a[3..]));
    }

    #[test]
    fn bearer_headers_and_init_payloads_are_read() {
        assert_eq!(bearer(Some("Bearer wb_x")), Some("wb_x"));
        assert_eq!(bearer(Some("bearer  wb_x ")), Some("wb_x"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        let p = serde_json::json!({"authorization": "Bearer wb_y"});
        assert_eq!(token_from_init(&p).as_deref(), Some("wb_y"));
        assert_eq!(
            token_from_init(&serde_json::json!({"token": "wb_z"})).as_deref(),
            Some("wb_z")
        );
        assert_eq!(token_from_init(&serde_json::json!({})), None);
    }
}
