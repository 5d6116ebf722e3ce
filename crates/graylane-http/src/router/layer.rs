//! [`LaneRouterLayer`] and the builders that check a router's targets against the lane spec.

use std::fmt;
use std::sync::Arc;

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;
use http::uri::Uri;
use tower_layer::Layer;

use super::endpoint::Endpoint;
use super::error::RouterConfigError;
use super::lane_router::LaneRouter;
use super::switch::LaneSwitch;
use super::table::{RouterStats, Table};

/// Layer that applies [`LaneRouter`]. Cheap to clone; clones share their counters.
#[derive(Clone)]
pub struct LaneRouterLayer {
    table: Arc<Table<Endpoint>>,
}

impl LaneRouterLayer {
    /// A builder for the router of requests to `service`; targets are endpoint URIs.
    pub fn builder<'a>(spec: &'a LaneSpec, service: &str) -> RouterBuilder<'a, Uri> {
        RouterBuilder::new(spec, service)
    }

    /// What has been routed so far.
    pub fn stats(&self) -> RouterStats {
        self.table.stats()
    }
}

impl fmt::Debug for LaneRouterLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneRouterLayer")
            .field("service", &self.table.service())
            .field("strict", &self.table.strict())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for LaneRouterLayer {
    type Service = LaneRouter<S>;

    fn layer(&self, inner: S) -> LaneRouter<S> {
        LaneRouter::new(inner, self.table.clone())
    }
}

/// Builds a [`LaneRouterLayer`] (targets are endpoint URIs) or a [`LaneSwitch`] (targets are
/// services, e.g. one tonic `Channel` per lane) for one target service.
#[derive(Debug)]
pub struct RouterBuilder<'a, T> {
    spec: &'a LaneSpec,
    service: String,
    base: Option<T>,
    lanes: Vec<(Lane, T)>,
    strict: bool,
}

impl<'a, T> RouterBuilder<'a, T> {
    pub(super) fn new(spec: &'a LaneSpec, service: &str) -> Self {
        RouterBuilder {
            spec,
            service: service.to_owned(),
            base: None,
            lanes: Vec::new(),
            strict: false,
        }
    }

    /// The base target.
    #[must_use]
    pub fn base(mut self, target: T) -> Self {
        self.base = Some(target);
        self
    }

    /// The target of the service's version in `lane`.
    #[must_use]
    pub fn lane(mut self, lane: Lane, target: T) -> Self {
        self.lanes.push((lane, target));
        self
    }

    /// Fail lane requests for lanes the service lacks instead of falling back to base.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Checks the targets against the spec: the service exists, every lane it has a version in
    /// has a target, and no target is given for a lane it has no version in.
    fn table<U>(
        self,
        convert: impl Fn(T) -> Result<U, String>,
    ) -> Result<Table<U>, RouterConfigError> {
        let err = |m: String| Err(RouterConfigError::new(m));
        let service = self.service;
        let lane_set = self.spec.lane_set();
        if self.spec.service(&service).is_none() {
            return err(format!("service {service:?} is not in the lane spec"));
        }
        if let Some((lane, _)) = self.lanes.iter().find(|(l, _)| !lane_set.contains(*l)) {
            return err(format!("lane {lane} is not in the lane spec"));
        }
        let Some(base) = self.base else {
            return err(format!("service {service:?} has no base endpoint"));
        };
        let base = convert(base).map_err(RouterConfigError::new)?;
        let mut given = self.lanes;
        let mut routes = Vec::new();
        for lane in lane_set.non_base() {
            let mut mine: Vec<T> = Vec::new();
            let mut rest = Vec::new();
            for (l, t) in given {
                if l == lane {
                    mine.push(t)
                } else {
                    rest.push((l, t))
                }
            }
            given = rest;
            let has = self.spec.has_version(&service, lane);
            let target = match (has, mine.len()) {
                (true, 1) => Some(convert(mine.remove(0)).map_err(RouterConfigError::new)?),
                (true, 0) => {
                    return err(format!(
                        "service {service:?} has a version in lane {lane} but no endpoint for it"
                    ));
                }
                (false, 0) => None,
                (false, _) => {
                    return err(format!(
                        "service {service:?} has no version in lane {lane} per the spec, but an endpoint was given"
                    ));
                }
                (true, _) => return err(format!("lane {lane} is given twice")),
            };
            routes.push((lane, target));
        }
        Ok(Table::new(service, base, routes, self.strict))
    }
}

impl RouterBuilder<'_, Uri> {
    /// The router layer. Endpoints are a scheme and an authority, without a path.
    pub fn build(self) -> Result<LaneRouterLayer, RouterConfigError> {
        Ok(LaneRouterLayer {
            table: Arc::new(self.table(Endpoint::new)?),
        })
    }
}

/// Builds a [`LaneSwitch`]; the same checks as [`RouterBuilder`].
#[derive(Debug)]
pub struct SwitchBuilder<'a, S>(RouterBuilder<'a, S>);

impl<'a, S> SwitchBuilder<'a, S> {
    pub(super) const fn new(builder: RouterBuilder<'a, S>) -> Self {
        SwitchBuilder(builder)
    }

    /// The base service.
    #[must_use]
    pub fn base(self, service: S) -> Self {
        SwitchBuilder(self.0.base(service))
    }

    /// The service of the version in `lane`.
    #[must_use]
    pub fn lane(self, lane: Lane, service: S) -> Self {
        SwitchBuilder(self.0.lane(lane, service))
    }

    /// Fail lane requests for lanes the service lacks instead of falling back to base.
    #[must_use]
    pub fn strict(self, strict: bool) -> Self {
        SwitchBuilder(self.0.strict(strict))
    }

    /// The switch.
    pub fn build(self) -> Result<LaneSwitch<S>, RouterConfigError> {
        Ok(LaneSwitch::new(Arc::new(self.0.table(Ok)?)))
    }
}

#[cfg(test)]
mod tests {
    use http::uri::Uri;

    use super::super::fixtures::{lane, spec, uri};
    use super::{LaneRouterLayer, RouterBuilder};

    #[test]
    fn build_checks_against_the_spec() {
        let spec = spec();
        let e = |b: RouterBuilder<'_, Uri>| b.build().unwrap_err().to_string();
        assert!(
            e(LaneRouterLayer::builder(&spec, "zz").base(uri("http://x:1")))
                .contains("not in the lane spec")
        );
        assert!(e(LaneRouterLayer::builder(&spec, "a")).contains("no base endpoint"));
        assert!(
            e(LaneRouterLayer::builder(&spec, "a").base(uri("http://x:1")))
                .contains("no endpoint for it")
        );
        assert!(
            e(LaneRouterLayer::builder(&spec, "b")
                .base(uri("http://x:1"))
                .lane(lane("gray"), uri("http://g:1"))
                .lane(lane("blue"), uri("http://x:2")))
            .contains("endpoint was given")
        );
        assert!(
            e(LaneRouterLayer::builder(&spec, "b").base(uri("http://x:1/path")))
                .contains("without a path")
        );
        assert!(e(LaneRouterLayer::builder(&spec, "b").base(uri("/rel"))).contains("scheme"));
    }
}
