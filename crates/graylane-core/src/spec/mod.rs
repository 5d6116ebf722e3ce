//! The lane spec: the one document that declares lanes, services, coloring, trust and data naming.
//!
//! Every graylane piece reads the same spec: the edge colors with its rules, routers and Kafka
//! consumers fall back where a service has no version in a lane, data adapters name shadow
//! namespaces from it, and `graylane-mesh` generates Istio manifests from it. It loads from YAML
//! or TOML; errors name the file, line, column and field path. The full reference is
//! `docs/lane-spec.md`.
//!
//! A spec answers questions as it is ([`LaneSpec::serving_lane`], [`LaneSpec::data_names`]).
//! The pieces that run (the propagator, the coloring rules, the edge) are built from it once
//! per process with [`LaneSpec::compile`] and shared, so that every layer counts what it
//! refuses in the same place.
//!
//! ```
//! use graylane_core::spec::LaneSpec;
//! use graylane_core::Lane;
//!
//! let spec = LaneSpec::from_yaml_str(r#"
//! services:
//!   - name: orders
//!   - name: inventory
//! lanes:
//!   - name: gray
//!     version: v2
//!     services: [orders]
//! coloring:
//!   rules:
//!     - name: beta
//!       lane: gray
//!       match: { header: { name: x-user-group, exact: beta } }
//! "#)?;
//!
//! let gray = Lane::new("gray")?;
//! assert_eq!(spec.serving_lane("orders", gray), gray);
//! assert_eq!(spec.serving_lane("inventory", gray), Lane::BASE); // fallback
//! assert_eq!(spec.data_names(gray).pg_schema.as_deref(), Some("lane_gray"));
//! assert_eq!(spec.data_names(gray).redis_prefix, "lane:gray:");
//!
//! let err = LaneSpec::from_yaml_str("lanes:\n  - name: gray\n    services: [nope]\n").unwrap_err();
//! assert_eq!(err.to_string(), "3:16: lanes[0].services[0]: unknown service \"nope\" (declare it under `services`)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The document's types stand in three files, one per reader: `schema` (the kernel's: lanes,
// services, data, trust), `rules` (coloring) and `mesh` (Istio and Kubernetes); `compare` holds
// a service's mirror comparison. `query` answers questions about a spec, `validate` checks it,
// `load` parses it with located errors, and `build` alone turns it into the pieces that run
// (propagator, rules, edge).
mod build;
mod compare;
mod edit;
mod error;
mod limits;
pub(crate) mod load;
mod mesh;
mod query;
mod release;
pub(crate) mod rules;
mod schema;
mod time;
mod validate;

pub use crate::percent::Percent;
pub use build::CompiledSpec;
pub use compare::{CompareRouteSpec, CompareSpec, InvalidRoute, NoiseSpec, RouteTemplate};
pub use edit::SpecText;
pub use error::SpecError;
pub use limits::{MAX_SPEC_BYTES, MAX_SPEC_DEPTH};
pub use mesh::{
    BlueGreenSpec, CanarySpec, ContentRouteSpec, GatewaySpec, MeshSpec, MirrorSpec, Protocol,
    RoutingSpec,
};
pub use query::DataNames;
pub use release::{Exposure, GateFigures, GateOutcome, GateSpec, PromqlGate, ReleaseSpec};
pub use rules::{ColoringSpec, KeySource, MatchSpec, RuleSpec, StickySpec, ValueMatchSpec};
pub use schema::{
    DataOverrides, DataTemplates, LaneDef, LaneSpec, PreviousKeySpec, SPEC_VERSION, ServiceSpec,
    TokenSpec, TrustSpec,
};
pub use validate::is_sql_identifier;
