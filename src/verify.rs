//! `weberei verify`: re-check every hash chain in the archive, the way any third party could
//! (RFC 8785 + SHA-256 over the stored JSON), reading the archive through the `entity` crate
//! in keyset pages of (aggregate, stream, sequence).

use anyhow::{Result, bail};
use entity::events_archive;
use sea_orm::sea_query::Expr;
use sea_orm::{DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// Archive rows read per query (keyset pages in chain order).
const PAGE: u64 = 5000;

pub async fn run(db: &DatabaseConnection) -> Result<()> {
    let mut after: (Uuid, String, i64) = (Uuid::nil(), String::new(), -1);
    let mut current: Option<Uuid> = None;
    let mut chain: Vec<serde_json::Value> = Vec::new();
    let (mut aggregates, mut events, mut broken) = (0u64, 0u64, 0u64);
    loop {
        let rows: Vec<(Uuid, String, i64, serde_json::Value)> = events_archive::Entity::find()
            .select_only()
            .columns([
                events_archive::Column::AggregateId,
                events_archive::Column::Stream,
                events_archive::Column::StreamSeq,
                events_archive::Column::Envelope,
            ])
            .filter(
                Expr::tuple([
                    Expr::col(events_archive::Column::AggregateId).into(),
                    Expr::col(events_archive::Column::Stream).into(),
                    Expr::col(events_archive::Column::StreamSeq).into(),
                ])
                .gt(Expr::tuple([
                    Expr::val(after.0).into(),
                    Expr::val(after.1.clone()).into(),
                    Expr::val(after.2).into(),
                ])),
            )
            .order_by_asc(events_archive::Column::AggregateId)
            .order_by_asc(events_archive::Column::Stream)
            .order_by_asc(events_archive::Column::StreamSeq)
            .limit(PAGE)
            .into_tuple()
            .all(db)
            .await?;
        if rows.is_empty() {
            break;
        }
        for (id, stream, seq, envelope) in rows {
            after = (id, stream, seq);
            if current != Some(id) {
                broken += check(current, &chain);
                chain.clear();
                current = Some(id);
                aggregates += 1;
            }
            chain.push(envelope);
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
