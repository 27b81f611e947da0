//! Commands and sealed events of a synthetic town around Weimar: the same domain code
//! (`decide`) and the same sealing as `bus::Bus::execute` (JCS hash over the whole envelope,
//! `prev_hash` of the chain's head), so the bytes are what the real path would publish.

use anyhow::Result;
use chrono::{DateTime, Utc};
use domain::events::{FadenTyp, KnotenTyp};
use domain::faden::{Faden, FadenCommand, Spinnen, faden_id};
use domain::knoten::{CreateKnoten, Gestalten, Knoten, KnotenCommand};
use domain::{Actor, Aggregate, AggregateType, Envelope, Meta, NewEvent, Ort};
use ulid::Ulid;
use uuid::Uuid;
use workers::Incoming;

/// Weimar's market.
pub const LAT: f64 = 50.9795;
pub const LNG: f64 = 11.3235;
/// Half the town's extent in degrees (about 22 km × 14 km).
pub const HALF_LAT: f64 = 0.06;
pub const HALF_LNG: f64 = 0.1;

/// A point of the town, spread evenly by `i` (a low-discrepancy sequence, no randomness).
pub fn spot(i: u64) -> (f64, f64) {
    let a = (i as f64 * 0.618_033_988_75).fract();
    let b = (i as f64 * 0.754_877_666_25).fract();
    (
        LAT + (a * 2.0 - 1.0) * HALF_LAT,
        LNG + (b * 2.0 - 1.0) * HALF_LNG,
    )
}

pub fn meta(msg_id: String) -> Meta {
    Meta {
        actor: Actor::System,
        ip_hash: None,
        ua_hash: None,
        msg_id,
    }
}

pub fn create_knoten(id: Uuid, i: u64, now: DateTime<Utc>) -> KnotenCommand {
    let (lat, lng) = spot(i);
    KnotenCommand::Create(CreateKnoten {
        id,
        title: format!("Knoten {i}"),
        typ: match i % 3 {
            0 => KnotenTyp::Ideen,
            1 => KnotenTyp::Event,
            _ => KnotenTyp::Ressource,
        },
        content: None,
        lat,
        lng,
        now,
        ttl: chrono::Duration::days(7),
        fine_res: domain::geo::FINE_RES,
    })
}

pub fn spin(rolle: Uuid, knoten: Uuid, typ: FadenTyp, now: DateTime<Utc>) -> FadenCommand {
    FadenCommand::Spinnen(Spinnen {
        rolle,
        knoten,
        typ,
        now,
        ttl: chrono::Duration::days(7),
        knoten_alive: true,
    })
}

pub fn design(version: u32, n: u64) -> KnotenCommand {
    KnotenCommand::Gestalten(Gestalten {
        expected_version: version,
        content: serde_json::json!({ "blocks": [{ "type": "text", "text": format!("Fassung {n}") }] }),
        editor: Uuid::nil(),
        editor_may_edit: true,
    })
}

/// Seal one decided event onto a chain, as `Bus::execute` does.
pub fn seal(
    ort: &Ort,
    aggregate_type: AggregateType,
    id: Uuid,
    prev_hash: Option<String>,
    event: NewEvent,
    msg_id: String,
    now: DateTime<Utc>,
) -> Result<(Envelope, String)> {
    let env = Envelope {
        id: Ulid::new(),
        event_type: event.event_type.as_str().to_owned(),
        version: event.version,
        aggregate_id: id,
        aggregate_type,
        prev_hash,
        ts: domain::envelope::truncate_millis(now),
        subject: ort.aggregate_subject(aggregate_type, id),
        payload: event.payload,
        meta: meta(msg_id),
    };
    let hash = domain::hash_envelope(&env)?;
    Ok((env, hash))
}

/// Builds a town's events as stream messages for `Projector::apply_batch` (sequence numbers
/// of the social stream, one after the other).
pub struct TownBuilder {
    pub ort: Ort,
    stream: String,
    seq: u64,
    now: DateTime<Utc>,
}

impl TownBuilder {
    pub fn new(ort: Ort) -> Self {
        let stream = ort.stream_name(domain::StreamDomain::Social);
        Self {
            ort,
            stream,
            seq: 0,
            now: Utc::now(),
        }
    }

    fn incoming(&mut self, env: &Envelope) -> Result<Incoming> {
        self.seq += 1;
        Ok(Incoming {
            stream: self.stream.clone(),
            seq: self.seq,
            subject: env.subject.clone(),
            payload: serde_json::to_vec(env)?,
            published: None,
        })
    }

    /// A new Knoten (number `i`): its id and message.
    pub fn knoten(&mut self, i: u64) -> Result<(Uuid, Incoming)> {
        let id = Uuid::new_v4();
        let decided = Knoten::default().decide(&create_knoten(id, i, self.now))?;
        let mut out = None;
        for ev in decided {
            let (env, _) = seal(
                &self.ort,
                AggregateType::Knoten,
                id,
                None,
                ev,
                format!("bench:k:{id}"),
                self.now,
            )?;
            out = Some(self.incoming(&env)?);
        }
        let msg = out.ok_or_else(|| anyhow::anyhow!("createKnoten decided nothing"))?;
        Ok((id, msg))
    }

    /// A new Faden from `rolle` to `knoten`.
    pub fn faden(&mut self, rolle: Uuid, knoten: Uuid, typ: FadenTyp) -> Result<Incoming> {
        let id = faden_id(rolle, knoten, typ);
        let decided = Faden::default().decide(&spin(rolle, knoten, typ, self.now))?;
        let mut out = None;
        for ev in decided {
            let (env, _) = seal(
                &self.ort,
                AggregateType::Faden,
                id,
                None,
                ev,
                format!("bench:f:{id}"),
                self.now,
            )?;
            out = Some(self.incoming(&env)?);
        }
        out.ok_or_else(|| anyhow::anyhow!("spinFaden decided nothing"))
    }

    /// One Knoten with `edits` design changes after its creation: a chain of `edits + 1`.
    pub fn long_chain(&mut self, i: u64, edits: u32) -> Result<(Uuid, Vec<Incoming>)> {
        let id = Uuid::new_v4();
        let mut state = Knoten::default();
        let mut prev: Option<String> = None;
        let mut out = Vec::with_capacity(edits as usize + 1);
        for n in 0..=edits {
            let cmd = if n == 0 {
                create_knoten(id, i, self.now)
            } else {
                design(n - 1, u64::from(n))
            };
            for ev in state.decide(&cmd)? {
                let (env, hash) = seal(
                    &self.ort,
                    AggregateType::Knoten,
                    id,
                    prev.clone(),
                    ev,
                    format!("bench:c:{id}:{n}"),
                    self.now,
                )?;
                state.apply(&env)?;
                prev = Some(hash);
                out.push(self.incoming(&env)?);
            }
        }
        Ok((id, out))
    }
}
