#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Webrat through GraphQL against real NATS, PostgreSQL and Redis with the projection
//! worker running: Anträge, objections, votes, delegation, peer verification, moderation, the
//! audit of a decision (taken by the jobs worker), and every refusal coded.

mod common;

use std::time::Duration;

use common::code;
use common::governance::*;
use serde_json::{Value, json};
use uuid::Uuid;

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
