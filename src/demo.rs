//! `weberei demo`: seed a small demo town (Knoten around Weimar's centre) through the normal
//! command path. Deterministic ids and idempotency keys make it safe to run at every start.

use anyhow::Result;
use chrono::Utc;
use domain::events::KnotenTyp;
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};
use domain::{Actor, AggregateType, Meta};
use uuid::Uuid;

const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x2d6e_51a0_77c4_4b8e_a0f3_5c1e_9d24_b803);

/// (title, typ, lat, lng, text)
const DEMO_KNOTEN: &[(&str, KnotenTyp, f64, f64, &str)] = &[
    (
        "Gemeinschaftsgarten am Ilmufer",
        KnotenTyp::Ideen,
        50.9772,
        11.3322,
        "Beete für alle, Wasser aus der Ilm.",
    ),
    (
        "Reparaturcafé im Stadtteilzentrum",
        KnotenTyp::Event,
        50.9846,
        11.3190,
        "Jeden ersten Samstag, 14 Uhr.",
    ),
    (
        "Lastenrad zum Ausleihen",
        KnotenTyp::Ressource,
        50.9801,
        11.3290,
        "Schlüssel beim Bäcker an der Ecke.",
    ),
    (
        "Bücherschrank am Goetheplatz",
        KnotenTyp::Ressource,
        50.9811,
        11.3245,
        "Nimm eins, bring eins.",
    ),
    (
        "Nachbarschaftsfest im Park",
        KnotenTyp::Event,
        50.9745,
        11.3301,
        "Musik, Kuchen, Tauschbörse.",
    ),
    (
        "Mehr Bänke am Frauenplan",
        KnotenTyp::Ideen,
        50.9786,
        11.3288,
        "Zum Ausruhen zwischen den Einkäufen.",
    ),
    (
        "Werkzeugverleih",
        KnotenTyp::Ressource,
        50.9829,
        11.3356,
        "Bohrmaschine, Leiter, Schubkarre.",
    ),
    (
        "Sprachcafé Deutsch–Arabisch",
        KnotenTyp::Event,
        50.9768,
        11.3197,
        "Dienstags 18 Uhr in der Bibliothek.",
    ),
];

/// Create the demo Knoten that do not exist yet. Returns how many were new.
pub async fn seed(bus: &bus::Bus) -> Result<usize> {
    let mut created = 0;
    for (n, (title, typ, lat, lng, text)) in DEMO_KNOTEN.iter().enumerate() {
        let id = Uuid::new_v5(
            &DEMO_NAMESPACE,
            format!("{}:{n}", bus.config().ort).as_bytes(),
        );
        let cmd = KnotenCommand::Create(CreateKnoten {
            id,
            title: (*title).to_owned(),
            typ: *typ,
            content: Some(serde_json::json!({ "text": text })),
            lat: *lat,
            lng: *lng,
            now: Utc::now(),
            // Demo Knoten stay for a year so the map is never empty on a laptop.
            ttl: chrono::Duration::days(365),
            fine_res: domain::geo::FINE_RES,
        });
        let meta = Meta {
            actor: Actor::System,
            ip_hash: None,
            ua_hash: None,
            msg_id: format!("demo:{id}"),
        };
        match bus
            .execute::<Knoten>(AggregateType::Knoten, id, &cmd, meta, Utc::now(), false)
            .await
        {
            Ok(done) if done.outcome == bus::Outcome::Appended => created += 1,
            Ok(_) => {}
            // Seeded earlier under another key (or already there): nothing to do.
            Err(bus::ExecuteError::Refused(domain::DomainError::Conflict(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}
