//! `aggregate_heads`: the last archived event of every aggregate, i.e. the head of its hash
//! chain. The projection worker checks an incoming event's `prev_hash` against `last_hash`
//! and advances the head in the same transaction as the archive row.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AggregateHeads::Table)
                    .col(
                        ColumnDef::new(AggregateHeads::AggregateId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AggregateHeads::AggregateType)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AggregateHeads::LastHash).text().not_null())
                    .col(
                        ColumnDef::new(AggregateHeads::LastEventId)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AggregateHeads::LastSeq)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AggregateHeads::Stream).text().not_null())
                    .col(
                        ColumnDef::new(AggregateHeads::EventCount)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AggregateHeads::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(AggregateHeads::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AggregateHeads {
    Table,
    AggregateId,
    AggregateType,
    LastHash,
    LastEventId,
    LastSeq,
    Stream,
    EventCount,
    UpdatedAt,
}
