//! `weberei demo`: seed a small demo town around Weimar's centre through the normal command
//! paths, so that a newcomer sees the product: Knoten (system), four roles homed in different
//! neighbourhoods (three of them verified by an admin action), threads from their homes (three
//! roles to the community garden, which the jobs worker twists into yarn), messages in two
//! rooms, and an Antrag with a vote, an objection and a delegation.
//!
//! Deterministic ids and msg ids make it safe to run at every start: a second run finds every
//! msg id on its chain and writes nothing (it reports 0 new). Roles are created by
//! `api::accounts::register_rolle` (the `register` mutation's path, with its data key), threads
//! by `api::rooms::spin_faden` and messages by `api::rooms::write_nachricht` (the
//! `spinFaden`/`writeNachricht` paths); the Webrat's commands go through `Bus::execute` with the
//! facts read from the roles' chains. Demo roles have no idempotency key and no session: their
//! ids are not derived from a key, so nobody can log in as them.

use std::fmt;

use anyhow::{Result, anyhow};
use bus::{Bus, Executed, Outcome};
use chrono::{DateTime, Duration, Utc};
use domain::aggregate::Aggregate;
use domain::antrag::{Abstimmen, Antrag, AntragCommand, Einspruch, Stellen};
use domain::delegation::{Delegation, DelegationCommand, Erstellen, delegation_id};
use domain::events::{AntragGestellt, FadenTyp, KnotenTyp, Vote};
use domain::governance::weberei_of_home;
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};
use domain::rolle::Rolle;
use domain::{Actor, AggregateType, DomainError, Meta};
use sea_orm::DatabaseConnection;
use tracing::warn;
use uuid::Uuid;

use crate::settings::Settings;

/// Namespace of the demo ids (UUIDv5 of `<ort>:<what>`). Fixed for ever: changing it would seed
/// a second town beside the first.
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

// Indices into DEMO_KNOTEN.
const GARTEN: usize = 0;
const REPARATURCAFE: usize = 1;
const BUECHERSCHRANK: usize = 3;
const BAENKE: usize = 5;
const SPRACHCAFE: usize = 7;

/// The demo roles: (name, home lat, home lng, verified by an admin action). Each home lies in
/// another neighbourhood of Weimar (only its coarse H3 cell is kept).
const DEMO_ROLLEN: &[(&str, f64, f64, bool)] = &[
    ("Anna", 50.9795, 11.3235, true),   // Altstadt, near the Goetheplatz
    ("Ben", 50.9852, 11.3150, true),    // Westvorstadt
    ("Carla", 50.9712, 11.3378, true),  // Südstadt, by the Ilm park
    ("Deniz", 50.9885, 11.3335, false), // Nordvorstadt
];

// Indices into DEMO_ROLLEN.
const ANNA: usize = 0;
const BEN: usize = 1;
const CARLA: usize = 2;
const DENIZ: usize = 3;

/// Threads: (role, Knoten, typ). Anna, Ben and Carla to the garden make it yarn.
const DEMO_FAEDEN: &[(usize, usize, FadenTyp)] = &[
    (ANNA, GARTEN, FadenTyp::Mitarbeit),
    (BEN, GARTEN, FadenTyp::Beitrag),
    (CARLA, GARTEN, FadenTyp::Interesse),
    (ANNA, BAENKE, FadenTyp::Mitarbeit),
    (BEN, REPARATURCAFE, FadenTyp::Mitarbeit),
    (CARLA, BUECHERSCHRANK, FadenTyp::Beitrag),
    (DENIZ, REPARATURCAFE, FadenTyp::Interesse),
    (DENIZ, SPRACHCAFE, FadenTyp::Mitarbeit),
];

/// Room messages, in this order: (author, Knoten, text).
const DEMO_NACHRICHTEN: &[(usize, usize, &str)] = &[
    (
        ANNA,
        GARTEN,
        "Hallo zusammen! Am Samstag ab 10 Uhr graben wir die neuen Beete um. Spaten sind da, Handschuhe bitte selbst mitbringen.",
    ),
    (
        BEN,
        GARTEN,
        "Bin dabei! Ich bringe Tomaten- und Zucchinisetzlinge von meinem Balkon mit.",
    ),
    (
        CARLA,
        GARTEN,
        "Schön! Ich kann erst ab 12, bringe aber Kaffee und Rhabarberkuchen für die Pause mit.",
    ),
    (
        ANNA,
        GARTEN,
        "Perfekt, dann machen wir um 12 gemeinsam Pause. Die Gießkannen stehen im Schuppen am Ufer.",
    ),
    (
        BEN,
        REPARATURCAFE,
        "Diesen Samstag haben wir eine zweite Nähmaschine und einen neuen Lötkolben. Bringt gern vorbei, was kaputt ist!",
    ),
    (
        DENIZ,
        REPARATURCAFE,
        "Super! Mein Toaster macht seit Wochen keinen Mucks mehr. Ich komme gegen 14 Uhr vorbei.",
    ),
    (
        BEN,
        REPARATURCAFE,
        "Gerne, bring ihn mit. Meistens ist es nur die Thermosicherung, das kriegen wir hin.",
    ),
];

const ANTRAG_TITLE: &str = "Mehr Bänke am Frauenplan";
const ANTRAG_TEXT: &str = "Zwischen Goethehaus und Markt gibt es kaum Sitzplätze. Wir beantragen vier zusätzliche Bänke am Frauenplan, zwei davon im Schatten der Linden.";
const EINSPRUCH_REASON: &str = "Gute Idee, aber bitte keine Bank direkt vor dem Goethehaus: Dort stauen sich schon jetzt die Reisegruppen.";
/// How long the demo Antrag is open after the first seeding.
const ANTRAG_OPEN_DAYS: i64 = 14;

/// Facts the demo needs from the server's configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a thread lives unless it becomes yarn (the API's `knoten_ttl`).
    pub faden_ttl: Duration,
    /// Shortest time between filing an Antrag and its deadline.
    pub min_decision_period: Duration,
}

impl Options {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            faden_ttl: api::ApiConfig::default().knoten_ttl,
            min_decision_period: Duration::seconds(s.min_decision_seconds.max(0)),
        }
    }
}

/// What one run of [`seed`] wrote (all zero on a second run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seeded {
    pub knoten: usize,
    pub rollen: usize,
    pub verified: usize,
    pub faeden: usize,
    pub nachrichten: usize,
    pub antraege: usize,
    pub stimmen: usize,
    pub einsprueche: usize,
    pub delegationen: usize,
}

impl Seeded {
    /// Everything new, together.
    pub fn total(&self) -> usize {
        self.knoten
            + self.rollen
            + self.verified
            + self.faeden
            + self.nachrichten
            + self.antraege
            + self.stimmen
            + self.einsprueche
            + self.delegationen
    }
}

impl fmt::Display for Seeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} new (Knoten {}, Rollen {}, verified {}, Fäden {}, Nachrichten {}, Anträge {}, Stimmen {}, Einsprüche {}, Delegationen {})",
            self.total(),
            self.knoten,
            self.rollen,
            self.verified,
            self.faeden,
            self.nachrichten,
            self.antraege,
            self.stimmen,
            self.einsprueche,
            self.delegationen
        )
    }
}

fn demo_id(bus: &Bus, what: &str) -> Uuid {
    Uuid::new_v5(
        &DEMO_NAMESPACE,
        format!("{}:{what}", bus.config().ort).as_bytes(),
    )
}

fn knoten_id(bus: &Bus, n: usize) -> Uuid {
    demo_id(bus, &n.to_string())
}

fn rolle_id(bus: &Bus, name: &str) -> Uuid {
    demo_id(bus, &format!("rolle:{}", name.to_lowercase()))
}

fn meta(actor: Actor, msg_id: String) -> Meta {
    Meta {
        actor,
        ip_hash: None,
        ua_hash: None,
        msg_id,
    }
}

fn is_new(done: &Executed) -> bool {
    done.outcome == Outcome::Appended && !done.events.is_empty()
}

fn api_error(what: &str, e: api::ApiError) -> anyhow::Error {
    anyhow!("demo {what}: {} ({})", e.message(), e.code())
}

/// A refusal the demo can live with: the town is older than its parts (a Knoten faded after a
/// year, the Antrag was decided before a step of an interrupted seeding ran). Logged, skipped.
fn skip_conflict<T>(what: &str, r: Result<T, api::ApiError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(api::ApiError::Domain(DomainError::Conflict(reason))) => {
            warn!(%reason, "demo {what}: skipped");
            Ok(None)
        }
        Err(e) => Err(api_error(what, e)),
    }
}

/// Through the bus as every other command: a domain refusal comes back as `ApiError::Domain`.
async fn execute<A: Aggregate>(
    bus: &Bus,
    id: Uuid,
    cmd: &A::Command,
    meta: Meta,
) -> Result<Executed, api::ApiError> {
    api::accounts::execute_on::<A>(bus, id, cmd, meta, bus::Expect::ExistingChain).await
}

async fn rolle_state(bus: &Bus, id: Uuid) -> Result<Rolle> {
    let chain = bus.history(AggregateType::Rolle, id).await?;
    Ok(Rolle::fold(chain.iter().map(|s| &s.envelope))?)
}

/// Seed what is missing of the demo town. Returns what was new.
pub async fn seed(bus: &Bus, db: &DatabaseConnection, opts: &Options) -> Result<Seeded> {
    let mut seeded = Seeded::default();
    seed_knoten(bus, &mut seeded).await?;
    let rollen = seed_rollen(bus, db, &mut seeded).await?;
    seed_faeden(bus, &rollen, opts, &mut seeded).await?;
    seed_nachrichten(bus, db, &rollen, &mut seeded).await?;
    seed_webrat(bus, db, &rollen, opts, &mut seeded).await?;
    Ok(seeded)
}

async fn seed_knoten(bus: &Bus, seeded: &mut Seeded) -> Result<()> {
    for (n, (title, typ, lat, lng, text)) in DEMO_KNOTEN.iter().enumerate() {
        let id = knoten_id(bus, n);
        let cmd = KnotenCommand::Create(CreateKnoten {
            id,
            title: (*title).to_owned(),
            typ: *typ,
            content: Some(serde_json::json!({ "text": text })),
            lat: *lat,
            lng: *lng,
            now: Utc::now(),
            // Demo Knoten stay for a year so the map is never empty on a laptop.
            ttl: Duration::days(365),
            fine_res: domain::geo::FINE_RES,
        });
        let meta = meta(Actor::System, format!("demo:{id}"));
        // Conflict: seeded earlier under another key (or already there): nothing to do.
        if let Some(done) = skip_conflict("Knoten", execute::<Knoten>(bus, id, &cmd, meta).await)?
            && is_new(&done)
        {
            seeded.knoten += 1;
        }
    }
    Ok(())
}

/// Register the demo roles and verify the first three. Returns their ids and states, in the
/// order of DEMO_ROLLEN.
async fn seed_rollen(
    bus: &Bus,
    db: &DatabaseConnection,
    seeded: &mut Seeded,
) -> Result<Vec<(Uuid, Rolle)>> {
    let mut out = Vec::with_capacity(DEMO_ROLLEN.len());
    for (name, lat, lng, verify) in DEMO_ROLLEN {
        let id = rolle_id(bus, name);
        let done = api::accounts::register_rolle(
            db,
            bus,
            api::accounts::NewRolle {
                id,
                name: (*name).to_owned(),
                lat: *lat,
                lng: *lng,
                meta: meta(Actor::Rolle(id), format!("demo:register:{id}")),
            },
        )
        .await
        .map_err(|e| api_error("register", e))?;
        if is_new(&done) {
            seeded.rollen += 1;
        }
        let mut state = rolle_state(bus, id).await?;
        if *verify && !state.verified && !state.deleted {
            api::admin::verify_rolle(bus, id, "demo")
                .await
                .map_err(|e| anyhow!("demo verify {name}: {e}"))?;
            seeded.verified += 1;
            state = rolle_state(bus, id).await?;
        }
        out.push((id, state));
    }
    Ok(out)
}

async fn seed_faeden(
    bus: &Bus,
    rollen: &[(Uuid, Rolle)],
    opts: &Options,
    seeded: &mut Seeded,
) -> Result<()> {
    for (rolle, knoten, typ) in DEMO_FAEDEN {
        let (rolle, _) = rollen[*rolle];
        let knoten = knoten_id(bus, *knoten);
        let id = domain::faden::faden_id(rolle, knoten, *typ);
        let meta = meta(Actor::Rolle(rolle), format!("demo:{rolle}:spinFaden:{id}"));
        let spun = api::rooms::spin_faden(bus, rolle, knoten, *typ, opts.faden_ttl, meta).await;
        if let Some(spun) = skip_conflict("spinFaden", spun)?
            && is_new(&spun.done)
        {
            seeded.faeden += 1;
        }
    }
    Ok(())
}

async fn seed_nachrichten(
    bus: &Bus,
    db: &DatabaseConnection,
    rollen: &[(Uuid, Rolle)],
    seeded: &mut Seeded,
) -> Result<()> {
    for (n, (author, knoten, text)) in DEMO_NACHRICHTEN.iter().enumerate() {
        let (author, _) = rollen[*author];
        let knoten = knoten_id(bus, *knoten);
        let meta = meta(
            Actor::Rolle(author),
            format!("demo:{author}:writeNachricht:{n}"),
        );
        let written = api::rooms::write_nachricht(db, bus, author, knoten, text, meta).await;
        if let Some(w) = skip_conflict("writeNachricht", written)?
            && !w.replayed
        {
            seeded.nachrichten += 1;
        }
    }
    Ok(())
}

/// Anna files an Antrag in her Weberei; Ben votes JA, Carla objects and delegates her vote to
/// Anna until the deadline.
async fn seed_webrat(
    bus: &Bus,
    db: &DatabaseConnection,
    rollen: &[(Uuid, Rolle)],
    opts: &Options,
    seeded: &mut Seeded,
) -> Result<()> {
    let (anna, anna_state) = &rollen[ANNA];
    let (ben, ben_state) = &rollen[BEN];
    let (carla, carla_state) = &rollen[CARLA];
    let (anna, ben, carla) = (*anna, *ben, *carla);
    let antrag = demo_id(bus, "antrag:0");
    let now = Utc::now();

    let home = anna_state
        .home_h3
        .as_deref()
        .ok_or_else(|| anyhow!("demo role Anna has no home"))?;
    let open_for =
        Duration::days(ANTRAG_OPEN_DAYS).max(opts.min_decision_period + Duration::hours(1));
    let cmd = AntragCommand::Stellen(Stellen {
        id: antrag,
        title: ANTRAG_TITLE.to_owned(),
        content: Some(serde_json::json!({ "text": ANTRAG_TEXT })),
        weavery_h3: weberei_of_home(home)?.to_string(),
        // On a later run the msg id is found and the first run's deadline comes back.
        deadline: now + open_for,
        now,
        min_deadline: opts.min_decision_period,
        by: anna,
        by_verified: anna_state.verified,
    });
    let meta_filed = meta(
        Actor::Rolle(anna),
        format!("demo:{anna}:fileAntrag:{antrag}"),
    );
    let done = execute::<Antrag>(bus, antrag, &cmd, meta_filed)
        .await
        .map_err(|e| api_error("fileAntrag", e))?;
    if is_new(&done) {
        seeded.antraege += 1;
    }
    let filed = done
        .events
        .first()
        .ok_or_else(|| anyhow!("demo fileAntrag produced no event"))?;
    let deadline: DateTime<Utc> = filed.envelope.decode::<AntragGestellt>()?.decision_deadline;
    if deadline <= Utc::now() {
        // The demo Antrag is decided: its votes, objection and delegation are history.
        return Ok(());
    }

    let cmd = AntragCommand::Abstimmen(Abstimmen {
        by: ben,
        vote: Vote::Ja,
        now: Utc::now(),
        by_verified: ben_state.verified,
    });
    let m = meta(Actor::Rolle(ben), format!("demo:{ben}:castStimme:{antrag}"));
    let voted = execute::<Antrag>(bus, antrag, &cmd, m).await;
    if let Some(done) = skip_conflict("castStimme", voted)?
        && is_new(&done)
    {
        seeded.stimmen += 1;
    }

    let key = api::accounts::data_key(db, carla)
        .await
        .map_err(|e| api_error("objectToAntrag", e))?
        .ok_or_else(|| anyhow!("demo role Carla has no data key"))?;
    let cmd = AntragCommand::Einspruch(Einspruch {
        by: carla,
        reason: EINSPRUCH_REASON.to_owned(),
        now: Utc::now(),
        by_verified: carla_state.verified,
        key,
        nonce: rand::random(),
    });
    let m = meta(
        Actor::Rolle(carla),
        format!("demo:{carla}:objectToAntrag:{antrag}"),
    );
    let objected = execute::<Antrag>(bus, antrag, &cmd, m).await;
    if let Some(done) = skip_conflict("objectToAntrag", objected)?
        && is_new(&done)
    {
        seeded.einsprueche += 1;
    }

    let cmd = DelegationCommand::Erstellen(Erstellen {
        from: carla,
        to: anna,
        valid_until: deadline,
        now: Utc::now(),
        to_exists: anna_state.is_registered() && !anna_state.deleted,
    });
    let m = meta(Actor::Rolle(carla), format!("demo:{carla}:delegate:{anna}"));
    let delegated = execute::<Delegation>(bus, delegation_id(carla), &cmd, m).await;
    if let Some(done) = skip_conflict("delegate", delegated)?
        && is_new(&done)
    {
        seeded.delegationen += 1;
    }
    Ok(())
}
