//! The API's settings ([`ApiConfig`], read once at start by the binary) and feature flags.

use std::time::Duration;

use h3o::Resolution;

/// Settings of the API, read once at start by the binary.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest bounding box a client may ask for, in square degrees.
    pub max_bbox_area_deg2: f64,
    /// How often viewport subscribers get their batched diff (DESIGN.md §5: 1.5 s).
    pub ws_tick: Duration,
    /// Fine H3 resolution of Knoten cells.
    pub fine_res: Resolution,
    /// How long a Knoten lives before it decays unless taken up.
    pub knoten_ttl: chrono::Duration,
    /// Salt for ip/ua hashes (never store raw values).
    pub hash_salt: String,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most items one connection page may return.
    pub max_page_size: usize,
    /// Deliveries (one per tick) a viewport subscriber may have waiting before its queue is
    /// dropped and replaced by one `resync` notice (DESIGN.md §5 "Slow clients").
    pub ws_queue: usize,
    /// A viewport subscriber that got nothing for this long gets an empty `heartbeat` diff.
    pub heartbeat: Duration,
    /// Most H3 tiles one viewport subscription may cover (VALIDATION "zoom in" above).
    pub max_viewport_tiles: usize,
    /// Shortest time between filing an Antrag and its decision deadline (default 24 h).
    pub min_decision_period: chrono::Duration,
    /// Feature flags (DESIGN.md §9).
    pub flags: Flags,
    /// Directory of the built web client (served at `/`, with `index.html` for every path the
    /// router does not know). `None`, or a directory without `index.html`: `/` goes to GraphiQL.
    pub web_dir: Option<std::path::PathBuf>,
    /// A MapLibre style URL for the web map's base tiles; `None`: the offline default style.
    pub map_style_url: Option<String>,
}

/// Feature flags with the defaults of DESIGN.md §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub search: bool,
    pub tour: bool,
    pub timeline_delta: bool,
    pub push: bool,
    pub transitive_delegation: bool,
    pub stripe: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            search: true,
            tour: false,
            timeline_delta: false,
            push: false,
            transitive_delegation: false,
            stripe: false,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_bbox_area_deg2: 25.0,
            ws_tick: Duration::from_millis(1500),
            fine_res: domain::geo::FINE_RES,
            knoten_ttl: chrono::Duration::days(domain::knoten::DEFAULT_TTL_DAYS),
            hash_salt: String::new(),
            max_body_bytes: 256 * 1024,
            max_page_size: 500,
            ws_queue: 64,
            heartbeat: Duration::from_secs(30),
            max_viewport_tiles: 300,
            min_decision_period: chrono::Duration::hours(24),
            flags: Flags::default(),
            web_dir: None,
            map_style_url: None,
        }
    }
}
