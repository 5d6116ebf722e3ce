//! Offline route resolution: which subset of which service serves a request, as Istio would
//! decide it from the manifests — without a cluster.
//!
//! Routes are tried in order; a route matches when any of its `match` entries holds (all the
//! conditions of an entry must hold; no entry matches everything). Header names are
//! case-insensitive; `regex` is a full match, as RE2 in Envoy.
//!
//! ```
//! use graylane_core::spec::LaneSpec;
//! use graylane_mesh::{generate, Request, Routes};
//!
//! let spec = LaneSpec::from_yaml_str(
//!     "services: [{name: orders}, {name: inventory}]\nlanes: [{name: gray, version: v2, services: [orders]}]",
//! )?;
//! let routes = Routes::new(generate(&spec).resources().cloned());
//! let gray = Request::default().header("x-gray-lane", "gray");
//! assert_eq!(routes.resolve("orders", &gray)?.destinations[0].version.as_deref(), Some("v2"));
//! assert_eq!(routes.resolve("inventory", &gray)?.route, "fallback-gray");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{DestinationRule, HttpMatch, Resource, StringMatch, VirtualService};

/// A request, as the routing sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    /// Headers, lowercase names.
    pub headers: BTreeMap<String, String>,
    /// Path, without the query.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
}

impl Request {
    /// Adds a header (the name is lowercased).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .insert(name.to_ascii_lowercase(), value.to_owned());
        self
    }

    /// Adds a cookie (to the `cookie` header).
    #[must_use]
    pub fn cookie(mut self, name: &str, value: &str) -> Request {
        let entry = self.headers.entry("cookie".into()).or_default();
        if !entry.is_empty() {
            entry.push_str("; ");
        }
        entry.push_str(&format!("{name}={value}"));
        self
    }

    /// Sets the path.
    #[must_use]
    pub fn path(mut self, path: &str) -> Request {
        self.path = path.to_owned();
        self
    }

    /// Adds a query parameter.
    #[must_use]
    pub fn query(mut self, name: &str, value: &str) -> Request {
        self.query.insert(name.to_owned(), value.to_owned());
        self
    }
}

/// Where one service sends a request.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Hop {
    /// The service.
    pub service: String,
    /// The name of the route that matched.
    pub route: String,
    /// The destinations with their weights (percent).
    pub destinations: Vec<Target>,
    /// The mirror target and the share mirrored, if any.
    pub mirror: Option<(Target, f64)>,
}

/// A subset of a service.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Target {
    /// The host.
    pub host: String,
    /// The subset (absent: any pod of the service).
    pub subset: Option<String>,
    /// The subset's `version` label, from the `DestinationRule`.
    pub version: Option<String>,
    /// Weight in percent.
    pub weight: f64,
}

impl Hop {
    /// Picks a destination by weight with a uniform draw `u` in `[0, 100)`.
    pub fn pick(&self, u: f64) -> &Target {
        let mut acc = 0.0;
        for t in &self.destinations {
            acc += t.weight;
            if u < acc {
                return t;
            }
        }
        self.destinations
            .last()
            .unwrap_or_else(|| unreachable!("a resolved hop has a destination"))
    }
}

/// Why a request could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// No `VirtualService` for the host.
    NoVirtualService(String),
    /// No route matched (the request would get a 404 from Envoy).
    NoRoute(String),
    /// A route refers to a subset no `DestinationRule` defines.
    UnknownSubset {
        /// The host.
        host: String,
        /// The subset.
        subset: String,
    },
    /// A `regex` match does not compile.
    BadRegex(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NoVirtualService(h) => write!(f, "no VirtualService for host {h}"),
            ResolveError::NoRoute(h) => write!(f, "no route of {h} matches the request"),
            ResolveError::UnknownSubset { host, subset } => {
                write!(f, "host {host}: subset {subset} is in no DestinationRule")
            }
            ResolveError::BadRegex(e) => write!(f, "bad regex in a route: {e}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The routing manifests of a mesh.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    virtual_services: Vec<VirtualService>,
    destination_rules: Vec<DestinationRule>,
}

impl Routes {
    /// Collects the `VirtualService`s (mesh ones, without gateways) and `DestinationRule`s.
    pub fn new(resources: impl IntoIterator<Item = Resource>) -> Routes {
        let mut routes = Routes::default();
        for r in resources {
            match r {
                Resource::VirtualService(vs) if vs.spec.gateways.is_empty() => {
                    routes.virtual_services.push(vs)
                }
                Resource::DestinationRule(dr) => routes.destination_rules.push(dr),
                _ => {}
            }
        }
        routes
    }

    /// The hosts that have routes.
    pub fn hosts(&self) -> Vec<&str> {
        self.virtual_services
            .iter()
            .flat_map(|vs| vs.spec.hosts.iter().map(String::as_str))
            .collect()
    }

    /// Where `host` sends `req`.
    pub fn resolve(&self, host: &str, req: &Request) -> Result<Hop, ResolveError> {
        let vs = self
            .virtual_services
            .iter()
            .find(|vs| vs.spec.hosts.iter().any(|h| h == host))
            .ok_or_else(|| ResolveError::NoVirtualService(host.to_owned()))?;
        for route in &vs.spec.http {
            let mut matched = route.matches.is_empty();
            for m in &route.matches {
                if matches(m, req)? {
                    matched = true;
                    break;
                }
            }
            if !matched {
                continue;
            }
            let explicit: f64 = route
                .route
                .iter()
                .filter_map(|d| d.weight)
                .map(f64::from)
                .sum();
            let single = route.route.len() == 1 && explicit == 0.0;
            let destinations = route
                .route
                .iter()
                .map(|d| {
                    let weight = if single {
                        100.0
                    } else {
                        f64::from(d.weight.unwrap_or(0))
                    };
                    self.target(&d.destination.host, d.destination.subset.as_deref(), weight)
                })
                .collect::<Result<_, _>>()?;
            let mirror = match &route.mirror {
                Some(m) => Some((
                    self.target(&m.host, m.subset.as_deref(), 100.0)?,
                    route.mirror_percentage.as_ref().map_or(100.0, |p| p.value),
                )),
                None => None,
            };
            return Ok(Hop {
                service: host.to_owned(),
                route: route.name.clone(),
                destinations,
                mirror,
            });
        }
        Err(ResolveError::NoRoute(host.to_owned()))
    }

    fn target(
        &self,
        host: &str,
        subset: Option<&str>,
        weight: f64,
    ) -> Result<Target, ResolveError> {
        let version = match subset {
            None => None,
            Some(subset) => {
                let labels = self
                    .destination_rules
                    .iter()
                    .filter(|dr| dr.spec.host == host)
                    .flat_map(|dr| dr.spec.subsets.iter())
                    .find(|s| s.name == subset)
                    .map(|s| &s.labels)
                    .ok_or_else(|| ResolveError::UnknownSubset {
                        host: host.to_owned(),
                        subset: subset.to_owned(),
                    })?;
                labels.get("version").cloned()
            }
        };
        Ok(Target {
            host: host.to_owned(),
            subset: subset.map(str::to_owned),
            version,
            weight,
        })
    }
}

fn matches(m: &HttpMatch, req: &Request) -> Result<bool, ResolveError> {
    for (name, cond) in &m.headers {
        match req.headers.get(&name.to_ascii_lowercase()) {
            Some(v) if string_match(cond, v)? => {}
            _ => return Ok(false),
        }
    }
    if let Some(uri) = &m.uri
        && !string_match(uri, &req.path)?
    {
        return Ok(false);
    }
    for (name, cond) in &m.query_params {
        match req.query.get(name) {
            Some(v) if string_match(cond, v)? => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

fn string_match(m: &StringMatch, value: &str) -> Result<bool, ResolveError> {
    if let Some(e) = &m.exact {
        return Ok(value == e);
    }
    if let Some(p) = &m.prefix {
        return Ok(value.starts_with(p.as_str()));
    }
    if let Some(r) = &m.regex {
        let re = regex_lite::Regex::new(&format!("^(?:{r})$"))
            .map_err(|e| ResolveError::BadRegex(e.to_string()))?;
        return Ok(re.is_match(value));
    }
    Ok(true)
}
