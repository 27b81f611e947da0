#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `weberei admin verify|grant <rolle>` through the real binary against the machine's shared
//! NATS and PostgreSQL (its own Ort and a fresh database): the admin action is recorded on the
//! system stream, the role's chain gets `RolleVerifiziert` pointing at it, and refusals exit
//! non-zero with their code and leave nothing behind.

use std::process::Output;

use bus::{Bus, BusConfig};
use chrono::Utc;
use domain::events::{AdminActionExecuted, RolleVerifiziert};
use domain::rolle::{Registrieren, Rolle, RolleCommand};
use domain::{Actor, AggregateType, Meta, Ort, StreamDomain};
use uuid::Uuid;

async fn admin(ort: &str, db_url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_weberei"))
        .arg("admin")
        .args(args)
        .env("NATS_URL", testkit::nats_url())
        .env("DATABASE_URL", db_url)
        .env("WEBEREI_ORT", ort)
        .env_remove("REDIS_URL")
        .output()
        .await
        .expect("running weberei admin")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn register(bus: &Bus, name: &str) -> Uuid {
    let id = Uuid::new_v4();
    let cmd = RolleCommand::Registrieren(Registrieren {
        id,
        name: name.into(),
        lat: 50.98,
        lng: 11.32,
        key: [7; 32],
        nonce: [9; 24],
    });
    let meta = Meta {
        actor: Actor::Rolle(id),
        ip_hash: None,
        ua_hash: None,
        msg_id: format!("register:{id}"),
    };
    bus.execute::<Rolle>(id, &cmd, meta, Utc::now(), bus::Expect::NewChain)
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_verify_and_grant_record_admin_actions_and_verify_the_role() {
    let db = testkit::fresh_database().await;
    let ort = testkit::unique_ort();
    let bus = Bus::connect(
        &testkit::nats_url(),
        BusConfig::new(Ort::new(&ort).unwrap(), 64 * 1024 * 1024),
        None,
    )
    .await
    .unwrap();
    bus.ensure_streams().await.unwrap();
    let rolle = register(&bus, "Anna").await;
    let id = rolle.to_string();

    let out = admin(&ort, &db.url, &["verify", &id, "--detail", "erste Rolle"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("AdminActionExecuted"), "{}", text(&out));
    assert!(stdout.contains("RolleVerifiziert"), "{}", text(&out));

    let chain = bus.history(AggregateType::Rolle, rolle).await.unwrap();
    let verified = chain
        .iter()
        .find(|s| s.envelope.event_type == "RolleVerifiziert")
        .expect("RolleVerifiziert on the role's chain");
    let v: RolleVerifiziert = verified.envelope.decode().unwrap();
    assert!(v.verified_by.is_empty());
    let action_id = v.by_admin_action.expect("points at the admin action");
    assert!(stdout.contains(&action_id.to_string()), "{}", text(&out));
    assert_eq!(bus.stream_messages(StreamDomain::System).await.unwrap(), 1);

    // Verifying again is refused (CONFLICT) and records no second admin action.
    let again = admin(&ort, &db.url, &["verify", &id]).await;
    assert!(!again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("CONFLICT"),
        "{}",
        text(&again)
    );
    let unknown = admin(&ort, &db.url, &["verify", &Uuid::new_v4().to_string()]).await;
    assert!(!unknown.status.success(), "{}", text(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("NOT_FOUND"),
        "{}",
        text(&unknown)
    );
    assert_eq!(bus.stream_messages(StreamDomain::System).await.unwrap(), 1);

    // Granting admin rights is an admin action of its own, recorded once.
    let grant = admin(&ort, &db.url, &["grant", &id]).await;
    assert!(grant.status.success(), "{}", text(&grant));
    let twice = admin(&ort, &db.url, &["grant", &id]).await;
    assert!(twice.status.success(), "{}", text(&twice));
    assert!(
        String::from_utf8_lossy(&twice.stdout).contains("recorded before"),
        "{}",
        text(&twice)
    );
    assert_eq!(bus.stream_messages(StreamDomain::System).await.unwrap(), 2);
    let last = bus.get(StreamDomain::System, 2).await.unwrap();
    let p: AdminActionExecuted = last.envelope.decode().unwrap();
    assert_eq!((p.action.as_str(), p.target), ("grant_admin", Some(rolle)));

    bus.delete_streams().await.unwrap();
    db.drop_db().await;
}
