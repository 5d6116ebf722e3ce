//! Comparing the mirror's responses with production's: what [`CompareConfig`] turns on in a
//! [`MirrorLayer`](crate::MirrorLayer), and the [`MirrorReport`] it keeps.
//!
//! For each compared request the layer keeps a copy of the primary response as it streams to
//! the client (never holding it back) and reads the mirror's response in the background; both
//! within the body cap. Then status, the selected headers and the body are compared — JSON
//! field by field, text by its first differing line. Fields that differ between two runs of the
//! same base code (ids, timestamps) are **noise**: a share of compared requests get a second
//! copy on a noise lane (a mirror lane with no versions: base code on shadow data), and what
//! differs between it and production no longer counts, on that route. The status is never
//! noise, and a noise copy answered with another status than production's teaches nothing: a
//! noise copy failing must not hide a mirror failing.
//!
//! A route is the method and path template; requests beyond [`CompareConfig::max_routes`]
//! distinct routes are counted as `other`. Sample diffs hold production payloads:
//! `authorization`, `cookie`, `set-cookie` and every [`CompareConfig::redact`] name (a header,
//! or a JSON key at any depth) are redacted before a sample is stored.

mod diff;
#[cfg(test)]
mod props;
mod report;
mod route;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use graylane_core::spec::{CompareSpec, InvalidRoute, RouteTemplate};
use graylane_core::{Lane, Percent};
use http::{HeaderName, Method, Uri};

pub(crate) use self::diff::Captured;
use self::diff::{Field, Keep, Part, Redact};
pub use self::report::{FieldDiff, MirrorReport, RouteReport, SampleDiff};
use crate::BoxError;

/// At most this many fields are learned as noise per route, and counted as differing.
const MAX_NOISE_FIELDS: usize = 64;

/// A sample diff keeps at most this many fields.
const MAX_SAMPLE_FIELDS: usize = 8;

/// How a [`MirrorLayer`](crate::MirrorLayer) compares responses
/// ([`MirrorConfig::compare`](crate::MirrorConfig::compare)).
#[derive(Clone, Debug)]
pub struct CompareConfig {
    pub(crate) headers: Vec<HeaderName>,
    pub(crate) max_body_bytes: usize,
    max_routes: usize,
    samples: usize,
    sample_interval: Duration,
    routes: Vec<Route>,
    redact: Vec<String>,
    pub(crate) noise: Option<NoiseConfig>,
    pub(crate) request_id: HeaderName,
}

/// A declared route: its template, the template as counted, the fields ignored on it.
#[derive(Clone, Debug)]
struct Route {
    template: RouteTemplate,
    name: String,
    ignore: Vec<Field>,
}

#[derive(Clone, Debug)]
pub(crate) struct NoiseConfig {
    pub(crate) lane: Lane,
    share: Percent,
    /// The share once a route's noise has settled: a tenth of `share`.
    settled_share: Percent,
    warmup: u32,
    /// Quiet noise copies in a row after which a route's noise has settled (0: never).
    settle: u32,
    pub(crate) target: Option<Uri>,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig::new()
    }
}

impl CompareConfig {
    /// Compares status, `content-type` and bodies up to 64 KiB; 32 routes, 16 samples (one per
    /// route per 100 ms at most), the request id from `x-request-id`, no noise copies.
    pub fn new() -> CompareConfig {
        CompareConfig {
            headers: vec![http::header::CONTENT_TYPE],
            max_body_bytes: 64 * 1024,
            max_routes: 32,
            samples: 16,
            sample_interval: Duration::from_millis(100),
            routes: Vec::new(),
            redact: Vec::new(),
            noise: None,
            request_id: HeaderName::from_static("x-request-id"),
        }
    }

    /// The settings of a service's `compare` in the spec (see `docs/lane-spec.md`).
    pub fn from_spec(spec: &CompareSpec) -> Result<CompareConfig, BoxError> {
        let mut config = CompareConfig::new().max_routes(spec.max_routes);
        for r in &spec.routes {
            let ignore: Vec<&str> = r.ignore.iter().map(String::as_str).collect();
            config = config.route(&r.route, &ignore)?;
        }
        if !spec.headers.is_empty() {
            config = config.headers(
                spec.headers
                    .iter()
                    .map(|h| HeaderName::try_from(h.as_str()))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        for name in &spec.redact {
            config = config.redact(name);
        }
        if let Some(n) = &spec.noise {
            config = config
                .noise(n.lane, n.percent.value(), n.warmup)
                .noise_settle(n.settle);
        }
        Ok(config)
    }

    /// The response headers compared (replacing `content-type`).
    #[must_use]
    pub fn headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> CompareConfig {
        self.headers = headers.into_iter().collect();
        self
    }

    /// Responses larger than this are not compared (counted as skipped).
    #[must_use]
    pub const fn max_body_bytes(mut self, bytes: usize) -> CompareConfig {
        self.max_body_bytes = bytes;
        self
    }

    /// Routes counted on their own (at least 1), taken in the order their first comparison
    /// ends; later ones are counted as `other`.
    #[must_use]
    pub fn max_routes(mut self, n: usize) -> CompareConfig {
        self.max_routes = n.max(1);
        self
    }

    /// The sample diffs kept (the latest; see [`sample_interval`](Self::sample_interval)).
    #[must_use]
    pub const fn samples(mut self, n: usize) -> CompareConfig {
        self.samples = n;
        self
    }

    /// A route takes a new sample at most this often (default 100 ms): keeping one costs
    /// rendering the values and a few allocations, too much for every differing request of a
    /// busy route. Zero keeps every one.
    #[must_use]
    pub const fn sample_interval(mut self, interval: Duration) -> CompareConfig {
        self.sample_interval = interval;
        self
    }

    /// The header whose value names a request in samples.
    #[must_use]
    pub fn request_id_header(mut self, name: HeaderName) -> CompareConfig {
        self.request_id = name;
        self
    }

    /// A route template (`GET /orders/{id}`) and the fields whose differences do not count on
    /// it: body paths (`quote_id`, `items[].id`, covering what is under them) and
    /// `header:<name>`. Templates are tried in the order given.
    pub fn route(mut self, template: &str, ignore: &[&str]) -> Result<CompareConfig, InvalidRoute> {
        let template = RouteTemplate::parse(template)?;
        self.routes.push(Route {
            name: template.to_string(),
            template,
            ignore: ignore.iter().map(|f| Field::parse(f)).collect(),
        });
        Ok(self)
    }

    /// A header or JSON key (any depth, any case) whose values samples never keep.
    #[must_use]
    pub fn redact(mut self, name: &str) -> CompareConfig {
        self.redact.push(name.to_owned());
        self
    }

    /// Noise copies on `lane` — a mirror lane with no versions, so that the copy runs base code
    /// and writes only shadow data — for the first `warmup` compared requests of each route and
    /// then `percent` of them, a tenth of that once the route's noise has settled (see
    /// [`noise_settle`](Self::noise_settle)). They go to the mirror's target unless
    /// [`noise_target`](Self::noise_target) says otherwise.
    #[must_use]
    pub fn noise(mut self, lane: Lane, percent: f64, warmup: u32) -> CompareConfig {
        self.noise = Some(NoiseConfig {
            lane,
            share: Percent::clamped(percent),
            settled_share: Percent::clamped(percent / 10.0),
            warmup,
            settle: 100,
            target: None,
        });
        self
    }

    /// After `n` noise copies of a route in a row taught nothing new (default 100), its noise
    /// share drops to a tenth; a noise copy that teaches a field brings it back. Each noise copy
    /// is a request the primary's process sends. `0` keeps the share. Without
    /// [`noise`](Self::noise) this does nothing.
    #[must_use]
    pub fn noise_settle(mut self, n: u32) -> CompareConfig {
        if let Some(noise) = &mut self.noise {
            noise.settle = n;
        }
        self
    }

    /// Where noise copies go (scheme and authority), when not to the mirror's target: a base
    /// instance that routes by lane. Without [`noise`](Self::noise) this does nothing.
    #[must_use]
    pub fn noise_target(mut self, target: Uri) -> CompareConfig {
        if let Some(n) = &mut self.noise {
            n.target = Some(target);
        }
        self
    }
}

impl Captured {
    /// A response as `config` compares it.
    pub(crate) fn of(
        status: http::StatusCode,
        headers: &http::HeaderMap,
        config: &CompareConfig,
        body: bytes::Bytes,
    ) -> Captured {
        let mut captured = Captured::new(status, headers, &config.headers, body);
        captured.request_id = headers
            .get(&config.request_id)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        captured
    }
}

impl NoiseConfig {
    /// Whether a route whose last `quiet` noise copies taught nothing has settled.
    fn settled(&self, quiet: u32) -> bool {
        self.settle > 0 && quiet >= self.settle
    }
}

/// The comparison's state: counts per route, noise learned, samples.
pub(crate) struct Ledger {
    config: CompareConfig,
    redact: Redact,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    routes: BTreeMap<String, RouteState>,
    samples: VecDeque<SampleDiff>,
}

#[derive(Default)]
struct RouteState {
    counts: RouteReport,
    noise: Arc<BTreeSet<Field>>,
    /// Noise copies in a row that taught no new field.
    quiet: u32,
    /// When the route's latest sample was taken.
    last_sample: Option<Instant>,
}

impl State {
    /// `route`'s entry, made if new (the route was counted by [`Ledger::route`] already, so
    /// this stays within the bound).
    fn route(&mut self, route: &str) -> &mut RouteState {
        if !self.routes.contains_key(route) {
            self.routes.insert(route.to_owned(), RouteState::default());
        }
        self.routes.get_mut(route).expect("just made")
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    pub(crate) fn new(config: CompareConfig) -> Ledger {
        Ledger {
            redact: Redact::new(config.redact.iter().map(String::as_str)),
            config,
            state: Mutex::default(),
        }
    }

    pub(crate) fn config(&self) -> &CompareConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Counts stay consistent under a panic elsewhere: each update is one short section.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The route `method` and `path` are counted under, and whether this request also gets a
    /// noise copy (on which lane): one look at the state.
    pub(crate) fn begin(&self, method: &Method, path: &str) -> (String, Option<Lane>) {
        let templates = self.config.routes.iter().map(|r| &r.template);
        let mut route = route::route_of(templates, method, path);
        let mut state = self.state();
        let known = state.routes.len() - usize::from(state.routes.contains_key(route::OTHER));
        if !state.routes.contains_key(&route) && known >= self.config.max_routes {
            route = route::OTHER.to_owned();
        }
        let entry = state.route(&route);
        let noise = self.config.noise.as_ref().and_then(|noise| {
            let share = if noise.settled(entry.quiet) {
                noise.settled_share
            } else {
                noise.share
            };
            (entry.counts.noise_copies < u64::from(noise.warmup) || share.sample())
                .then_some(noise.lane)
        });
        (route, noise)
    }

    /// A mirrored request of `route` that could not be compared.
    pub(crate) fn skip(&self, route: &str) {
        self.state()
            .routes
            .entry(route.to_owned())
            .or_default()
            .counts
            .skipped += 1;
    }

    /// Compares `primary` with `mirror` (and with `noise`, a noise copy's response, first).
    pub(crate) fn record(
        &self,
        route: &str,
        request_id: Option<String>,
        primary: &Captured,
        mirror: &Captured,
        noise: Option<&Captured>,
    ) {
        // The diffs run outside the lock (comparisons on other threads never wait for them):
        // the lock is taken twice, briefly, to learn noise and read it, then to count.
        // A noise copy answered with another status failed for a reason of its own (shadow
        // data is not production's): its body teaches nothing.
        let learned = noise
            .filter(|n| n.status == primary.status)
            .map(|n| diff::diff(primary, n, &self.redact, &Keep::FIELDS));
        let (known, sampling) = {
            let mut state = self.state();
            let entry = state.route(route);
            let sampling = self.config.samples > 0
                && entry
                    .last_sample
                    .is_none_or(|t| t.elapsed() >= self.config.sample_interval);
            entry.counts.noise_copies += u64::from(noise.is_some());
            let noise_compared = learned.is_some();
            let fresh: Vec<Field> = learned
                .into_iter()
                .flatten()
                .map(|d| d.field)
                .filter(|f| f.part != Part::Status && !entry.noise.contains(f))
                .collect();
            // A noise copy that could be compared (same status) taught something, or nothing.
            if noise_compared {
                entry.quiet = if fresh.is_empty() {
                    entry.quiet.saturating_add(1)
                } else {
                    0
                };
            }
            if let Some(n) = &self.config.noise {
                entry.counts.noise_settled = n.settled(entry.quiet);
            }
            if !fresh.is_empty() {
                // Copy on write: readers hold the set they read, learning is rare.
                let mut grown = BTreeSet::clone(&entry.noise);
                for f in fresh {
                    if grown.len() < MAX_NOISE_FIELDS {
                        grown.insert(f);
                    }
                }
                entry.noise = Arc::new(grown);
            }
            (entry.noise.clone(), sampling)
        };
        let ignored = self
            .config
            .routes
            .iter()
            .find(|r| r.name == route)
            .map_or(&[][..], |r| r.ignore.as_slice());
        // Values are rendered only for the differences that count, when a sample is taken.
        let matters = |part: Part, name: &str| {
            !known.iter().any(|k| k.part == part && k.name == name)
                && !ignored.iter().any(|i| i.covers(part, name))
        };
        let keep = Keep {
            filter: Some(&matters),
            render: sampling,
        };
        let left = diff::diff(primary, mirror, &self.redact, &keep);
        // A field that differs at several places (`items[].price`) counts once.
        let mut fields: Vec<&Field> = left.iter().map(|d| &d.field).collect();
        fields.sort_unstable();
        fields.dedup();
        let part = fields.first().map(|f| f.part);
        let sample = (sampling && !left.is_empty()).then(|| SampleDiff {
            request_id,
            route: route.to_owned(),
            fields: left
                .iter()
                .take(MAX_SAMPLE_FIELDS)
                .map(|d| FieldDiff {
                    part: d.field.part.as_str(),
                    path: d.path.clone(),
                    primary: d.primary.clone(),
                    mirror: d.mirror.clone(),
                })
                .collect(),
        });

        let mut state = self.state();
        let entry = state.route(route);
        if sample.is_some() {
            entry.last_sample = Some(Instant::now());
        }
        let counts = &mut entry.counts;
        counts.compared += 1;
        for field in fields {
            let label = field.label();
            if let Some(n) = counts.fields.get_mut(label.as_ref()) {
                *n += 1;
            } else if counts.fields.len() < MAX_NOISE_FIELDS {
                counts.fields.insert(label.into_owned(), 1);
            }
        }
        match part {
            None => counts.identical += 1,
            Some(Part::Status) => counts.different_status += 1,
            Some(Part::Header) => counts.different_header += 1,
            Some(Part::Body) => counts.different_body += 1,
        }
        if let Some(sample) = sample {
            if state.samples.len() >= self.config.samples {
                state.samples.pop_front();
            }
            state.samples.push_back(sample);
        }
    }

    pub(crate) fn report(&self) -> MirrorReport {
        let state = self.state();
        MirrorReport {
            routes: state
                .routes
                .iter()
                .map(|(route, r)| RouteReport {
                    route: route.clone(),
                    noise: r.noise.iter().map(ToString::to_string).collect(),
                    ..r.counts.clone()
                })
                .collect(),
            samples: state.samples.iter().cloned().collect(),
        }
    }
}
