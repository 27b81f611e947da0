//! Payloads of the social family: the Knoten (tied, designed, faded, twisted, its room's
//! messages, content hidden by moderation), the Faden, and a Rolle's registration and deletion.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::AggregateType;

use super::governance::FlagTarget;
use super::{EventType, Payload};

/// Knoten kinds (seed §2.2 `knoten_typ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnotenTyp {
    Ideen,
    Event,
    Ressource,
}

impl KnotenTyp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ideen => "ideen",
            Self::Event => "event",
            Self::Ressource => "ressource",
        }
    }
}

/// A Knoten was tied at a point on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenGeknuepft {
    pub title: String,
    pub typ: KnotenTyp,
    /// Free-form structured content of the design area (a JSON object).
    pub content: serde_json::Value,
    pub lat: f64,
    pub lng: f64,
    /// H3 cell at the fine resolution, in the usual hex notation (e.g. `8c1f...`).
    pub h3: String,
    pub expires_at: DateTime<Utc>,
}

impl Payload for KnotenGeknuepft {
    const TYPE: EventType = EventType::KnotenGeknuepft;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// The design area of a Knoten was edited. `version` is the new version (previous + 1); an
/// edit against a stale version is refused, never silently merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenGestaltet {
    pub version: u32,
    /// The whole new content of the design area (a JSON object).
    pub content: serde_json::Value,
}

impl Payload for KnotenGestaltet {
    const TYPE: EventType = EventType::KnotenGestaltet;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// The Knoten reached its expiry without becoming yarn: it leaves the live map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenVerfallen {
    /// The expiry that was reached.
    pub expired_at: DateTime<Utc>,
}

impl Payload for KnotenVerfallen {
    const TYPE: EventType = EventType::KnotenVerfallen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// Threads from enough distinct roles twisted the Knoten into yarn: it never decays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnotenVerzwirnt {
    /// The distinct roles whose active threads made the yarn (sorted).
    pub roles: Vec<Uuid>,
}

impl Payload for KnotenVerzwirnt {
    const TYPE: EventType = EventType::KnotenVerzwirnt;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// A message in the room of a Knoten (on the Knoten's chain). The text is sealed with the
/// author's data key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NachrichtGeschrieben {
    /// Id of the message (UUID), stable across retries.
    pub nachricht_id: Uuid,
    pub author: Uuid,
    pub text: crate::privacy::Sealed,
    /// Roles mentioned with @name, resolved when the message was written.
    pub mentions: Vec<Uuid>,
}

impl Payload for NachrichtGeschrieben {
    const TYPE: EventType = EventType::NachrichtGeschrieben;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// Moderation hid content on the map (not in DESIGN.md's list: added so the live map can take
/// it off). `FlagResolved { hidden }` is the decision, on the flag's chain in the governance
/// stream; this event records its consequence on the Knoten's chain in the social stream, where
/// viewport subscribers and their cursors follow the map. Appended by the jobs worker (message
/// id `verborgen:<flag id>`), once per flag; the content stays in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InhaltVerborgen {
    /// The flag whose resolution hid it.
    pub flag_id: Uuid,
    /// The Knoten itself or one message in its room.
    pub target: FlagTarget,
}

impl Payload for InhaltVerborgen {
    const TYPE: EventType = EventType::InhaltVerborgen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Knoten;
}

/// Faden kinds (seed §2.2 `faden_typ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FadenTyp {
    Interesse,
    Beitrag,
    Mitarbeit,
}

impl FadenTyp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interesse => "interesse",
            Self::Beitrag => "beitrag",
            Self::Mitarbeit => "mitarbeit",
        }
    }
}

/// A role spun a thread to a Knoten, or renewed it (the same triple again, same chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FadenGesponnen {
    pub from_rolle: Uuid,
    pub to_knoten: Uuid,
    pub typ: FadenTyp,
    pub expires_at: DateTime<Utc>,
}

impl Payload for FadenGesponnen {
    const TYPE: EventType = EventType::FadenGesponnen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Faden;
}

/// The thread reached its expiry without becoming yarn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FadenVerfallen {
    pub expired_at: DateTime<Utc>,
}

impl Payload for FadenVerfallen {
    const TYPE: EventType = EventType::FadenVerfallen;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Faden;
}

/// The thread was twisted into the yarn of its Knoten: it never decays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FadenVerzwirnt {
    pub knoten: Uuid,
}

impl Payload for FadenVerzwirnt {
    const TYPE: EventType = EventType::FadenVerzwirnt;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Faden;
}

/// A person registered a role. The name is sealed with the role's data key from the first
/// event on; the home is an H3 cell (coarse on purpose: privacy by design).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolleRegistriert {
    pub name: crate::privacy::Sealed,
    /// Home cell at [`crate::geo::HOME_RES`], hex.
    pub home_h3: String,
}

impl Payload for RolleRegistriert {
    const TYPE: EventType = EventType::RolleRegistriert;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Rolle;
}

/// The person deleted their role: its data key is destroyed (crypto-shredding); an alias
/// stays for the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDeleted {
    /// Pseudonym shown instead of the name from now on.
    pub alias: String,
}

impl Payload for UserDeleted {
    const TYPE: EventType = EventType::UserDeleted;
    const VERSION: u32 = 1;
    const AGGREGATE: AggregateType = AggregateType::Rolle;
}
