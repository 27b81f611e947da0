#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Accounts, threads, rooms, design area, search and privacy through GraphQL, against real
//! NATS, PostgreSQL and Redis with the projection worker running.

mod common;

use std::time::Duration;

use common::{Server, code, server};
use serde_json::{Value, json};

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_as(s: &Server, token: &str, key: &str, title: &str) -> String {
    let r = s
        .gql_as(
            token,
            "mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id } } }",
            json!({"i": {"idempotencyKey": key, "title": title, "typ": "IDEEN", "lat": 50.98, "lng": 11.32}}),
        )
        .await;
    r["data"]["createKnoten"]["knoten"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

async fn spin(s: &Server, token: &str, key: &str, knoten: &str, typ: &str) -> Value {
    s.gql_as(
        token,
        "mutation($i: SpinFadenInput!) { spinFaden(input: $i) { faden { id typ expiresAt renewedAt isYarn fromRolle { name } } event { id } renewed replayed } }",
        json!({"i": {"idempotencyKey": key, "knotenId": knoten, "typ": typ}}),
    )
    .await
}

async fn knoten_projected(s: &Server, id: &str) -> bool {
    s.count(&format!("SELECT count(*) FROM knoten WHERE id = '{id}'"))
        .await
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_can_be_listed_revoked_and_mutations_need_one() {
    let s = server(None).await;
    let me = s
        .gql("{ me { name homeH3 } sessions { id current } }", json!({}))
        .await;
    until("the role to be projected", || async {
        s.gql("{ me { name } }", json!({})).await["data"]["me"]["name"] == "Testerin"
    })
    .await;
    assert_eq!(me["data"]["sessions"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["data"]["sessions"][0]["current"], true);

    let anon = s
        .gql_as("", "mutation($i: CreateKnotenInput!) { createKnoten(input: $i) { knoten { id } } }",
            json!({"i": {"idempotencyKey": "a1", "title": "x", "typ": "IDEEN", "lat": 50.0, "lng": 11.0}}))
        .await;
    assert_eq!(code(&anon), "UNAUTHENTICATED", "{anon}");
    let forged = s
        .gql_as("wb_not-a-real-token", "{ sessions { id } }", json!({}))
        .await;
    assert_eq!(code(&forged), "UNAUTHENTICATED");
    // Anyone may read public data without a session.
    let public = s
        .gql_as("", "{ config { ort flags { search tour } } }", json!({}))
        .await;
    assert_eq!(
        public["data"]["config"]["flags"]["search"], true,
        "{public}"
    );

    let out = s.gql("mutation { logout }", json!({})).await;
    assert_eq!(out["data"]["logout"], true);
    let after = s.gql("{ sessions { id } }", json!({})).await;
    assert_eq!(
        code(&after),
        "UNAUTHENTICATED",
        "a logged-out token is dead: {after}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_renew_rooms_talk_and_the_design_area_refuses_stale_edits() {
    let s = server(None).await;
    let (a, b) = (s.token.clone(), s.register("Bea").await);
    let outsider = s.register("Olaf").await;
    let k = create_as(&s, &a, "k1", "Gemeinschaftsgarten").await;
    until("the Knoten", || knoten_projected(&s, &k)).await;

    let first = spin(&s, &b, "f1", &k, "INTERESSE").await;
    assert_eq!(first["data"]["spinFaden"]["renewed"], false, "{first}");
    let faden_id = first["data"]["spinFaden"]["faden"]["id"].clone();
    let again = spin(&s, &b, "f2", &k, "INTERESSE").await;
    assert_eq!(again["data"]["spinFaden"]["renewed"], true, "{again}");
    assert_eq!(
        again["data"]["spinFaden"]["faden"]["id"], faden_id,
        "same triple, same Faden"
    );
    assert!(
        again["data"]["spinFaden"]["faden"]["expiresAt"].as_str()
            > first["data"]["spinFaden"]["faden"]["expiresAt"].as_str()
    );
    let replay = spin(&s, &b, "f2", &k, "INTERESSE").await;
    assert_eq!(replay["data"]["spinFaden"]["replayed"], true, "{replay}");

    // Design area: the creator and participants may edit, against the current version.
    until("the thread", || async {
        s.count(&format!(
            "SELECT count(*) FROM faeden WHERE to_knoten = '{k}'"
        ))
        .await
            == 1
    })
    .await;
    let edit = |token: String, key: &'static str, version: i64| {
        let s = &s;
        let k = k.clone();
        async move {
            s.gql_as(&token, "mutation($i: UpdateKnotenDesignInput!) { updateKnotenDesign(input: $i) { design { version content } } }",
                json!({"i": {"idempotencyKey": key, "knotenId": k, "expectedVersion": version, "content": {"beete": key}}})).await
        }
    };
    let e1 = edit(a.clone(), "d1", 0).await;
    assert_eq!(
        e1["data"]["updateKnotenDesign"]["design"]["version"], 1,
        "{e1}"
    );
    let stale = edit(b.clone(), "d2", 0).await;
    assert_eq!(code(&stale), "CONFLICT", "{stale}");
    assert!(
        stale["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("version"),
        "{stale}"
    );
    let e2 = edit(b.clone(), "d3", 1).await;
    assert_eq!(
        e2["data"]["updateKnotenDesign"]["design"]["version"], 2,
        "{e2}"
    );
    let foreign = edit(outsider.clone(), "d4", 2).await;
    assert_eq!(code(&foreign), "FORBIDDEN", "{foreign}");

    // The room: messages with mentions, newest last.
    for (i, text) in ["Wer hat Samen?", "@bea ich habe Tomaten", "Treffen Samstag"]
        .iter()
        .enumerate()
    {
        let w = s.gql_as(&a, "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id text mentions { name } } } }",
            json!({"i": {"idempotencyKey": format!("m{i}"), "knotenId": k, "text": text}})).await;
        assert!(w["errors"].is_null(), "{w}");
        if i == 1 {
            assert_eq!(
                w["data"]["writeNachricht"]["nachricht"]["mentions"][0]["name"], "Bea",
                "{w}"
            );
        }
    }
    let empty = s
        .gql_as(
            &a,
            "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
            json!({"i": {"idempotencyKey": "m9", "knotenId": k, "text": "   "}}),
        )
        .await;
    assert_eq!(code(&empty), "VALIDATION");
    until("three messages", || async {
        s.count(&format!(
            "SELECT count(*) FROM nachrichten WHERE knoten_id = '{k}'"
        ))
        .await
            == 3
    })
    .await;
    let room = s.gql("query($k: ID!) { room(knotenId: $k) { thread(last: 2) { edges { node { text author { name } } } pageInfo { hasPreviousPage } } participants { name } design { version content } } }",
        json!({"k": k})).await;
    let thread = &room["data"]["room"]["thread"];
    let texts: Vec<&str> = thread["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["@bea ich habe Tomaten", "Treffen Samstag"],
        "{room}"
    );
    assert_eq!(thread["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(room["data"]["room"]["participants"][0]["name"], "Bea");
    assert_eq!(room["data"]["room"]["design"]["version"], 2);

    // Knoten carry their threads for the map (one batched query for all Knoten).
    let map = s.gql("{ knoten(bbox: {west: 11.0, south: 50.8, east: 11.5, north: 51.1}) { edges { node { id faeden { typ fromRolle { name homeLat } } } } } }", json!({})).await;
    let node = &map["data"]["knoten"]["edges"][0]["node"];
    assert_eq!(node["faeden"][0]["fromRolle"]["name"], "Bea", "{map}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_forgives_misspellings_and_carries_a_place() {
    let s = server(None).await;
    let k = create_as(&s, &s.token.clone(), "k1", "Gemeinschaftsgarten am Fluss").await;
    until("the Knoten", || knoten_projected(&s, &k)).await;
    let r = s
        .gql(
            "{ search(text: \"gemeinschaftsgartn\") { kind id title lat lng score } }",
            json!({}),
        )
        .await;
    let hit = &r["data"]["search"][0];
    assert_eq!(hit["kind"], "KNOTEN", "{r}");
    assert_eq!(hit["id"], k.as_str());
    assert!((hit["lat"].as_f64().unwrap() - 50.98).abs() < 1e-9);
    let r = s
        .gql("{ search(text: \"Testerin\") { kind title } }", json!({}))
        .await;
    assert_eq!(r["data"]["search"][0]["kind"], "ROLLE", "{r}");
    let short = s.gql("{ search(text: \"x\") { id } }", json!({})).await;
    assert_eq!(code(&short), "VALIDATION");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_role_is_unreadable_in_the_stream_and_every_chain_still_verifies() {
    let s = server(None).await;
    let token = s.token.clone();
    let k = create_as(&s, &token, "k1", "Tauschregal").await;
    until("the Knoten", || knoten_projected(&s, &k)).await;
    let w = s.gql("mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id text } } }",
        json!({"i": {"idempotencyKey": "m1", "knotenId": k, "text": "Meine Telefonnummer ist 0123"}})).await;
    assert_eq!(
        w["data"]["writeNachricht"]["nachricht"]["text"], "Meine Telefonnummer ist 0123",
        "{w}"
    );
    // Sealed in the log from the first event on.
    let raw = stream_json(&s).await;
    assert!(
        !raw.contains("Telefonnummer") && !raw.contains("Testerin"),
        "plaintext in the stream"
    );

    let refuse = s.gql("mutation { deleteAccount(input: {idempotencyKey: \"del\", confirm: false}) { event { id } } }", json!({})).await;
    assert_eq!(code(&refuse), "VALIDATION");
    let del = s.gql("mutation { deleteAccount(input: {idempotencyKey: \"del\", confirm: true}) { event { id type } } }", json!({})).await;
    assert_eq!(
        del["data"]["deleteAccount"]["event"]["type"], "UserDeleted",
        "{del}"
    );
    until("the key to be destroyed", || async {
        s.count("SELECT count(*) FROM rolle_keys WHERE key IS NULL")
            .await
            == 1
    })
    .await;
    until("the text to be gone", || async {
        s.count("SELECT count(*) FROM nachrichten WHERE text IS NULL")
            .await
            == 1
    })
    .await;
    let room = s.gql_as("", "query($k: ID!) { room(knotenId: $k) { thread { edges { node { text author { name deleted } } } } } }", json!({"k": k})).await;
    let node = &room["data"]["room"]["thread"]["edges"][0]["node"];
    assert!(node["text"].is_null(), "{room}");
    assert_eq!(node["author"]["deleted"], true);
    assert!(
        node["author"]["name"]
            .as_str()
            .unwrap()
            .starts_with("Gelöschte Rolle")
    );
    // The sealed bytes are still in the stream, unreadable without the key; chains verify.
    let raw = stream_json(&s).await;
    assert!(!raw.contains("Telefonnummer"));
    let mut chains: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for line in raw.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        chains
            .entry(v["aggregateId"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    for (id, chain) in chains {
        domain::verify_chain(&chain).unwrap_or_else(|e| panic!("chain {id}: {e}"));
    }
    let gone = s.gql("{ me { id } }", json!({})).await;
    assert!(
        gone["data"]["me"].is_null() || code(&gone) == "UNAUTHENTICATED",
        "{gone}"
    );
    s.finish().await;
}

/// Every message on the Ort's social stream, one JSON per line.
async fn stream_json(s: &Server) -> String {
    let name = s.bus.config().ort.stream_name(domain::StreamDomain::Social);
    let stream = s.bus.jetstream().get_stream(&name).await.unwrap();
    let mut info = stream.clone();
    let last = info.info().await.unwrap().state.last_sequence;
    let mut out = String::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push_str(std::str::from_utf8(&m.payload).unwrap());
            out.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_switched_off_says_so() {
    let s = common::server_with(
        None,
        api::Flags {
            search: false,
            ..Default::default()
        },
    )
    .await;
    let r = s
        .gql("{ search(text: \"garten\") { id } }", json!({}))
        .await;
    assert_eq!(code(&r), "FEATURE_DISABLED", "{r}");
    let c = s.gql("{ config { flags { search } } }", json!({})).await;
    assert_eq!(c["data"]["config"]["flags"]["search"], false);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faded_and_unknown_knoten_refuse_threads_and_messages() {
    let s = server(None).await;
    let token = s.token.clone();
    let k = create_as(&s, &token, "k1", "Bald verblasst").await;
    until("the Knoten", || knoten_projected(&s, &k)).await;
    // Let it fade as the jobs worker would, 8 days on.
    let id: uuid::Uuid = k.parse().unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(8);
    let meta = domain::Meta {
        actor: domain::Actor::System,
        ip_hash: None,
        ua_hash: None,
        msg_id: format!("verfall:{id}"),
    };
    s.bus
        .execute::<domain::knoten::Knoten>(
            id,
            &domain::knoten::KnotenCommand::Verfallen { now: later },
            meta,
            later,
            bus::Expect::ExistingChain,
        )
        .await
        .unwrap();
    until("the decay", || async {
        s.count(&format!(
            "SELECT count(*) FROM knoten WHERE id = '{k}' AND decayed_at IS NOT NULL"
        ))
        .await
            == 1
    })
    .await;
    let r = spin(&s, &token, "f1", &k, "MITARBEIT").await;
    assert_eq!(code(&r), "CONFLICT", "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("faded"),
        "{r}"
    );
    let w = s
        .gql(
            "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
            json!({"i": {"idempotencyKey": "m1", "knotenId": k, "text": "Hallo?"}}),
        )
        .await;
    assert_eq!(code(&w), "CONFLICT", "{w}");
    let unknown = spin(
        &s,
        &token,
        "f2",
        &uuid::Uuid::new_v4().to_string(),
        "MITARBEIT",
    )
    .await;
    assert_eq!(code(&unknown), "NOT_FOUND", "{unknown}");
    let garbage = spin(&s, &token, "f3", "not-an-id", "MITARBEIT").await;
    assert_eq!(code(&garbage), "VALIDATION", "{garbage}");
    let k2 = create_as(&s, &token, "k2", "Lebendig").await;
    until("the Knoten", || knoten_projected(&s, &k2)).await;
    let long = s
        .gql(
            "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
            json!({"i": {"idempotencyKey": "m2", "knotenId": k2, "text": "x".repeat(4001)}}),
        )
        .await;
    assert_eq!(code(&long), "VALIDATION", "{long}");
    assert_eq!(long["errors"][0]["extensions"]["field"], "text");
    // The faded Knoten's room stays readable; it is off the live map.
    let room = s
        .gql(
            "query($k: ID!) { room(knotenId: $k) { knoten { decayedAt } } }",
            json!({"k": k}),
        )
        .await;
    assert!(
        room["data"]["room"]["knoten"]["decayedAt"].is_string(),
        "{room}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_exports_all_their_data_opened_and_nobody_elses() {
    let s = server(None).await;
    let me = s.token.clone();
    let other = s.register("Otto").await;
    let mine = create_as(&s, &me, "e1", "Lesecafé").await;
    let theirs = create_as(&s, &other, "e2", "Nicht meins").await;
    spin(&s, &me, "e3", &theirs, "INTERESSE").await;
    let write = |token: String, key: &'static str, knoten: String, text: &'static str| {
        let s = &s;
        async move {
            let r = s
                .gql_as(
                    &token,
                    "mutation($i: WriteNachrichtInput!) { writeNachricht(input: $i) { nachricht { id } } }",
                    json!({"i": {"idempotencyKey": key, "knotenId": knoten, "text": text}}),
                )
                .await;
            assert!(r["errors"].is_null(), "{r}");
        }
    };
    write(me.clone(), "e4", mine.clone(), "Mein Geheimnis").await;
    write(other.clone(), "e5", mine.clone(), "Ottos Text").await;
    let export = "{ exportMyData }";
    until("the message to be projected", || async {
        s.gql_as(&me, export, json!({})).await["data"]["exportMyData"]["nachrichten"]
            .as_array()
            .is_some_and(|n| n.len() == 1)
    })
    .await;
    let r = s.gql_as(&me, export, json!({})).await;
    let doc = &r["data"]["exportMyData"];
    assert_eq!(doc["rolle"]["name"], "Testerin", "{r}");
    assert_eq!(doc["knoten"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(doc["knoten"][0]["title"], "Lesecafé");
    assert_eq!(doc["knoten"][0]["id"], mine.as_str());
    assert_eq!(
        doc["nachrichten"][0]["text"], "Mein Geheimnis",
        "opened, not sealed: {r}"
    );
    assert_eq!(doc["faeden"][0]["toKnoten"], theirs.as_str(), "{r}");
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1, "{r}");
    assert!(
        !r.to_string().contains("Ottos Text") && !r.to_string().contains("Nicht meins"),
        "nobody else's data: {r}"
    );
    let anonymous = s.gql_as("", export, json!({})).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    s.finish().await;
}
