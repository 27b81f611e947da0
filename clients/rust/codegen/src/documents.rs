//! The operation documents (`clients/operations/*.graphql`): reading them, the source text of
//! each definition, and the document of one operation with the fragments it uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use graphql_parser::query::{
    Definition, Document, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
};

use crate::{CodegenError, read};

/// One operations file: its definitions and each definition's source text.
pub(crate) struct SourceDocument {
    pub(crate) path: PathBuf,
    pub(crate) doc: Document<'static, String>,
    /// The source text of each definition (same order as `doc.definitions`), without the
    /// comments and blank lines that follow it.
    pub(crate) texts: Vec<String>,
}

/// The operation documents, sorted by file name.
pub(crate) fn read_documents(dir: &Path) -> Result<Vec<SourceDocument>, CodegenError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CodegenError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CodegenError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "graphql") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(CodegenError::Invalid(format!(
            "no *.graphql documents in {}",
            dir.display()
        )));
    }
    let mut docs = Vec::new();
    for path in paths {
        let text = read(&path)?;
        let doc = graphql_parser::parse_query::<String>(&text)
            .map_err(|e| CodegenError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?
            .into_static();
        let texts = definition_texts(&text, &doc);
        docs.push(SourceDocument { path, doc, texts });
    }
    Ok(docs)
}

/// The source text of each definition: from its start to the next definition's start, less
/// the trailing comment and blank lines (they belong to the next definition).
pub(crate) fn definition_texts(text: &str, doc: &Document<'static, String>) -> Vec<String> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |pos: graphql_parser::Pos| -> usize {
        let line_start = line_starts
            .get(pos.line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        text[line_start..]
            .char_indices()
            .nth(pos.column.saturating_sub(1))
            .map_or(text.len(), |(i, _)| line_start + i)
    };
    let starts: Vec<usize> = doc
        .definitions
        .iter()
        .map(|def| {
            offset(match def {
                Definition::Fragment(f) => f.position,
                Definition::Operation(OperationDefinition::Query(q)) => q.position,
                Definition::Operation(OperationDefinition::Mutation(m)) => m.position,
                Definition::Operation(OperationDefinition::Subscription(s)) => s.position,
                Definition::Operation(OperationDefinition::SelectionSet(s)) => s.span.0,
            })
        })
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = starts.get(i + 1).copied().unwrap_or(text.len()).max(start);
            let mut lines: Vec<&str> = text[start..end].lines().collect();
            while lines
                .last()
                .is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                lines.pop();
            }
            let mut out = lines.join("\n");
            out.push('\n');
            out
        })
        .collect()
}

/// Fragments by name, with their source text.
pub(crate) type Fragments = BTreeMap<String, (FragmentDefinition<'static, String>, String)>;

/// The operation's source text and the fragments it uses (transitively, sorted by name).
pub(crate) fn operation_document(
    op: &OperationDefinition<'static, String>,
    op_text: &str,
    name: &str,
    fragments: &Fragments,
) -> Result<String, CodegenError> {
    let mut used = BTreeSet::new();
    let mut todo = Vec::new();
    let root = match op {
        OperationDefinition::Query(q) => &q.selection_set,
        OperationDefinition::Mutation(m) => &m.selection_set,
        OperationDefinition::Subscription(s) => &s.selection_set,
        OperationDefinition::SelectionSet(s) => s,
    };
    spreads(root, &mut todo);
    while let Some(f) = todo.pop() {
        if !used.insert(f.clone()) {
            continue;
        }
        let (def, _) = fragments.get(&f).ok_or_else(|| {
            CodegenError::Invalid(format!("operation {name} uses unknown fragment {f}"))
        })?;
        spreads(&def.selection_set, &mut todo);
    }
    let mut text = op_text.to_owned();
    for f in &used {
        if let Some((_, fragment_text)) = fragments.get(f) {
            text.push('\n');
            text.push_str(fragment_text);
        }
    }
    Ok(text)
}

pub(crate) fn spreads(set: &SelectionSet<'static, String>, out: &mut Vec<String>) {
    for item in &set.items {
        match item {
            Selection::Field(f) => spreads(&f.selection_set, out),
            Selection::FragmentSpread(s) => out.push(s.fragment_name.clone()),
            Selection::InlineFragment(i) => spreads(&i.selection_set, out),
        }
    }
}
