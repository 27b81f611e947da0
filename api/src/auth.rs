//! Sessions: opaque bearer tokens, stored only as SHA-256 hashes, revocable. Sessions are the
//! API's own login state (not a projection), so the API writes the `sessions` table itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::RngCore;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
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
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE sessions SET last_seen_at = CASE WHEN last_seen_at < now() - interval '1 minute' THEN now() ELSE last_seen_at END \
             WHERE token_hash = $1 AND revoked_at IS NULL RETURNING id, rolle_id",
            [token_hash(token).into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => Ok(Caller {
            session_id: r.try_get("", "id")?,
            rolle_id: r.try_get("", "rolle_id")?,
        }),
        None => Err(InvalidToken),
    })
}

/// Create a session for a role; returns (session id, token).
pub async fn create_session(
    db: &DatabaseConnection,
    rolle_id: Uuid,
    ua_hash: Option<String>,
    label: Option<String>,
) -> Result<(Uuid, String), DbErr> {
    let (token, hash) = new_token();
    let id = Uuid::new_v4();
    let now = Utc::now();
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO sessions (id, rolle_id, token_hash, created_at, last_seen_at, ua_hash, label) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        [id.into(), rolle_id.into(), hash.into(), now.into(), ua_hash.into(), label.into()],
    ))
    .await?;
    Ok((id, token))
}

/// Revoke one session of a role. Returns whether it was live.
pub async fn revoke(
    db: &DatabaseConnection,
    rolle_id: Uuid,
    session_id: Uuid,
) -> Result<bool, DbErr> {
    let r = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND rolle_id = $2 AND revoked_at IS NULL",
            [session_id.into(), rolle_id.into()],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
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
