//! One lane spec -> Istio and Kubernetes manifests, and offline route resolution.
//!
//! Istio routes on a header but has no fallback when a subset has no endpoints. graylane
//! generates the routes from the lane spec so that a lane route exists only for services that
//! have that lane deployed — fallback by construction — and the release strategies (weighted
//! canary, content-based canary, blue-green, mirroring) never send one lane's traffic to
//! another lane's version.
//!
//! ```
//! use graylane_core::spec::LaneSpec;
//! use graylane_mesh::{check, generate};
//!
//! let spec = LaneSpec::from_yaml_str(r#"
//! services:
//!   - name: orders
//!     routing: { canary: { lane: gray, weight: 10 } }
//!   - name: inventory
//! lanes: [{ name: gray, version: v2, services: [orders] }]
//! "#)?;
//! let manifests = generate(&spec);
//! let files: Vec<String> = manifests.render().into_iter().map(|(name, _)| name).collect();
//! assert_eq!(files, ["orders.yaml", "inventory.yaml"]);
//! let docs: Vec<_> = manifests.resources().cloned().collect();
//! assert!(check(&docs).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod check;
mod generate;
pub mod model;
mod resolve;
#[cfg(feature = "validate")]
mod upstream;

pub use check::{Finding, check};
pub use generate::{
    GENERATED_HEADER, LANE_ENV, LANE_LABEL, Manifests, PINNED_ENV, generate, subset_name,
};
pub use resolve::{Hop, Request, ResolveError, Routes, Target};
#[cfg(feature = "validate")]
pub use upstream::validate_upstream;
