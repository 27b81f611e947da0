//! Small rules shared by the aggregates, the jobs worker and the API (DESIGN.md §4 "Decay and
//! yarn", "Rooms"). Pure functions: the caller brings the facts (now, the active threads).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::DomainError;

/// Largest content of a design area or an Antrag, as canonical JSON bytes.
pub const CONTENT_MAX_BYTES: usize = 16 * 1024;

/// Content of a design area or an Antrag: a JSON object of at most [`CONTENT_MAX_BYTES`]
/// canonical bytes.
pub fn validate_content(content: &Value) -> Result<(), DomainError> {
    if !content.is_object() {
        return Err(DomainError::validation(
            "content",
            "content must be a JSON object",
        ));
    }
    let size = crate::hash::canonical_json(content).len();
    if size > CONTENT_MAX_BYTES {
        return Err(DomainError::validation(
            "content",
            format!("content is {size} bytes; at most {CONTENT_MAX_BYTES} are allowed"),
        ));
    }
    Ok(())
}

/// How many distinct roles with active threads twist a Knoten into yarn (DESIGN.md §4).
pub const YARN_MIN_ROLES: usize = 3;

/// The distinct roles (sorted) if the active threads come from at least `min_roles` of them,
/// else `None`. Each item is the `from_rolle` of one active thread: three threads of one role
/// are one role, not yarn.
pub fn yarn_roles(
    active_threads: impl IntoIterator<Item = Uuid>,
    min_roles: usize,
) -> Option<Vec<Uuid>> {
    let roles: BTreeSet<Uuid> = active_threads.into_iter().collect();
    (roles.len() >= min_roles).then(|| roles.into_iter().collect())
}

/// Whether something expiring at `expires_at` is due at `now`. The expiry instant itself is
/// due: a thread spun exactly 7 days ago has decayed.
pub fn is_due(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= expires_at
}

/// The @mentions of a text, without the `@`, lowercased, deduplicated, in order of first
/// appearance.
///
/// A mention is `@` followed by a run of letters (any script), digits, `_`, `-` or `.`; dots at
/// its end are punctuation, not part of the name (`@anna.` mentions `anna`). The `@` must start
/// the text or follow whitespace or punctuation, so that an address like `a@b.de` is not a
/// mention. Resolving a token to a role is the caller's job.
pub fn mention_tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts_mention = c == '@' && prev.is_none_or(may_precede_mention);
        prev = Some(c);
        if !starts_mention {
            continue;
        }
        let rest = &text[i + c.len_utf8()..];
        let len: usize = rest
            .chars()
            .take_while(|&ch| is_name_char(ch))
            .map(char::len_utf8)
            .sum();
        let token = rest[..len].trim_end_matches('.').to_lowercase();
        // Skip the token's characters so that `@a@b` does not start a second mention at `b`.
        while chars.peek().is_some_and(|&(j, _)| j < i + 1 + len) {
            prev = chars.next().map(|(_, ch)| ch);
        }
        if !token.is_empty() && !out.contains(&token) {
            out.push(token);
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Whitespace and punctuation, but not a name character (`a@b`, `x.@y`) nor another `@`.
fn may_precede_mention(c: char) -> bool {
    !is_name_char(c) && c != '@'
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn expiry_is_due_at_the_instant_and_not_one_millisecond_before() {
        let expires = t0() + Duration::days(7);
        assert!(is_due(expires, expires));
        assert!(is_due(expires, expires + Duration::milliseconds(1)));
        assert!(!is_due(expires, expires - Duration::milliseconds(1)));
    }

    #[test]
    fn three_threads_of_one_role_are_not_yarn() {
        let a = Uuid::from_u128(1);
        assert_eq!(yarn_roles([a, a, a], YARN_MIN_ROLES), None);
    }

    #[test]
    fn the_third_distinct_role_makes_yarn_with_sorted_roles() {
        let (a, b, c) = (Uuid::from_u128(3), Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(yarn_roles([a, b, a], YARN_MIN_ROLES), None);
        assert_eq!(
            yarn_roles([a, b, a, c], YARN_MIN_ROLES),
            Some(vec![b, c, a])
        );
    }

    #[test]
    fn mentions_are_lowercased_deduplicated_and_in_order() {
        assert_eq!(
            mention_tokens("Hallo @Anna und @jörg_m, @anna nochmal. Danke @Bernd-K."),
            vec!["anna", "jörg_m", "bernd-k"]
        );
        assert_eq!(
            mention_tokens("@start (@paren) »@quote«"),
            vec!["start", "paren", "quote"]
        );
        assert_eq!(mention_tokens("@x.y. fertig"), vec!["x.y"]);
    }

    #[test]
    fn email_addresses_and_lonely_ats_are_not_mentions() {
        assert!(mention_tokens("schreib an a@b.de oder info@weberei.org").is_empty());
        assert!(mention_tokens("@ allein, @@, @. und @").is_empty());
        assert_eq!(mention_tokens("@a@b"), vec!["a"]);
    }

    proptest! {
        #[test]
        fn yarn_roles_is_some_iff_enough_distinct_roles(
            picks in proptest::collection::vec(0u128..6, 0..12),
            min in 1usize..6,
        ) {
            let threads: Vec<Uuid> = picks.iter().map(|&n| Uuid::from_u128(n)).collect();
            let distinct: BTreeSet<Uuid> = threads.iter().copied().collect();
            let got = yarn_roles(threads, min);
            prop_assert_eq!(got.is_some(), distinct.len() >= min);
            if let Some(roles) = got {
                prop_assert_eq!(roles, distinct.into_iter().collect::<Vec<_>>());
            }
        }
    }
}
