//! The routing decision shared by [`LaneRouter`](super::LaneRouter) and
//! [`LaneSwitch`](super::LaneSwitch): per-lane targets, fallback to base, strict mode, and the
//! counters behind [`RouterStats`].

use std::sync::atomic::{AtomicU64, Ordering};

use graylane_core::{Lane, LaneContext};

use super::error::NoLaneVersion;

/// Where a request went: the lane it asked for and the lane whose endpoint served it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routed {
    requested: Lane,
    served: Lane,
}

impl Routed {
    /// The request's lane.
    pub const fn requested(&self) -> Lane {
        self.requested
    }
    /// The lane whose endpoint served it.
    pub const fn served(&self) -> Lane {
        self.served
    }
    /// Whether the request fell back to base.
    pub fn is_fallback(&self) -> bool {
        self.requested != self.served
    }
}

/// Request counts of a router, per requested lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterStats {
    /// `(requested, served, requests)` for base and every configured lane.
    pub routes: Vec<(Lane, Lane, u64)>,
    /// Lane requests refused in strict mode.
    pub refused: u64,
}

impl RouterStats {
    /// Requests served by base although they asked for another lane.
    pub fn fallbacks(&self) -> u64 {
        self.routes
            .iter()
            .filter(|(requested, served, _)| requested != served)
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// The targets of one service, already checked against the spec, and what was routed to them.
pub(super) struct Table<T> {
    service: String,
    base: T,
    base_count: AtomicU64,
    routes: Vec<Route<T>>,
    strict: bool,
    refused: AtomicU64,
}

struct Route<T> {
    lane: Lane,
    /// `None`: the service has no version in the lane.
    target: Option<T>,
    count: AtomicU64,
}

impl<T> Table<T> {
    /// A table with a route for every non-base lane of the spec, counting from zero.
    pub(super) fn new(
        service: String,
        base: T,
        routes: Vec<(Lane, Option<T>)>,
        strict: bool,
    ) -> Table<T> {
        Table {
            service,
            base,
            base_count: AtomicU64::new(0),
            routes: routes
                .into_iter()
                .map(|(lane, target)| Route {
                    lane,
                    target,
                    count: AtomicU64::new(0),
                })
                .collect(),
            strict,
            refused: AtomicU64::new(0),
        }
    }

    /// The target service's name.
    pub(super) fn service(&self) -> &str {
        &self.service
    }

    /// Whether lane requests the service has no version for are refused.
    pub(super) const fn strict(&self) -> bool {
        self.strict
    }

    /// The target for the current lane and the lane it serves, counted.
    pub(super) fn pick(&self) -> Result<(&T, Routed), NoLaneVersion> {
        let requested = LaneContext::current().lane();
        let Some(route) = self.routes.iter().find(|r| r.lane == requested) else {
            // Base, or a lane this router's spec does not know (cannot come off the wire).
            self.base_count.fetch_add(1, Ordering::Relaxed);
            let served = Lane::BASE;
            return Ok((&self.base, Routed { requested, served }));
        };
        route.count.fetch_add(1, Ordering::Relaxed);
        match &route.target {
            Some(target) => Ok((
                target,
                Routed {
                    requested,
                    served: requested,
                },
            )),
            None if self.strict => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(NoLaneVersion {
                    service: self.service.clone(),
                    lane: requested,
                })
            }
            None => Ok((
                &self.base,
                Routed {
                    requested,
                    served: Lane::BASE,
                },
            )),
        }
    }

    /// What has been routed so far.
    pub(super) fn stats(&self) -> RouterStats {
        let mut routes = vec![(
            Lane::BASE,
            Lane::BASE,
            self.base_count.load(Ordering::Relaxed),
        )];
        routes.extend(self.routes.iter().map(|r| {
            let served = if r.target.is_some() {
                r.lane
            } else {
                Lane::BASE
            };
            (r.lane, served, r.count.load(Ordering::Relaxed))
        }));
        RouterStats {
            routes,
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}
