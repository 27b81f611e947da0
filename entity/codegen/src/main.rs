//! `cargo run -p weberei-entity-codegen [-- --check]`: regenerate `entity/src/generated/` from a
//! freshly migrated database, or (`--check`) fail when the committed entities differ. Needs the
//! PostgreSQL with PostGIS that the tests use (`TEST_DATABASE_URL` or 127.0.0.1:5432). It must
//! never touch anything but `entity/src/generated/`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let generated = match weberei_entity_codegen::generate().await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("entity codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = weberei_entity_codegen::generated_dir();
    if check {
        let committed = match weberei_entity_codegen::read_dir(&dir) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("entity codegen: {e}");
                return ExitCode::FAILURE;
            }
        };
        let diff = weberei_entity_codegen::differences(&committed, &generated);
        if diff.is_empty() {
            println!("entity/src/generated matches the migrations");
            return ExitCode::SUCCESS;
        }
        for line in diff {
            eprintln!("entity/src/generated/{line}");
        }
        eprintln!("run `cargo run -p weberei-entity-codegen` and commit the result");
        return ExitCode::FAILURE;
    }
    match weberei_entity_codegen::write(&dir, &generated) {
        Ok(()) => {
            println!("wrote {} files to {}", generated.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("entity codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
