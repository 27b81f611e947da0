//! Shared helpers of the Webrat tests (`governance.rs`, `governance_live.rs`): a server whose
//! Anträge may be decided 2 s after filing, verified roles, and the Webrat's mutations.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Server, server_with_config};

/// Weimar, where `common::Server::register` homes every role.
pub const LAT: f64 = 50.98;
pub const LNG: f64 = 11.32;

pub const FILE: &str = "mutation($i: FileAntragInput!) { fileAntrag(input: $i) { antrag { id status weberei webereiLat webereiLng title decisionDeadline creator { id } } event { id type hash streamSequence } replayed } }";
pub const VOTE: &str = "mutation($i: CastStimmeInput!) { castStimme(input: $i) { stimme { antragId rolleId vote } event { type } replayed } }";
pub const OBJECT: &str = "mutation($i: ObjectToAntragInput!) { objectToAntrag(input: $i) { objection { reason rolle { id } } event { type } replayed } }";
pub const DELEGATE: &str = "mutation($i: DelegateInput!) { delegate(input: $i) { delegation { fromId toId validUntil active } replacedId event { type } replayed } }";
pub const REVOKE: &str = "mutation($i: RevokeDelegationInput!) { revokeDelegation(input: $i) { revokedToId event { type } } }";
pub const CONFIRM: &str = "mutation($i: ConfirmVerificationInput!) { confirmVerification(input: $i) { rolleId verified event { type } verifiedEvent { type } replayed } }";
pub const RAISE: &str = "mutation($i: RaiseFlagInput!) { raiseFlag(input: $i) { flag { id targetKind targetId reason authorOfTargetId outcome } event { type } } }";
pub const RESOLVE: &str = "mutation($i: ResolveFlagInput!) { resolveFlag(input: $i) { flag { id outcome resolutionReason resolvedById } event { type } } }";
pub const ANTRAG: &str = "query($id: ID!) { antrag(id: $id) { id status title myVote objections { reason rolleId rolle { id } } votes { rolleId vote } tally { ja nein enthaltung participation delegated decided } audit { status recomputed discrepancy participation activeRoles quorumPercent quorumReached counted { voiceId rolleId vote delegatedFromId } } } }";

pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server whose Anträge may be decided 2 s after filing.
pub async fn server() -> Server {
    server_with_config(
        None,
        api::ApiConfig {
            ws_tick: Duration::from_millis(100),
            min_decision_period: chrono::Duration::seconds(2),
            ..Default::default()
        },
    )
    .await
}

/// The id of the token's role, once the projection has it.
pub async fn rolle_id(s: &Server, token: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.gql_as(token, "{ me { id } }", json!({})).await;
        if let Some(id) = r["data"]["me"]["id"].as_str() {
            return id.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the role to be projected: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn is_verified(s: &Server, token: &str) -> bool {
    s.gql_as(token, "{ me { verification { verified } } }", json!({}))
        .await["data"]["me"]["verification"]["verified"]
        == true
}

/// Verify a role the way `weberei admin verify` does, and wait for the projection.
pub async fn admin_verify(s: &Server, token: &str) -> String {
    let id = rolle_id(s, token).await;
    let done = api::admin::verify_rolle(&s.bus, Uuid::parse_str(&id).unwrap(), "test")
        .await
        .unwrap();
    assert!(done.verified.is_some());
    until("the verification to be projected", || is_verified(s, token)).await;
    id
}

/// A new role, verified by an admin action: (token, id).
pub async fn verified_role(s: &Server, name: &str) -> (String, String) {
    let token = s.register(name).await;
    let id = admin_verify(s, &token).await;
    (token, id)
}

pub fn in_secs(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

pub async fn file(s: &Server, token: &str, key: &str, title: &str, deadline: &str) -> Value {
    s.gql_as(
        token,
        FILE,
        json!({"i": {"idempotencyKey": key, "title": title, "content": {"text": "Mehr Bänke"}, "decisionDeadline": deadline}}),
    )
    .await
}

pub async fn filed(s: &Server, token: &str, key: &str, title: &str, deadline: &str) -> String {
    let r = file(s, token, key, title, deadline).await;
    let id = r["data"]["fileAntrag"]["antrag"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("fileAntrag failed: {r}"))
        .to_owned();
    until("the Antrag to be projected", || async {
        s.gql(
            "query($id: ID!) { antrag(id: $id) { id } }",
            json!({"id": id}),
        )
        .await["data"]["antrag"]["id"]
            == id.as_str()
    })
    .await;
    id
}

pub async fn antrag(s: &Server, token: &str, id: &str) -> Value {
    let r = s.gql_as(token, ANTRAG, json!({"id": id})).await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["antrag"].clone()
}

pub async fn vote(s: &Server, token: &str, key: &str, antrag: &str, v: &str) -> Value {
    s.gql_as(
        token,
        VOTE,
        json!({"i": {"idempotencyKey": key, "antragId": antrag, "vote": v}}),
    )
    .await
}

pub async fn delegate(s: &Server, token: &str, key: &str, to: &str, valid_until: String) -> Value {
    s.gql_as(
        token,
        DELEGATE,
        json!({"i": {"idempotencyKey": key, "to": to, "validUntil": valid_until}}),
    )
    .await
}

pub async fn confirm(s: &Server, token: &str, key: &str, who: &str) -> Value {
    s.gql_as(
        token,
        CONFIRM,
        json!({"i": {"idempotencyKey": key, "rolleId": who}}),
    )
    .await
}

pub async fn raise(s: &Server, token: &str, key: &str, kind: &str, id: &str) -> Value {
    s.gql_as(
        token,
        RAISE,
        json!({"i": {"idempotencyKey": key, "targetKind": kind, "targetId": id, "reason": "Werbung"}}),
    )
    .await
}

pub async fn resolve(s: &Server, token: &str, key: &str, flag: &str, outcome: &str) -> Value {
    s.gql_as(
        token,
        RESOLVE,
        json!({"i": {"idempotencyKey": key, "flagId": flag, "outcome": outcome, "reason": "Geprüft"}}),
    )
    .await
}

pub fn bbox(lat: f64, lng: f64) -> Value {
    json!({"west": lng - 0.1, "south": lat - 0.1, "east": lng + 0.1, "north": lat + 0.1})
}
