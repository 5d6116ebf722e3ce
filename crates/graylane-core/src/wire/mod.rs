//! The wire format: carriers, and the [`Propagator`] that reads and writes the lane on them.
//!
//! One truth for every transport:
//!
//! - a dedicated header (default [`DEFAULT_HEADER`], `x-gray-lane`), because Istio routes on
//!   plain headers;
//! - the same value as a W3C `baggage` member (default key [`DEFAULT_BAGGAGE_KEY`], `gray.lane`),
//!   so anything that already propagates OpenTelemetry context carries the lane for free;
//! - a mirror copy additionally carries [`DEFAULT_MIRROR_HEADER`] (`x-gray-mirror: 1`) and the
//!   baggage member `gray.mirror=1`.
//!
//! Both are written on inject; either is read on extract, the header first. Extraction is
//! lenient and never fails: malformed, oversized and unknown values become base and are counted
//! in [`Propagator::stats`]. Injection never overwrites a lane already on the carrier, and keeps
//! every other baggage member.
//!
//! ```
//! use std::collections::HashMap;
//! use graylane_core::{Lane, LaneContext, LaneSet, Propagator, Rejection};
//!
//! let gray = Lane::new("gray")?;
//! let propagator = Propagator::new(LaneSet::new([gray]));
//!
//! // Outbound: write the current lane.
//! let mut headers: HashMap<String, String> = HashMap::new();
//! headers.insert("baggage".into(), "user=42".into());
//! propagator.inject(&LaneContext::new(gray), &mut headers);
//! assert_eq!(headers["x-gray-lane"], "gray");
//! assert_eq!(headers["baggage"], "user=42,gray.lane=gray");
//!
//! // Inbound: read it back.
//! assert_eq!(propagator.extract(&headers).lane(), gray);
//!
//! // A lane that is not configured is base, and counted.
//! headers.insert("x-gray-lane".into(), "blue".into());
//! assert!(propagator.extract(&headers).lane().is_base());
//! assert_eq!(propagator.stats().get(Rejection::Unknown), 1);
//! # Ok::<(), graylane_core::LaneError>(())
//! ```

mod baggage;
mod carrier;
// `pub(crate)` so that the lane spec can hold a `WireConfig` without reaching the propagator.
pub(crate) mod config;
mod propagator;

pub(crate) use baggage::percent_decode;
pub use baggage::{BAGGAGE_HEADER, MAX_BAGGAGE_LEN, MAX_BAGGAGE_MEMBERS};
pub use carrier::{Extractor, Injector, Key, join_values};
pub use config::{
    DEFAULT_BAGGAGE_KEY, DEFAULT_BAGGAGE_MIRROR_KEY, DEFAULT_HEADER, DEFAULT_MIRROR_HEADER,
    WireConfig, WireError,
};
pub use propagator::Propagator;
