//! Small SeaORM helpers the domain modules share for their single-row writes: insert a row
//! unless it exists, and map a domain enum's name onto the entity's enum.

use sea_orm::sea_query::{IntoIden, OnConflict};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, DatabaseTransaction, DbErr, EntityTrait, Insert, IntoActiveModel,
};

/// Insert one row unless it exists (`ON CONFLICT (conflict) DO NOTHING`, or on any unique
/// constraint without a column).
pub(super) async fn insert_new<A, C>(
    txn: &DatabaseTransaction,
    insert: Insert<A>,
    conflict: Option<C>,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    C: IntoIden,
{
    let on_conflict = match conflict {
        Some(column) => OnConflict::column(column).do_nothing().to_owned(),
        None => OnConflict::new().do_nothing().to_owned(),
    };
    insert
        .on_conflict(on_conflict)
        .exec_without_returning(txn)
        .await
        .map(drop)
}

/// The entity's enum for a domain name (`vote`, `antrag_status`): the names are the same.
pub(super) fn db_enum<E: ActiveEnum<Value = String>>(name: &str) -> Result<E, DbErr> {
    E::try_from_value(&name.to_owned()).map_err(|e| DbErr::Custom(format!("{name}: {e}")))
}
