//! `weberei up` spoken to only through `weberei-client` (`client_rust_e2e.rs`,
//! `client_rust_errors.rs`): the server, a registered role's client, Knoten to tie and the
//! viewport around them.

use std::time::Duration;

use testkit::up::{Options, Up};
use weberei_client::{
    Client, CreateKnoten, KnotenTyp, Register, create_knoten, register, viewport,
};

/// Weimar's market: every Knoten is tied around here.
pub const LAT: f64 = 50.9795;
pub const LNG: f64 = 11.3235;
/// Long enough for any single step (a diff arrives within one tick of 200 ms).
pub const STEP: Duration = Duration::from_secs(15);

pub async fn start() -> (Up, Client) {
    let up = Up::start(
        env!("CARGO_BIN_EXE_weberei"),
        Options::default().env("WEBEREI_MIN_DECISION_SECONDS", "1"),
    )
    .await;
    let client = Client::new(up.url()).unwrap();
    (up, client)
}

/// Register a role at home in Weimar; returns its id and a client with its session.
pub async fn register(client: &Client, name: &str) -> (String, Client) {
    let reg = client
        .mutate::<Register>(register::Variables {
            input: register::RegisterInput {
                idempotency_key: String::new(),
                name: name.to_owned(),
                lat: LAT,
                lng: LNG,
                device_label: Some("e2e".to_owned()),
            },
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e}"));
    assert!(!reg.register.replayed);
    assert!(reg.register.token.starts_with("wb_"));
    let id = reg.register.rolle.rolle_core_fields.id.clone();
    (id, client.with_token(reg.register.token))
}

pub fn knoten_input(title: &str, i: usize) -> create_knoten::CreateKnotenInput {
    create_knoten::CreateKnotenInput {
        idempotency_key: String::new(),
        title: title.to_owned(),
        typ: KnotenTyp::Ideen,
        content: Some(serde_json::json!({ "text": "end to end", "i": i })),
        // Spread a little, all well inside the box.
        lat: LAT + 0.0001 * i as f64,
        lng: LNG,
    }
}

pub async fn create_knoten(client: &Client, title: &str, i: usize) -> String {
    let out = client
        .mutate::<CreateKnoten>(create_knoten::Variables {
            input: knoten_input(title, i),
        })
        .await
        .unwrap_or_else(|e| panic!("createKnoten {title}: {e}"));
    let event = &out.create_knoten.event;
    assert_eq!(event.hash.len(), 64, "{event:?}");
    assert!(
        event.stream_sequence.is_some_and(|s| s.get() > 0),
        "{event:?}"
    );
    out.create_knoten.knoten.id
}

pub fn weimar() -> viewport::Variables {
    viewport::Variables {
        bbox: viewport::BboxInput {
            west: LNG - 0.01,
            south: LAT - 0.01,
            east: LNG + 0.01,
            north: LAT + 0.01,
        },
        zoom: Some(15.0),
        after: None,
    }
}
