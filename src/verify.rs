//! `weberei verify`: re-check every hash chain in the archive, the way any third party could
//! (RFC 8785 + SHA-256 over the stored JSON).

use anyhow::{Result, bail};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

pub async fn run(db: &DatabaseConnection) -> Result<()> {
    let mut after: (Uuid, String, i64) = (Uuid::nil(), String::new(), -1);
    let mut current: Option<Uuid> = None;
    let mut chain: Vec<serde_json::Value> = Vec::new();
    let (mut aggregates, mut events, mut broken) = (0u64, 0u64, 0u64);
    loop {
        let rows = db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT aggregate_id, stream, stream_seq, envelope::text AS envelope FROM events_archive \
                 WHERE (aggregate_id, stream, stream_seq) > ($1, $2, $3) \
                 ORDER BY aggregate_id, stream, stream_seq LIMIT 5000",
                [after.0.into(), after.1.clone().into(), after.2.into()],
            ))
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let id: Uuid = row.try_get("", "aggregate_id")?;
            let stream: String = row.try_get("", "stream")?;
            let seq: i64 = row.try_get("", "stream_seq")?;
            let envelope: String = row.try_get("", "envelope")?;
            after = (id, stream, seq);
            if current != Some(id) {
                broken += check(current, &chain);
                chain.clear();
                current = Some(id);
                aggregates += 1;
            }
            chain.push(serde_json::from_str(&envelope)?);
            events += 1;
        }
    }
    broken += check(current, &chain);
    println!("{events} events in {aggregates} aggregates checked, {broken} broken chains");
    if broken > 0 {
        bail!("{broken} broken chains");
    }
    Ok(())
}

fn check(id: Option<Uuid>, chain: &[serde_json::Value]) -> u64 {
    match (id, domain::verify_chain(chain)) {
        (Some(id), Err(brk)) => {
            println!("aggregate {id}: {brk}");
            1
        }
        _ => 0,
    }
}
