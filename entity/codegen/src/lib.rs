//! Generates the SeaORM entities in `entity/src/generated/` from the schema the migrations
//! produce: a fresh PostgreSQL database is migrated (`testkit::fresh_database`), then
//! `sea-orm-cli generate entity` (pinned in this crate's manifest, called as a library) writes
//! the entities, which are formatted with the workspace's edition and compared with (or copied
//! over) the committed ones.
//!
//! This crate must never be a dependency of the product: it is a developer tool whose `--check`
//! (and the test `tests/drift.rs`) keeps `entity/` honest. It never edits generated code by hand:
//! what the generator cannot express is documented in `entity/src/lib.rs`, not patched here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sea_orm_cli::{Cli, Commands};

/// The arguments given to `sea-orm-cli generate entity` (besides the database and the output).
pub const GENERATE_ARGS: &[&str] = &[
    "--ignore-tables",
    // events_archive is partitioned and has no primary key (PostgreSQL would need `ts` in it),
    // which SeaORM requires: its entity is written by hand in `entity/src/events_archive.rs`.
    "seaql_migrations,spatial_ref_sys,events_archive",
    "--with-copy-enums",
    "--date-time-crate",
    "chrono",
];

/// The edition the generated files are formatted with (the workspace's).
const EDITION: &str = "2024";

#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("sea-orm-cli arguments: {0}")]
    Args(String),
    #[error("sea-orm-cli generate entity failed: {0}")]
    Generate(String),
    #[error("rustfmt failed on {0}")]
    Rustfmt(PathBuf),
    #[error("i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CodegenError + '_ {
    move |source| CodegenError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the committed entities live.
pub fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/generated")
}

/// Migrate a fresh database and generate the entities from it: file name -> content.
pub async fn generate() -> Result<BTreeMap<String, String>, CodegenError> {
    let db = testkit::fresh_database().await;
    let out = tempfile::tempdir().map_err(io(Path::new("tempdir")))?;
    let result = generate_from(&db.url, out.path()).await;
    db.drop_db().await;
    result?;
    read_dir(out.path())
}

/// Run `sea-orm-cli generate entity -u <url> -o <dir> GENERATE_ARGS` and format the files.
pub async fn generate_from(database_url: &str, dir: &Path) -> Result<(), CodegenError> {
    let dir_str = dir.to_string_lossy().into_owned();
    let mut argv = vec![
        "sea-orm-cli",
        "generate",
        "entity",
        "--database-url",
        database_url,
        "--output-dir",
        &dir_str,
    ];
    argv.extend_from_slice(GENERATE_ARGS);
    let cli = <Cli as clap::Parser>::try_parse_from(&argv)
        .map_err(|e| CodegenError::Args(e.to_string()))?;
    let Commands::Generate { command } = cli.command else {
        return Err(CodegenError::Args("not a generate command".into()));
    };
    sea_orm_cli::run_generate_command(command, false)
        .await
        .map_err(|e| CodegenError::Generate(e.to_string()))?;
    for path in rust_files(dir)? {
        let ok = Command::new("rustfmt")
            .args(["--edition", EDITION])
            .arg(&path)
            .status()
            .map_err(io(&path))?
            .success();
        if !ok {
            return Err(CodegenError::Rustfmt(path));
        }
    }
    Ok(())
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, CodegenError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The `.rs` files of a directory: file name -> content.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, CodegenError> {
    let mut out = BTreeMap::new();
    for path in rust_files(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.insert(name, std::fs::read_to_string(&path).map_err(io(&path))?);
    }
    Ok(out)
}

/// What differs between the committed and the freshly generated files, one line each.
pub fn differences(
    committed: &BTreeMap<String, String>,
    generated: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, content) in generated {
        match committed.get(name) {
            None => out.push(format!("{name}: generated but not committed")),
            Some(c) if c != content => out.push(format!("{name}: differs")),
            Some(_) => {}
        }
    }
    for name in committed.keys() {
        if !generated.contains_key(name) {
            out.push(format!("{name}: committed but no longer generated"));
        }
    }
    out
}

/// Replace the committed files with `generated`.
pub fn write(dir: &Path, generated: &BTreeMap<String, String>) -> Result<(), CodegenError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, content) in generated {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(io(&path))?;
    }
    Ok(())
}
