//! The committed entities are what `sea-orm-cli generate entity` makes of the migrated schema.

// Integration test: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weberei_entity_codegen::{differences, generate, generated_dir, read_dir};

#[tokio::test]
async fn committed_entities_match_what_the_migrations_generate() {
    let generated = generate().await.unwrap();
    assert!(
        generated.contains_key("knoten.rs") && generated.contains_key("sea_orm_active_enums.rs"),
        "the generator made {:?}",
        generated.keys()
    );
    let committed = read_dir(&generated_dir()).unwrap();
    let diff = differences(&committed, &generated);
    assert!(
        diff.is_empty(),
        "entity/src/generated drifted from the migrations: {diff:?}; run `cargo run -p weberei-entity-codegen` and commit"
    );
}

#[test]
fn a_changed_or_missing_file_is_reported() {
    let mut a = std::collections::BTreeMap::new();
    a.insert("knoten.rs".to_owned(), "x".to_owned());
    a.insert("old.rs".to_owned(), "y".to_owned());
    let mut b = std::collections::BTreeMap::new();
    b.insert("knoten.rs".to_owned(), "z".to_owned());
    b.insert("new.rs".to_owned(), "w".to_owned());
    let diff = differences(&a, &b);
    assert_eq!(
        diff,
        vec![
            "knoten.rs: differs",
            "new.rs: generated but not committed",
            "old.rs: committed but no longer generated"
        ]
    );
}
