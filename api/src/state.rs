//! What every request handler shares: the schema, the bus, the database and the settings.

use std::sync::Arc;

use bus::Bus;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;

use crate::config::ApiConfig;
use crate::graphql::AppSchema;
use crate::live::LiveHub;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub bus: Bus,
    pub db: DatabaseConnection,
    pub config: Arc<ApiConfig>,
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    pub fn new(
        bus: Bus,
        db: DatabaseConnection,
        hub: LiveHub,
        config: ApiConfig,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        let config = Arc::new(config);
        let schema = crate::graphql::schema(bus.clone(), db.clone(), hub, config.clone());
        Self {
            schema,
            bus,
            db,
            config,
            metrics,
        }
    }
}
