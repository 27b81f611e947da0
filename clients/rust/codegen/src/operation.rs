//! One operation: what the generator needs to know of it beyond graphql_client's output, and
//! graphql_client's module for it plus our `QueryOperation`/`MutationOperation`/
//! `SubscriptionOperation` impl.

use std::collections::BTreeMap;
use std::path::Path;

use graphql_client_codegen::{CodegenMode, GraphQLClientCodegenOptions};
use graphql_parser::query::{OperationDefinition, Selection, Type, Value, VariableDefinition};
use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::schema_info::SchemaInfo;
use crate::{CodegenError, Paths};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Query,
    Mutation,
    Subscription,
}

/// What the generator needs to know about one operation beyond graphql_client's output.
pub(crate) struct OperationInfo {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Response key of the (single) root field.
    pub(crate) root_key: String,
    /// Name of the root field.
    pub(crate) root_field: String,
    /// Variables bound to the root field's arguments: argument -> variable.
    pub(crate) argument_variables: BTreeMap<String, String>,
    pub(crate) variables: Vec<VariableDefinition<'static, String>>,
}

impl OperationInfo {
    pub(crate) fn new(
        op: &OperationDefinition<'static, String>,
        path: &Path,
    ) -> Result<Self, CodegenError> {
        let (kind, name, variables, selection) = match op {
            OperationDefinition::Query(q) => (
                Kind::Query,
                &q.name,
                &q.variable_definitions,
                &q.selection_set,
            ),
            OperationDefinition::Mutation(m) => (
                Kind::Mutation,
                &m.name,
                &m.variable_definitions,
                &m.selection_set,
            ),
            OperationDefinition::Subscription(s) => (
                Kind::Subscription,
                &s.name,
                &s.variable_definitions,
                &s.selection_set,
            ),
            OperationDefinition::SelectionSet(_) => {
                return Err(CodegenError::Invalid(format!(
                    "{}: anonymous operations cannot be generated; name every operation",
                    path.display()
                )));
            }
        };
        let name = name.clone().ok_or_else(|| {
            CodegenError::Invalid(format!(
                "{}: anonymous operations cannot be generated; name every operation",
                path.display()
            ))
        })?;
        let fields: Vec<_> = selection
            .items
            .iter()
            .filter_map(|s| match s {
                Selection::Field(f) if f.name != "__typename" => Some(f),
                _ => None,
            })
            .collect();
        let [root] = fields.as_slice() else {
            return Err(CodegenError::Invalid(format!(
                "operation {name} must select exactly one root field (one operation per root field)"
            )));
        };
        let argument_variables = root
            .arguments
            .iter()
            .filter_map(|(arg, value)| match value {
                Value::Variable(v) => Some((arg.clone(), v.clone())),
                _ => None,
            })
            .collect();
        Ok(OperationInfo {
            name,
            kind,
            root_key: root.alias.clone().unwrap_or_else(|| root.name.clone()),
            root_field: root.name.clone(),
            argument_variables,
            variables: variables.clone(),
        })
    }

    fn variable(&self, name: &str) -> Option<&VariableDefinition<'static, String>> {
        self.variables.iter().find(|v| v.name == name)
    }
}

/// graphql_client's module for one operation plus our trait impl.
pub(crate) fn generate_operation(
    paths: &Paths,
    schema: &SchemaInfo,
    info: &OperationInfo,
    document: &str,
) -> Result<TokenStream, CodegenError> {
    let mut options = GraphQLClientCodegenOptions::new(CodegenMode::Cli);
    options.set_operation_name(info.name.clone());
    options.set_normalization(graphql_client_codegen::normalization::Normalization::Rust);
    options.set_module_visibility(syn::parse_quote!(pub));
    options.set_custom_scalars_module(syn::parse_quote!(crate::scalars));
    options.set_extern_enums(schema.enums.iter().map(|e| e.name.clone()).collect());
    options.set_response_derives("Debug,Clone,PartialEq,Serialize".to_owned());
    options.set_variables_derives("Debug,Clone,PartialEq,Deserialize".to_owned());
    options.set_skip_serializing_none(true);
    options.set_fragments_other_variant(true);
    let module = graphql_client_codegen::generate_module_token_stream_from_string(
        document,
        &paths.schema,
        options,
    )
    .map_err(|e| CodegenError::Codegen {
        operation: info.name.clone(),
        message: e.to_string(),
    })?;

    let op = format_ident!("{}", info.name.to_upper_camel_case());
    let module_ident = format_ident!("{}", info.name.to_snake_case());
    let root_key = &info.root_key;
    let imp = match info.kind {
        Kind::Query => quote! {
            impl crate::QueryOperation for #op {
                const ROOT_FIELD: &'static str = #root_key;
            }
        },
        Kind::Mutation => {
            let key = idempotency_key_access(schema, info)?;
            quote! {
                impl crate::MutationOperation for #op {
                    const ROOT_FIELD: &'static str = #root_key;
                    fn idempotency_key(variables: &mut #module_ident::Variables) -> Option<&mut String> {
                        #key
                    }
                }
            }
        }
        Kind::Subscription => {
            let after = match info.argument_variables.get("after") {
                Some(v) => quote!(Some(#v)),
                None => quote!(None),
            };
            let has_cursor = schema.field_has_cursor(&info.root_field);
            if info.argument_variables.contains_key("after") && !has_cursor {
                return Err(CodegenError::Invalid(format!(
                    "subscription {} takes `after` but its type has no `cursor` field",
                    info.name
                )));
            }
            quote! {
                impl crate::SubscriptionOperation for #op {
                    const ROOT_FIELD: &'static str = #root_key;
                    const AFTER_VARIABLE: Option<&'static str> = #after;
                }
            }
        }
    };
    Ok(quote! {
        #module
        #imp
    })
}

/// The body of `MutationOperation::idempotency_key`: a path to the `idempotencyKey` field of
/// the input object bound to one of the root field's arguments, or `None`.
pub(crate) fn idempotency_key_access(
    schema: &SchemaInfo,
    info: &OperationInfo,
) -> Result<TokenStream, CodegenError> {
    for variable in info.argument_variables.values() {
        let Some(def) = info.variable(variable) else {
            return Err(CodegenError::Invalid(format!(
                "operation {} uses undefined variable ${variable}",
                info.name
            )));
        };
        let (type_name, required) = match &def.var_type {
            Type::NonNullType(inner) => match inner.as_ref() {
                Type::NamedType(n) => (n.clone(), true),
                _ => continue,
            },
            Type::NamedType(n) => (n.clone(), false),
            Type::ListType(_) => continue,
        };
        match schema.inputs.get(&type_name) {
            Some(true) => {}
            Some(false) => {
                return Err(CodegenError::Invalid(format!(
                    "input {type_name} has an idempotencyKey that is not `String!`"
                )));
            }
            None => continue,
        }
        let field = format_ident!("{}", rust_field(variable));
        return Ok(if required {
            quote!(Some(&mut variables.#field.idempotency_key))
        } else {
            quote!(variables.#field.as_mut().map(|input| &mut input.idempotency_key))
        });
    }
    Ok(quote!({
        let _ = variables;
        None
    }))
}

/// graphql_client's name for a variable's field (snake case, keywords suffixed with `_`).
pub(crate) fn rust_field(name: &str) -> String {
    let snake = name.to_snake_case();
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
        "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
    ];
    if KEYWORDS.contains(&snake.as_str()) {
        format!("{snake}_")
    } else {
        snake
    }
}
