//! What the generator needs to know of the schema: its enums (generated once, shared by every
//! operation), which inputs carry an `idempotencyKey`, and which subscriptions are resumable.

use std::collections::{BTreeMap, BTreeSet};

use graphql_parser::schema::{self, TypeDefinition};
use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

pub(crate) struct EnumInfo {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) values: Vec<(String, Option<String>)>,
}

pub(crate) struct SchemaInfo {
    pub(crate) enums: Vec<EnumInfo>,
    /// Input objects with an `idempotencyKey`: whether it is `String!`.
    pub(crate) inputs: BTreeMap<String, bool>,
    /// Subscription root fields whose type has a `cursor` field.
    pub(crate) cursor_fields: BTreeSet<String>,
}

impl SchemaInfo {
    pub(crate) fn new(doc: &schema::Document<'static, String>) -> SchemaInfo {
        let mut enums = Vec::new();
        let mut inputs = BTreeMap::new();
        let mut objects: BTreeMap<String, &schema::ObjectType<'static, String>> = BTreeMap::new();
        let mut subscription_root = "Subscription".to_owned();
        for def in &doc.definitions {
            match def {
                schema::Definition::SchemaDefinition(s) => {
                    if let Some(sub) = &s.subscription {
                        subscription_root.clone_from(sub);
                    }
                }
                schema::Definition::TypeDefinition(TypeDefinition::Enum(e)) => {
                    enums.push(EnumInfo {
                        name: e.name.clone(),
                        description: e.description.clone(),
                        values: e
                            .values
                            .iter()
                            .map(|v| (v.name.clone(), v.description.clone()))
                            .collect(),
                    });
                }
                schema::Definition::TypeDefinition(TypeDefinition::InputObject(i)) => {
                    if let Some(f) = i.fields.iter().find(|f| f.name == "idempotencyKey") {
                        let string_required = matches!(&f.value_type,
                            schema::Type::NonNullType(inner)
                                if matches!(inner.as_ref(), schema::Type::NamedType(n) if n == "String"));
                        inputs.insert(i.name.clone(), string_required);
                    }
                }
                schema::Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                    objects.insert(o.name.clone(), o);
                }
                _ => {}
            }
        }
        let mut cursor_fields = BTreeSet::new();
        if let Some(root) = objects.get(&subscription_root) {
            for field in &root.fields {
                let mut ty = &field.field_type;
                while let schema::Type::NonNullType(inner) = ty {
                    ty = inner;
                }
                if let schema::Type::NamedType(n) = ty
                    && objects
                        .get(n)
                        .is_some_and(|o| o.fields.iter().any(|f| f.name == "cursor"))
                {
                    cursor_fields.insert(field.name.clone());
                }
            }
        }
        enums.sort_by(|a, b| a.name.cmp(&b.name));
        SchemaInfo {
            enums,
            inputs,
            cursor_fields,
        }
    }

    pub(crate) fn field_has_cursor(&self, root_field: &str) -> bool {
        self.cursor_fields.contains(root_field)
    }

    /// One Rust enum per schema enum, shared by every operation. An unknown value (a newer
    /// server) deserializes to `Unknown`.
    pub(crate) fn enum_items(&self) -> TokenStream {
        let mut out = TokenStream::new();
        for e in &self.enums {
            let name = format_ident!("{}", e.name.to_upper_camel_case());
            let doc = doc_attr(e.description.as_deref());
            let variants = e.values.iter().map(|(value, description)| {
                let variant = format_ident!("{}", value.to_upper_camel_case());
                let doc = doc_attr(description.as_deref());
                quote! {
                    #doc
                    #[serde(rename = #value)]
                    #variant,
                }
            });
            let as_str = e.values.iter().map(|(value, _)| {
                let variant = format_ident!("{}", value.to_upper_camel_case());
                quote!(#name::#variant => #value,)
            });
            out.extend(quote! {
                #doc
                #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
                pub enum #name {
                    #(#variants)*
                    /// A value this client does not know (the server is newer). Never send it.
                    #[serde(other)]
                    Unknown,
                }

                impl #name {
                    /// The value as the schema spells it.
                    pub fn as_str(&self) -> &'static str {
                        match self {
                            #(#as_str)*
                            #name::Unknown => "UNKNOWN",
                        }
                    }
                }

                impl std::fmt::Display for #name {
                    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(self.as_str())
                    }
                }
            });
        }
        out
    }
}

pub(crate) fn doc_attr(description: Option<&str>) -> TokenStream {
    match description {
        Some(d) => {
            let lines = d.lines().map(|l| format!(" {}", l.trim_end()));
            quote!(#(#[doc = #lines])*)
        }
        None => TokenStream::new(),
    }
}
