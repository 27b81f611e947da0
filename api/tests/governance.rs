#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat through GraphQL against real NATS, PostgreSQL and Redis with the projection
//! worker running: Anträge, objections, votes, delegation, peer verification, moderation, the
//! audit of a decision (taken by the jobs worker), and every refusal coded.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Server, code, server_with_config};
use serde_json::{Value, json};
use uuid::Uuid;

/// Weimar, where `common::Server::register` homes every role.
const LAT: f64 = 50.98;
const LNG: f64 = 11.32;

const FILE: &str = "mutation($i: FileAntragInput!) { fileAntrag(input: $i) { antrag { id status weberei webereiLat webereiLng title decisionDeadline creator { id } } event { id type hash streamSequence } replayed } }";
const VOTE: &str = "mutation($i: CastStimmeInput!) { castStimme(input: $i) { stimme { antragId rolleId vote } event { type } replayed } }";
const OBJECT: &str = "mutation($i: ObjectToAntragInput!) { objectToAntrag(input: $i) { objection { reason rolle { id } } event { type } replayed } }";
const DELEGATE: &str = "mutation($i: DelegateInput!) { delegate(input: $i) { delegation { fromId toId validUntil active } replacedId event { type } replayed } }";
const REVOKE: &str = "mutation($i: RevokeDelegationInput!) { revokeDelegation(input: $i) { revokedToId event { type } } }";
const CONFIRM: &str = "mutation($i: ConfirmVerificationInput!) { confirmVerification(input: $i) { rolleId verified event { type } verifiedEvent { type } replayed } }";
const RAISE: &str = "mutation($i: RaiseFlagInput!) { raiseFlag(input: $i) { flag { id targetKind targetId reason authorOfTargetId outcome } event { type } } }";
const RESOLVE: &str = "mutation($i: ResolveFlagInput!) { resolveFlag(input: $i) { flag { id outcome resolutionReason resolvedById } event { type } } }";
const ANTRAG: &str = "query($id: ID!) { antrag(id: $id) { id status title myVote objections { reason rolleId rolle { id } } votes { rolleId vote } tally { ja nein enthaltung participation delegated decided } audit { status recomputed discrepancy participation activeRoles quorumPercent quorumReached counted { voiceId rolleId vote delegatedFromId } } } }";

async fn until<F, Fut>(what: &str, mut f: F)
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
async fn server() -> Server {
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
async fn rolle_id(s: &Server, token: &str) -> String {
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

async fn is_verified(s: &Server, token: &str) -> bool {
    s.gql_as(token, "{ me { verification { verified } } }", json!({}))
        .await["data"]["me"]["verification"]["verified"]
        == true
}

/// Verify a role the way `weberei admin verify` does, and wait for the projection.
async fn admin_verify(s: &Server, token: &str) -> String {
    let id = rolle_id(s, token).await;
    let done = api::admin::verify_rolle(&s.bus, Uuid::parse_str(&id).unwrap(), "test")
        .await
        .unwrap();
    assert!(done.verified.is_some());
    until("the verification to be projected", || is_verified(s, token)).await;
    id
}

/// A new role, verified by an admin action: (token, id).
async fn verified_role(s: &Server, name: &str) -> (String, String) {
    let token = s.register(name).await;
    let id = admin_verify(s, &token).await;
    (token, id)
}

fn in_secs(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

async fn file(s: &Server, token: &str, key: &str, title: &str, deadline: &str) -> Value {
    s.gql_as(
        token,
        FILE,
        json!({"i": {"idempotencyKey": key, "title": title, "content": {"text": "Mehr Bänke"}, "decisionDeadline": deadline}}),
    )
    .await
}

async fn filed(s: &Server, token: &str, key: &str, title: &str, deadline: &str) -> String {
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

async fn antrag(s: &Server, token: &str, id: &str) -> Value {
    let r = s.gql_as(token, ANTRAG, json!({"id": id})).await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["antrag"].clone()
}

async fn vote(s: &Server, token: &str, key: &str, antrag: &str, v: &str) -> Value {
    s.gql_as(
        token,
        VOTE,
        json!({"i": {"idempotencyKey": key, "antragId": antrag, "vote": v}}),
    )
    .await
}

async fn delegate(s: &Server, token: &str, key: &str, to: &str, valid_until: String) -> Value {
    s.gql_as(
        token,
        DELEGATE,
        json!({"i": {"idempotencyKey": key, "to": to, "validUntil": valid_until}}),
    )
    .await
}

async fn confirm(s: &Server, token: &str, key: &str, who: &str) -> Value {
    s.gql_as(
        token,
        CONFIRM,
        json!({"i": {"idempotencyKey": key, "rolleId": who}}),
    )
    .await
}

async fn raise(s: &Server, token: &str, key: &str, kind: &str, id: &str) -> Value {
    s.gql_as(
        token,
        RAISE,
        json!({"i": {"idempotencyKey": key, "targetKind": kind, "targetId": id, "reason": "Werbung"}}),
    )
    .await
}

async fn resolve(s: &Server, token: &str, key: &str, flag: &str, outcome: &str) -> Value {
    s.gql_as(
        token,
        RESOLVE,
        json!({"i": {"idempotencyKey": key, "flagId": flag, "outcome": outcome, "reason": "Geprüft"}}),
    )
    .await
}

fn bbox(lat: f64, lng: f64) -> Value {
    json!({"west": lng - 0.1, "south": lat - 0.1, "east": lng + 0.1, "north": lat + 0.1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_roles_file_antraege_that_the_webrat_panel_lists_and_others_object_to() {
    let s = server().await;
    let (a, a_id) = verified_role(&s, "Anna").await;
    let (c, c_id) = verified_role(&s, "Carl").await;
    let unverified = s.register("Udo").await;
    rolle_id(&s, &unverified).await;

    let refused = file(&s, &unverified, "u1", "Mehr Bänke", &in_secs(3600)).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let too_soon = file(&s, &a, "a0", "Mehr Bänke", &in_secs(1)).await;
    assert_eq!(code(&too_soon), "VALIDATION", "{too_soon}");
    assert_eq!(
        too_soon["errors"][0]["extensions"]["field"], "decisionDeadline",
        "{too_soon}"
    );
    let untitled = file(&s, &a, "a00", "  ", &in_secs(3600)).await;
    assert_eq!(code(&untitled), "VALIDATION", "{untitled}");

    let deadline = in_secs(3600);
    let first = file(&s, &a, "a1", "Mehr Bänke am Frauenplan", &deadline).await;
    let payload = &first["data"]["fileAntrag"];
    assert_eq!(payload["antrag"]["status"], "OFFEN", "{first}");
    assert_eq!(payload["antrag"]["creator"]["id"], a_id.as_str(), "{first}");
    assert_eq!(payload["event"]["type"], "AntragGestellt");
    assert_eq!(payload["replayed"], false);
    let weberei = payload["antrag"]["weberei"].as_str().unwrap().to_owned();
    let home = h3o::LatLng::new(LAT, LNG)
        .unwrap()
        .to_cell(h3o::Resolution::Seven);
    assert_eq!(weberei, home.to_string(), "filed in the filer's Weberei");
    let id = payload["antrag"]["id"].as_str().unwrap().to_owned();
    let again = file(&s, &a, "a1", "Mehr Bänke am Frauenplan", &deadline).await;
    assert_eq!(again["data"]["fileAntrag"]["replayed"], true, "{again}");
    assert_eq!(again["data"]["fileAntrag"]["antrag"]["id"], id.as_str());
    until("the Antrag to be projected", || async {
        antrag(&s, &a, &id).await["id"] == id.as_str()
    })
    .await;

    // The Webrat panel: by the Weberei's centre, by status, paged.
    let other = filed(&s, &c, "c1", "Trinkbrunnen am Markt", &in_secs(7200)).await;
    let panel = s
        .gql_as(
            "",
            "query($b: BboxInput!, $s: AntragStatus) { antraege(bbox: $b, status: $s, first: 1) { edges { cursor node { id title } } pageInfo { hasNextPage } } }",
            json!({"b": bbox(LAT, LNG), "s": "OFFEN"}),
        )
        .await;
    let edges = panel["data"]["antraege"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{panel}");
    assert_eq!(edges[0]["node"]["id"], other.as_str(), "newest first");
    assert_eq!(panel["data"]["antraege"]["pageInfo"]["hasNextPage"], true);
    let next = s
        .gql(
            "query($b: BboxInput!, $a: String) { antraege(bbox: $b, first: 5, after: $a) { edges { node { id } } pageInfo { hasNextPage } } }",
            json!({"b": bbox(LAT, LNG), "a": edges[0]["cursor"]}),
        )
        .await;
    assert_eq!(
        next["data"]["antraege"]["edges"][0]["node"]["id"],
        id.as_str(),
        "{next}"
    );
    assert_eq!(next["data"]["antraege"]["pageInfo"]["hasNextPage"], false);
    let elsewhere = s
        .gql(
            "query($b: BboxInput!) { antraege(bbox: $b) { edges { node { id } } } }",
            json!({"b": bbox(48.14, 11.58)}),
        )
        .await;
    assert_eq!(
        elsewhere["data"]["antraege"]["edges"],
        json!([]),
        "{elsewhere}"
    );
    let decided_only = s
        .gql(
            "query($b: BboxInput!) { antraege(bbox: $b, status: ANGENOMMEN) { edges { node { id } } } }",
            json!({"b": bbox(LAT, LNG)}),
        )
        .await;
    assert_eq!(decided_only["data"]["antraege"]["edges"], json!([]));

    // Objections: verified roles only, once each, with their reason shown.
    let objection = json!({"i": {"idempotencyKey": "o1", "antragId": id, "reason": "Zu teuer für den Haushalt"}});
    let refused = s.gql_as(&unverified, OBJECT, objection.clone()).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let ok = s.gql_as(&c, OBJECT, objection.clone()).await;
    assert_eq!(
        ok["data"]["objectToAntrag"]["event"]["type"], "EinspruchEingegangen",
        "{ok}"
    );
    let twice = s
        .gql_as(
            &c,
            OBJECT,
            json!({"i": {"idempotencyKey": "o2", "antragId": id, "reason": "Noch einmal"}}),
        )
        .await;
    assert_eq!(code(&twice), "CONFLICT", "{twice}");
    let empty = s
        .gql_as(
            &a,
            OBJECT,
            json!({"i": {"idempotencyKey": "o3", "antragId": id, "reason": " "}}),
        )
        .await;
    assert_eq!(code(&empty), "VALIDATION", "{empty}");
    let unknown = s
        .gql_as(
            &a,
            OBJECT,
            json!({"i": {"idempotencyKey": "o4", "antragId": Uuid::new_v4(), "reason": "x"}}),
        )
        .await;
    assert_eq!(code(&unknown), "NOT_FOUND", "{unknown}");
    until("the objection to be projected", || async {
        antrag(&s, &a, &id).await["objections"]
            .as_array()
            .is_some_and(|o| o.len() == 1)
    })
    .await;
    let shown = antrag(&s, &a, &id).await;
    assert_eq!(
        shown["objections"][0]["reason"],
        "Zu teuer für den Haushalt"
    );
    assert_eq!(shown["objections"][0]["rolle"]["id"], c_id.as_str());
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_vote_is_rejected_as_conflict_and_recorded_as_event_rejected() {
    let s = server().await;
    let (a, a_id) = verified_role(&s, "Anna").await;
    let unverified = s.register("Udo").await;
    rolle_id(&s, &unverified).await;
    let id = filed(&s, &a, "a1", "Mehr Bänke", &in_secs(3600)).await;

    let first = vote(&s, &a, "v1", &id, "JA").await;
    assert_eq!(
        first["data"]["castStimme"]["stimme"]["vote"], "JA",
        "{first}"
    );
    assert_eq!(
        first["data"]["castStimme"]["stimme"]["rolleId"],
        a_id.as_str()
    );
    assert_eq!(
        first["data"]["castStimme"]["event"]["type"],
        "StimmeAbgegeben"
    );
    let retry = vote(&s, &a, "v1", &id, "JA").await;
    assert_eq!(retry["data"]["castStimme"]["replayed"], true, "{retry}");

    let rejected_before = s.rejected().await;
    let second = vote(&s, &a, "v2", &id, "NEIN").await;
    assert_eq!(code(&second), "CONFLICT", "{second}");
    assert!(second["data"].is_null() || second["data"]["castStimme"].is_null());
    until("the EventRejected to be recorded", || async {
        s.rejected().await > rejected_before
    })
    .await;

    let refused = vote(&s, &unverified, "u1", &id, "JA").await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let unknown = vote(&s, &a, "v3", &Uuid::new_v4().to_string(), "JA").await;
    assert_eq!(code(&unknown), "NOT_FOUND", "{unknown}");
    let bad_value = vote(&s, &a, "v4", &id, "VIELLEICHT").await;
    assert_eq!(code(&bad_value), "VALIDATION", "{bad_value}");

    until("the vote to be projected", || async {
        antrag(&s, &a, &id).await["votes"]
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;
    let shown = antrag(&s, &a, &id).await;
    assert_eq!(shown["votes"][0]["vote"], "JA");
    assert_eq!(shown["myVote"], "JA");
    assert_eq!(
        shown["tally"],
        json!({"ja": 1, "nein": 0, "enthaltung": 0, "participation": 1, "delegated": 0, "decided": false})
    );
    assert_eq!(shown["audit"], Value::Null, "no audit while open");
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM stimmen WHERE antrag_id = '{id}'"
        ))
        .await,
        1,
        "one row per role and Antrag"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_counts_in_the_tally_is_listed_both_ways_and_can_be_revoked() {
    let s = server().await;
    let (a, a_id) = verified_role(&s, "Anna").await;
    let (b, b_id) = verified_role(&s, "Bea").await;
    let id = filed(&s, &a, "a1", "Mehr Bänke", &in_secs(3600)).await;
    vote(&s, &a, "v1", &id, "NEIN").await;

    let to_self = delegate(&s, &b, "d0", &b_id, in_secs(3600)).await;
    assert_eq!(code(&to_self), "VALIDATION", "{to_self}");
    assert_eq!(to_self["errors"][0]["extensions"]["field"], "to");
    let unknown = delegate(&s, &b, "d1", &Uuid::new_v4().to_string(), in_secs(3600)).await;
    assert_eq!(code(&unknown), "NOT_FOUND", "{unknown}");
    let past = delegate(&s, &b, "d2", &a_id, in_secs(-60)).await;
    assert_eq!(code(&past), "VALIDATION", "{past}");
    assert_eq!(past["errors"][0]["extensions"]["field"], "validUntil");
    let none = s
        .gql_as(&b, REVOKE, json!({"i": {"idempotencyKey": "r0"}}))
        .await;
    assert_eq!(code(&none), "CONFLICT", "nothing to revoke: {none}");

    let made = delegate(&s, &b, "d3", &a_id, in_secs(3600)).await;
    let d = &made["data"]["delegate"];
    assert_eq!(d["delegation"]["fromId"], b_id.as_str(), "{made}");
    assert_eq!(d["delegation"]["toId"], a_id.as_str());
    assert_eq!(d["delegation"]["active"], true);
    assert_eq!(d["event"]["type"], "DelegationErstellt");
    assert_eq!(d["replacedId"], Value::Null);

    until("the delegation to count", || async {
        antrag(&s, &a, &id).await["tally"]["participation"] == 2
    })
    .await;
    let shown = antrag(&s, &a, &id).await;
    assert_eq!(
        shown["tally"],
        json!({"ja": 0, "nein": 2, "enthaltung": 0, "participation": 2, "delegated": 1, "decided": false})
    );
    let mine = "{ myDelegation { outgoing { fromId toId to { id } active } incoming { fromId from { id } } } }";
    let of_b = s.gql_as(&b, mine, json!({})).await;
    assert_eq!(
        of_b["data"]["myDelegation"]["outgoing"]["to"]["id"],
        a_id.as_str(),
        "{of_b}"
    );
    assert_eq!(of_b["data"]["myDelegation"]["incoming"], json!([]));
    let of_a = s.gql_as(&a, mine, json!({})).await;
    assert_eq!(of_a["data"]["myDelegation"]["outgoing"], Value::Null);
    assert_eq!(
        of_a["data"]["myDelegation"]["incoming"][0]["from"]["id"],
        b_id.as_str(),
        "{of_a}"
    );
    let anonymous = s.gql_as("", mine, json!({})).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");

    // A direct vote always wins over the delegation.
    vote(&s, &b, "v2", &id, "JA").await;
    until("b's own vote to replace the delegated one", || async {
        let t = antrag(&s, &a, &id).await["tally"].clone();
        t["ja"] == 1 && t["delegated"] == 0
    })
    .await;

    let revoked = s
        .gql_as(&b, REVOKE, json!({"i": {"idempotencyKey": "r1"}}))
        .await;
    assert_eq!(
        revoked["data"]["revokeDelegation"]["revokedToId"],
        a_id.as_str(),
        "{revoked}"
    );
    until("the revocation to be projected", || async {
        s.gql_as(&b, mine, json!({})).await["data"]["myDelegation"]["outgoing"].is_null()
    })
    .await;
    let again = s
        .gql_as(&b, REVOKE, json!({"i": {"idempotencyKey": "r2"}}))
        .await;
    assert_eq!(code(&again), "CONFLICT", "{again}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_confirmations_from_verified_roles_verify_a_role() {
    let s = server().await;
    let (a, a_id) = verified_role(&s, "Anna").await;
    let (b, b_id) = verified_role(&s, "Bea").await;
    let c = s.register("Carl").await;
    let c_id = rolle_id(&s, &c).await;
    let d = s.register("Dora").await;
    let d_id = rolle_id(&s, &d).await;

    let unverified = confirm(&s, &c, "c1", &d_id).await;
    assert_eq!(code(&unverified), "FORBIDDEN", "{unverified}");
    let own = confirm(&s, &a, "a0", &a_id).await;
    assert_eq!(code(&own), "FORBIDDEN", "{own}");
    let unknown = confirm(&s, &a, "a00", &Uuid::new_v4().to_string()).await;
    assert_eq!(code(&unknown), "NOT_FOUND", "{unknown}");

    let once = confirm(&s, &a, "a1", &c_id).await;
    let p = &once["data"]["confirmVerification"];
    assert_eq!(p["verified"], false, "{once}");
    assert_eq!(p["event"]["type"], "VerifizierungBestaetigt");
    assert_eq!(p["verifiedEvent"], Value::Null);
    let twice = confirm(&s, &a, "a2", &c_id).await;
    assert_eq!(code(&twice), "CONFLICT", "{twice}");
    until("the first confirmation to be projected", || async {
        s.gql_as(&c, "{ me { verification { confirmedByIds } } }", json!({}))
            .await["data"]["me"]["verification"]["confirmedByIds"]
            == json!([a_id])
    })
    .await;

    let second = confirm(&s, &b, "b1", &c_id).await;
    let p = &second["data"]["confirmVerification"];
    assert_eq!(p["verified"], true, "{second}");
    assert_eq!(p["verifiedEvent"]["type"], "RolleVerifiziert");
    until("the verification to be projected", || is_verified(&s, &c)).await;
    let status = s
        .gql(
            "query($id: ID!) { rolle(id: $id) { verification { verified verifiedAt confirmedBy { id } isAdmin } } }",
            json!({"id": c_id}),
        )
        .await;
    let v = &status["data"]["rolle"]["verification"];
    assert_eq!(
        v["confirmedBy"],
        json!([{"id": a_id}, {"id": b_id}]),
        "{status}"
    );
    assert_eq!(v["isAdmin"], false);
    let more = confirm(&s, &s.register("Eva").await, "e1", &c_id).await;
    assert_eq!(code(&more), "FORBIDDEN", "{more}");
    let late = confirm(&s, &a, "a3", &c_id).await;
    assert_eq!(code(&late), "CONFLICT", "already verified: {late}");

    // The newly verified role can now confirm others.
    let by_c = confirm(&s, &c, "c2", &d_id).await;
    assert_eq!(
        by_c["data"]["confirmVerification"]["verified"], false,
        "{by_c}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_hides_content_from_queries_and_nobody_decides_on_their_own() {
    let s = server().await;
    let author = s.token.clone();
    let author_id = rolle_id(&s, &author).await;
    let (reporter, _) = verified_role(&s, "Rita").await;
    let (moderator, moderator_id) = verified_role(&s, "Mona").await;
    let unverified = s.register("Udo").await;
    rolle_id(&s, &unverified).await;
    admin_verify(&s, &author).await;

    let k =
        s.create("k1", "Sperrmüll-Treff", LAT, LNG).await["data"]["createKnoten"]["knoten"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let written = s
        .gql(
            "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
            json!({"i": {"idempotencyKey": "n1", "knotenId": k, "text": "Kommt alle!"}}),
        )
        .await;
    let n = written["data"]["writeNachricht"]["nachricht"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{written}"))
        .to_owned();
    let visible = "query($b: BboxInput!, $k: ID!) { knoten(bbox: $b) { edges { node { id } } } room(knotenId: $k) { thread { edges { node { id } } } } search(text: \"Sperrmüll\") { id } }";
    let vars = json!({"b": bbox(LAT, LNG), "k": k});
    until("the Knoten and its message to be projected", || async {
        let r = s.gql(visible, vars.clone()).await;
        r["data"]["room"]["thread"]["edges"]
            .as_array()
            .is_some_and(|e| e.len() == 1)
    })
    .await;

    let missing = raise(&s, &reporter, "f0", "KNOTEN", &Uuid::new_v4().to_string()).await;
    assert_eq!(code(&missing), "NOT_FOUND", "{missing}");
    let raised = raise(&s, &reporter, "f1", "KNOTEN", &k).await;
    let flag = &raised["data"]["raiseFlag"]["flag"];
    assert_eq!(flag["authorOfTargetId"], author_id.as_str(), "{raised}");
    assert_eq!(flag["outcome"], Value::Null);
    let flag_id = flag["id"].as_str().unwrap().to_owned();
    let on_message = raise(&s, &unverified, "f2", "NACHRICHT", &n).await;
    let message_flag = on_message["data"]["raiseFlag"]["flag"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("anyone may report: {on_message}"))
        .to_owned();

    let own_content = resolve(&s, &author, "r1", &flag_id, "KEPT").await;
    assert_eq!(code(&own_content), "FORBIDDEN", "{own_content}");
    let own_flag = resolve(&s, &reporter, "r2", &flag_id, "HIDDEN").await;
    assert_eq!(code(&own_flag), "FORBIDDEN", "{own_flag}");
    let not_verified = resolve(&s, &unverified, "r3", &flag_id, "HIDDEN").await;
    assert_eq!(code(&not_verified), "FORBIDDEN", "{not_verified}");

    until("the flags to be projected", || async {
        s.gql(
            "{ moderationThreads(open: true) { edges { node { targetId } } } }",
            json!({}),
        )
        .await["data"]["moderationThreads"]["edges"]
            .as_array()
            .is_some_and(|e| e.len() == 2)
    })
    .await;
    let hidden = resolve(&s, &moderator, "r4", &flag_id, "HIDDEN").await;
    let f = &hidden["data"]["resolveFlag"]["flag"];
    assert_eq!(f["outcome"], "HIDDEN", "{hidden}");
    assert_eq!(f["resolvedById"], moderator_id.as_str());
    assert_eq!(
        hidden["data"]["resolveFlag"]["event"]["type"],
        "FlagResolved"
    );
    let again = resolve(&s, &s.register("Vera").await, "r5", &flag_id, "KEPT").await;
    assert_eq!(code(&again), "FORBIDDEN", "{again}");
    let kept = resolve(&s, &moderator, "r6", &message_flag, "KEPT").await;
    assert_eq!(
        kept["data"]["resolveFlag"]["flag"]["outcome"], "KEPT",
        "{kept}"
    );
    let twice = resolve(&s, &author, "r7", &message_flag, "HIDDEN").await;
    assert_eq!(code(&twice), "FORBIDDEN", "the author may never: {twice}");

    until("the hidden Knoten to disappear", || async {
        let r = s.gql(visible, vars.clone()).await;
        r["data"]["knoten"]["edges"] == json!([]) && r["data"]["room"].is_null()
    })
    .await;
    let r = s.gql(visible, vars.clone()).await;
    assert_eq!(r["data"]["search"], json!([]), "{r}");

    until("both resolutions to be projected", || async {
        s.gql(
            "{ moderationThreads(open: false) { edges { node { targetId } } } }",
            json!({}),
        )
        .await["data"]["moderationThreads"]["edges"]
            .as_array()
            .is_some_and(|e| e.len() == 2)
    })
    .await;
    let settled = s
        .gql(
            "{ moderationThreads(open: false) { edges { node { targetKind targetId open outcome target { __typename } flags { reason resolutionReason } } } } }",
            json!({}),
        )
        .await;
    let threads = settled["data"]["moderationThreads"]["edges"]
        .as_array()
        .unwrap();
    let of = |id: &str| {
        threads
            .iter()
            .find(|t| t["node"]["targetId"] == id)
            .unwrap_or_else(|| panic!("no thread for {id}: {settled}"))["node"]
            .clone()
    };
    let knoten_thread = of(&k);
    assert_eq!(knoten_thread["targetKind"], "KNOTEN");
    assert_eq!(knoten_thread["open"], false);
    assert_eq!(knoten_thread["outcome"], "HIDDEN");
    assert_eq!(
        knoten_thread["target"],
        Value::Null,
        "hidden content is not shown"
    );
    assert_eq!(knoten_thread["flags"][0]["reason"], "Werbung");
    assert_eq!(knoten_thread["flags"][0]["resolutionReason"], "Geprüft");
    let message_thread = of(&n);
    assert_eq!(message_thread["outcome"], "KEPT");
    assert_eq!(message_thread["target"]["__typename"], "Nachricht");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_deadline_votes_are_conflicts_and_the_decision_has_an_audit_that_recomputes() {
    let s = server().await;
    let (a, a_id) = verified_role(&s, "Anna").await;
    let (b, b_id) = verified_role(&s, "Bea").await;
    let (c, _) = verified_role(&s, "Carl").await;
    let id = filed(&s, &a, "a1", "Mehr Bänke", &in_secs(4)).await;
    vote(&s, &a, "v1", &id, "JA").await;
    vote(&s, &c, "v2", &id, "NEIN").await;
    let d = s
        .gql_as(
            &b,
            DELEGATE,
            json!({"i": {"idempotencyKey": "d1", "to": a_id, "validUntil": in_secs(3600)}}),
        )
        .await;
    assert_eq!(
        d["data"]["delegate"]["event"]["type"], "DelegationErstellt",
        "{d}"
    );
    until("the votes and the delegation to count", || async {
        antrag(&s, &a, &id).await["tally"]["participation"] == 3
    })
    .await;

    tokio::time::sleep(Duration::from_secs(5)).await;
    let late = vote(&s, &b, "v3", &id, "NEIN").await;
    assert_eq!(code(&late), "CONFLICT", "{late}");
    let late_objection = s
        .gql_as(
            &b,
            OBJECT,
            json!({"i": {"idempotencyKey": "o1", "antragId": id, "reason": "Zu spät"}}),
        )
        .await;
    assert_eq!(code(&late_objection), "CONFLICT", "{late_objection}");

    // The jobs worker decides at the deadline.
    let jobs = workers::JobsWorker::new(
        s.bus.clone(),
        s.db.conn.clone(),
        std::sync::Arc::new(workers::SystemClock),
        workers::JobsConfig::default(),
    );
    jobs.scan_once().await.unwrap();
    until("the decision to be projected", || async {
        antrag(&s, &a, &id).await["status"] != "OFFEN"
    })
    .await;
    let decided = antrag(&s, &a, &id).await;
    assert_eq!(decided["status"], "ANGENOMMEN", "{decided}");
    let audit = &decided["audit"];
    assert_eq!(audit["recomputed"], true, "{decided}");
    assert_eq!(audit["discrepancy"], Value::Null);
    assert_eq!(audit["participation"], 3);
    assert_eq!(audit["quorumReached"], true);
    let counted = audit["counted"].as_array().unwrap();
    assert_eq!(counted.len(), 3, "{decided}");
    let delegated: Vec<&Value> = counted
        .iter()
        .filter(|c| !c["delegatedFromId"].is_null())
        .collect();
    assert_eq!(delegated.len(), 1);
    assert_eq!(delegated[0]["delegatedFromId"], b_id.as_str());
    assert_eq!(delegated[0]["voiceId"], b_id.as_str());
    assert_eq!(delegated[0]["rolleId"], a_id.as_str());
    assert_eq!(delegated[0]["vote"], "JA");
    assert_eq!(
        decided["tally"],
        json!({"ja": 2, "nein": 1, "enthaltung": 0, "participation": 3, "delegated": 1, "decided": true})
    );

    let objection = s
        .gql_as(
            &b,
            OBJECT,
            json!({"i": {"idempotencyKey": "o2", "antragId": id, "reason": "Entschieden"}}),
        )
        .await;
    assert_eq!(code(&objection), "CONFLICT", "{objection}");
    assert!(
        objection["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("decided"),
        "{objection}"
    );
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Subscriptions over graphql-transport-ws

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(s: &Server, query: &str, variables: Value) -> Ws {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let url = format!("{}/graphql/ws", s.url.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| tokio_tungstenite::tungstenite::Message::text(v.to_string());
    ws.send(send(json!({"type": "connection_init", "payload": {}})))
        .await
        .unwrap();
    let ack = next_message(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.send(send(json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}})))
        .await
        .unwrap();
    ws
}

async fn next_message(ws: &mut Ws) -> Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(t) = frame {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// The next `next` payload of subscription "1" that satisfies `want`.
async fn next_data(ws: &mut Ws, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let m = next_message(ws).await;
        assert_ne!(m["type"], "error", "{m}");
        if m["type"] == "next" && want(&m["payload"]["data"]) {
            return m["payload"]["data"].clone();
        }
    }
}

const WEBRAT: &str = "subscription($b: BboxInput!, $after: String) { webrat(bbox: $b, zoom: 13, after: $after) { changes { antragId kind weberei antrag { title } stimme { vote rolleId } objection { reason } } cursor resync heartbeat } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrat_subscribers_see_changes_in_their_viewport_and_replay_after_a_cursor() {
    let s = server().await;
    let (a, a_id) = verified_role(&s, "Anna").await;
    let mut here = subscribe(&s, WEBRAT, json!({"b": bbox(LAT, LNG)})).await;
    let mut elsewhere = subscribe(&s, WEBRAT, json!({"b": bbox(48.14, 11.58)})).await;
    // Let the subscriptions register before the first change.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = filed(&s, &a, "a1", "Mehr Bänke", &in_secs(3600)).await;
    let filed_diff = next_data(&mut here, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    let change = &filed_diff["webrat"]["changes"][0];
    assert_eq!(change["kind"], "FILED", "{filed_diff}");
    assert_eq!(change["antragId"], id.as_str());
    assert_eq!(change["antrag"]["title"], "Mehr Bänke");
    let cursor = filed_diff["webrat"]["cursor"].as_str().unwrap().to_owned();

    let mut one = subscribe(
        &s,
        "subscription($id: ID!) { antragChanged(id: $id) { antragId kind stimme { vote } objection { reason } } }",
        json!({"id": id}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    vote(&s, &a, "v1", &id, "ENTHALTUNG").await;
    let voted = next_data(&mut one, |_| true).await;
    assert_eq!(voted["antragChanged"]["kind"], "VOTE", "{voted}");
    assert_eq!(voted["antragChanged"]["stimme"]["vote"], "ENTHALTUNG");
    let live_vote = next_data(&mut here, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    assert_eq!(live_vote["webrat"]["changes"][0]["kind"], "VOTE");
    assert_eq!(
        live_vote["webrat"]["changes"][0]["stimme"]["rolleId"],
        a_id.as_str()
    );

    // A client coming back with the cursor of the FILED diff gets the vote it missed.
    let mut back = subscribe(&s, WEBRAT, json!({"b": bbox(LAT, LNG), "after": cursor})).await;
    let replayed = next_data(&mut back, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    let kinds: Vec<&Value> = replayed["webrat"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["kind"])
        .collect();
    assert_eq!(kinds, vec!["VOTE"], "{replayed}");

    // Nothing of this reached the subscriber of another town.
    let quiet = tokio::time::timeout(Duration::from_millis(800), async {
        next_data(&mut elsewhere, |d| {
            d["webrat"]["changes"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .await
    })
    .await;
    assert!(
        quiet.is_err(),
        "a change outside the box arrived: {quiet:?}"
    );

    let unknown = subscribe(
        &s,
        "subscription($id: ID!) { antragChanged(id: $id) { kind } }",
        json!({"id": Uuid::new_v4()}),
    )
    .await;
    let mut unknown = unknown;
    let err = next_message(&mut unknown).await;
    assert_eq!(
        err["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{err}"
    );
    s.finish().await;
}

const VIEWPORT: &str = "subscription($b: BboxInput!, $after: String) { viewport(bbox: $b, zoom: 13, after: $after) { knoten { id } knotenChanges { id kind } nachrichten { id } hiddenNachrichten { id knotenId } cursor resync } }";

/// Ids of `knotenChanges` of `kind` in a viewport diff.
fn changed(d: &Value, kind: &str) -> Vec<String> {
    d["viewport"]["knotenChanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn hidden_messages(d: &Value) -> Vec<String> {
    d["viewport"]["hiddenNachrichten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_content_leaves_the_live_map_and_the_webrat_once_and_a_replay_carries_it() {
    let s = server().await;
    let author = s.token.clone();
    rolle_id(&s, &author).await;
    let (moderator, _) = verified_role(&s, "Mona").await;
    let (filer, _) = verified_role(&s, "Fritz").await;
    let mut map = subscribe(&s, VIEWPORT, json!({"b": bbox(LAT, LNG)})).await;
    let mut panel = subscribe(&s, WEBRAT, json!({"b": bbox(LAT, LNG)})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id_of = |r: Value| {
        r["data"]["createKnoten"]["knoten"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned()
    };
    let spam = id_of(s.create("k1", "Werbung", LAT, LNG).await);
    let room = id_of(s.create("k2", "Tauschregal", LAT + 0.01, LNG).await);
    let written = s
        .gql(
            "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
            json!({"i": {"idempotencyKey": "n1", "knotenId": room, "text": "Billig kaufen!"}}),
        )
        .await;
    let message = written["data"]["writeNachricht"]["nachricht"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{written}"))
        .to_owned();
    // A cursor from before any moderation: everything after it is replayed below.
    let before = next_data(&mut map, |d| {
        d["viewport"]["nachrichten"]
            .as_array()
            .is_some_and(|n| !n.is_empty())
    })
    .await["viewport"]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let antrag_id = filed(&s, &filer, "a1", "Werbetafeln", &in_secs(3600)).await;

    let mut flags = Vec::new();
    for (key, kind, target) in [
        ("f1", "KNOTEN", &spam),
        ("f2", "NACHRICHT", &message),
        ("f3", "ANTRAG", &antrag_id),
    ] {
        let raised = raise(&s, &author, key, kind, target).await;
        flags.push(
            raised["data"]["raiseFlag"]["flag"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{raised}"))
                .to_owned(),
        );
    }
    until("the flags to be projected", || async {
        s.gql(
            "{ moderationThreads(open: true) { edges { node { targetId } } } }",
            json!({}),
        )
        .await["data"]["moderationThreads"]["edges"]
            .as_array()
            .is_some_and(|e| e.len() == 3)
    })
    .await;
    for (i, flag) in flags.iter().enumerate() {
        let r = resolve(&s, &moderator, &format!("r{i}"), flag, "HIDDEN").await;
        assert_eq!(r["data"]["resolveFlag"]["flag"]["outcome"], "HIDDEN", "{r}");
    }

    // The Webrat follows the governance stream, where the decision is: HIDDEN right away.
    let hidden = next_data(&mut panel, |d| {
        d["webrat"]["changes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["kind"] == "HIDDEN"))
    })
    .await;
    let change = hidden["webrat"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "HIDDEN")
        .unwrap()
        .clone();
    assert_eq!(change["antragId"], antrag_id.as_str(), "{hidden}");

    // The map follows the social stream: the jobs worker records the decision there.
    let jobs = workers::JobsWorker::new(
        s.bus.clone(),
        s.db.conn.clone(),
        std::sync::Arc::new(workers::SystemClock),
        workers::JobsConfig::default(),
    );
    let mut recorded = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while s
        .count("SELECT count(*) FROM flags WHERE map_hidden_at IS NOT NULL")
        .await
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "map decisions not recorded"
        );
        recorded += jobs.scan_once().await.unwrap().hidden_on_map;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, 2, "one InhaltVerborgen per flag on map content");
    assert_eq!(
        jobs.scan_once().await.unwrap().hidden_on_map,
        0,
        "recorded once"
    );
    let (mut knoten_hidden, mut messages_hidden) = (Vec::new(), Vec::new());
    while knoten_hidden.is_empty() || messages_hidden.is_empty() {
        let d = next_data(&mut map, |_| true).await;
        knoten_hidden.extend(changed(&d, "HIDDEN"));
        messages_hidden.extend(hidden_messages(&d));
    }
    assert_eq!(knoten_hidden, vec![spam.clone()]);
    assert_eq!(messages_hidden, vec![message.clone()]);

    // A client that was away since `before` gets the same in its replay.
    let mut back = subscribe(&s, VIEWPORT, json!({"b": bbox(LAT, LNG), "after": before})).await;
    let (mut knoten_hidden, mut messages_hidden) = (Vec::new(), Vec::new());
    while knoten_hidden.is_empty() || messages_hidden.is_empty() {
        let d = next_data(&mut back, |_| true).await;
        assert_eq!(d["viewport"]["resync"], false, "{d}");
        knoten_hidden.extend(changed(&d, "HIDDEN"));
        messages_hidden.extend(hidden_messages(&d));
    }
    assert_eq!(knoten_hidden, vec![spam]);
    assert_eq!(messages_hidden, vec![message]);
    let room_still_there = s
        .gql(
            "query($k: ID!) { room(knotenId: $k) { thread { edges { node { id } } } } }",
            json!({"k": room}),
        )
        .await;
    assert_eq!(
        room_still_there["data"]["room"]["thread"]["edges"],
        json!([]),
        "the room stays, without the hidden message: {room_still_there}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_the_projection_does_not_have_yet_can_be_flagged_with_its_author_from_the_chain() {
    use sea_orm::ConnectionTrait;
    let s = server().await;
    let author_id = rolle_id(&s, &s.token).await;
    let reporter = s.register("Rita").await;
    let k =
        s.create("k1", "Frisch geknüpft", LAT, LNG).await["data"]["createKnoten"]["knoten"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    until("the Knoten to be projected", || async {
        s.count(&format!("SELECT count(*) FROM knoten WHERE id = '{k}'"))
            .await
            == 1
    })
    .await;
    // As if the projection were still behind the stream: the row is not there yet.
    s.db.conn
        .execute_unprepared(&format!("DELETE FROM knoten WHERE id = '{k}'"))
        .await
        .unwrap();
    let raised = raise(&s, &reporter, "f1", "KNOTEN", &k).await;
    let flag = &raised["data"]["raiseFlag"]["flag"];
    assert_eq!(flag["targetId"], k.as_str(), "{raised}");
    assert_eq!(flag["authorOfTargetId"], author_id.as_str(), "{raised}");
    s.finish().await;
}
