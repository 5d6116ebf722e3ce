//! What a spec answers: which lanes exist, which version of a service serves a lane (after
//! fallback), and the names of a lane's data namespaces.
//!
//! Routers, consumers and data adapters ask these while they decide, so they are plain reads of
//! the document: nothing is built or cached.

use super::schema::{LaneDef, LaneSpec, ServiceSpec};
use crate::lane::{Lane, LaneSet};

/// A lane's data namespaces, rendered.
///
/// The prefix and the suffix are empty for base because the empty string is what base adds to
/// a key or a group id: nothing. A schema has no such value (an empty schema name is not the
/// application's schema), so base's is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataNames {
    /// Prepended to every Redis key; empty for base.
    pub redis_prefix: String,
    /// The shadow schema; `None` for base (the application's own schema).
    pub pg_schema: Option<String>,
    /// Appended to Kafka consumer group ids; empty for base.
    pub kafka_group_suffix: String,
}

impl LaneSpec {
    /// The configured lanes (base included).
    pub fn lane_set(&self) -> LaneSet {
        LaneSet::new(self.lanes.iter().map(|l| l.name))
    }

    /// The lane definition named `lane`.
    pub fn lane(&self, lane: Lane) -> Option<&LaneDef> {
        self.lanes.iter().find(|l| l.name == lane)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Whether `service` has a version in `lane` (every service has one in base).
    pub fn has_version(&self, service: &str, lane: Lane) -> bool {
        lane.is_base()
            || self
                .lane(lane)
                .is_some_and(|l| l.services.iter().any(|s| s == service))
    }

    /// The lane whose version of `service` serves a request of `lane`: `lane` itself when the
    /// service has a version there, else base (fallback).
    pub fn serving_lane(&self, service: &str, lane: Lane) -> Lane {
        if self.has_version(service, lane) {
            lane
        } else {
            Lane::BASE
        }
    }

    /// The version label of the deployment serving `service` in `lane` (after fallback).
    pub fn serving_version(&self, service: &str, lane: Lane) -> Option<&str> {
        match self.serving_lane(service, lane) {
            l if l.is_base() => self.service(service).map(|s| s.version.as_str()),
            l => self.lane(l).map(LaneDef::version),
        }
    }

    /// The data namespaces of `lane`. Base (and unconfigured lanes) get the base names.
    pub fn data_names(&self, lane: Lane) -> DataNames {
        match self.lane(lane) {
            Some(def) => self.data_names_of(def),
            None => DataNames {
                redis_prefix: String::new(),
                pg_schema: None,
                kafka_group_suffix: String::new(),
            },
        }
    }

    /// The data namespaces of the lane `def` defines, without looking it up (validation asks
    /// this for every lane, and a lookup scans them all).
    pub(super) fn data_names_of(&self, def: &LaneDef) -> DataNames {
        let lane = def.name;
        let o = def.data.clone().unwrap_or_default();
        let render = |t: &str, name: &str| t.replace("{lane}", name);
        let pg_name = lane.as_str().replace('-', "_");
        DataNames {
            redis_prefix: o
                .redis_prefix
                .unwrap_or_else(|| render(&self.data.redis_prefix, lane.as_str())),
            pg_schema: Some(
                o.pg_schema
                    .unwrap_or_else(|| render(&self.data.pg_schema, &pg_name)),
            ),
            kafka_group_suffix: o
                .kafka_group_suffix
                .unwrap_or_else(|| render(&self.data.kafka_group_suffix, lane.as_str())),
        }
    }
}
