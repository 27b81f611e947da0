//! `cargo run -p weberei-client-codegen` regenerates clients/rust/src/generated from
//! schema.graphql and clients/operations/*.graphql; `-- --check` only compares and exits 1
//! when the committed files are stale.
//!
//! It must never write outside clients/rust/src/generated, and never write at all with
//! `--check`.

use std::process::ExitCode;

use weberei_client_codegen::{Paths, check, generate, write};

fn main() -> ExitCode {
    let mut check_only = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check_only = true,
            "-h" | "--help" => {
                println!(
                    "usage: weberei-client-codegen [--check]\n\n\
                     Generates clients/rust/src/generated from schema.graphql and\n\
                     clients/operations/*.graphql. --check: change nothing, exit 1 when the\n\
                     committed files differ from what would be generated."
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let paths = Paths::workspace();
    let files = match generate(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("weberei-client-codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check_only {
        return match check(&paths, &files) {
            Ok(d) if d.is_empty() => {
                println!(
                    "{} is up to date ({} files)",
                    paths.out.display(),
                    files.len()
                );
                ExitCode::SUCCESS
            }
            Ok(d) => {
                eprintln!(
                    "{} is stale; run `cargo run -p weberei-client-codegen`:",
                    paths.out.display()
                );
                for line in d {
                    eprintln!("  {line}");
                }
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("weberei-client-codegen: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match write(&paths, &files) {
        Ok(changed) if changed.is_empty() => {
            println!("{} was already up to date", paths.out.display());
            ExitCode::SUCCESS
        }
        Ok(changed) => {
            for c in changed {
                println!("{c}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weberei-client-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
