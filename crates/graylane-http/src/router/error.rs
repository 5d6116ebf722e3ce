//! The router's errors: [`RouterConfigError`] when a builder's targets do not match the spec,
//! [`NoLaneVersion`] when strict mode refuses a request.
//!
//! They stay two types because they happen at two different times to two different callers:
//! `build()` returns the first, once, at start-up; the router's services return the second,
//! boxed in a [`BoxError`](crate::BoxError), for one request among many (callers find it with
//! `downcast_ref::<NoLaneVersion>()`, as `graylane_grpc::status_from_error` does).

use std::fmt;

use graylane_core::Lane;

/// Strict mode refused a lane request for a service that has no version in that lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoLaneVersion {
    /// The target service.
    pub service: String,
    /// The lane requested.
    pub lane: Lane,
}

impl fmt::Display for NoLaneVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {} has no version in lane {} (strict lane routing: no fallback to base)",
            self.service, self.lane
        )
    }
}

impl std::error::Error for NoLaneVersion {}

/// Why a router could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfigError(String);

impl RouterConfigError {
    pub(super) const fn new(message: String) -> RouterConfigError {
        RouterConfigError(message)
    }
}

impl fmt::Display for RouterConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouterConfigError {}
