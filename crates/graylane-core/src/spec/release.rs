//! The release part of the spec document: how a lane is exposed step by step, and the gates
//! that judge it at each step (`graylane release`; `docs/releases.md`).
//!
//! Nothing in a running process reads it: the release tool edits the spec's coloring as the
//! release goes (the percentage of the release's sticky rule, the `enabled` flag of the lane's
//! rules), and processes follow those edits like any other.

use serde::{Deserialize, Serialize};

use crate::lane::Lane;
use crate::percent::Percent;

/// One lane's release plan.
///
/// ```yaml
/// releases:
///   - lane: gray
///     rule: ten-percent-of-users      # a sticky rule of the lane: its percent is the exposure
///     steps: [0, 5, 25, 50, 100]      # 0: the lane's other rules only (the beta group)
///     bake_secs: 300
///     gates: { max_error_ratio_increase: 0.01, max_p99_ratio: 1.25, p99_tolerance_ms: 2, min_requests: 50 }
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// The lane released.
    pub lane: Lane,
    /// The name of the lane's coloring rule whose `match.sticky.percent` each step sets.
    pub rule: String,
    /// That percent at each step, strictly increasing.
    pub steps: Vec<Percent>,
    /// How long each step runs before it is judged, in seconds.
    #[serde(default = "default_bake_secs")]
    pub bake_secs: u64,
    /// What a step must show to pass.
    #[serde(default)]
    pub gates: GateSpec,
}

fn default_bake_secs() -> u64 {
    300
}

/// A step's gates: the lane against base, on the same services over the same window. Every
/// service the lane's requests reached is judged (fallback hops included); one failing service
/// fails the step.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateSpec {
    /// The lane's error ratio may exceed base's by at most this (absolute; 0.01 = one point).
    pub max_error_ratio_increase: f64,
    /// The lane's p99 latency may be at most this many times base's...
    pub max_p99_ratio: f64,
    /// ...or at most this many milliseconds above it: sub-millisecond services differ by more
    /// than any ratio within one histogram bucket (graylane's first buckets are 0.5, 1 and
    /// 2.5 ms), which is noise, not a regression.
    pub p99_tolerance_ms: f64,
    /// A service is judged once the lane has sent it this many requests in the window; one
    /// still short after three bake times fails the step ("not enough traffic").
    pub min_requests: u64,
    /// Gates of the user's own, asked of Prometheus.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub promql: Vec<PromqlGate>,
}

impl Default for GateSpec {
    fn default() -> GateSpec {
        GateSpec {
            max_error_ratio_increase: 0.01,
            max_p99_ratio: 1.25,
            p99_tolerance_ms: 2.0,
            min_requests: 50,
            promql: Vec::new(),
        }
    }
}

/// A PromQL query whose value must stay at or below `max` (e.g. a lane's rate of 5xx at the
/// gateway). `{window}` in the query is replaced by the step's window (`300s`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlGate {
    /// What the gate is called in reports.
    pub name: String,
    /// The query; every series it returns is compared.
    pub query: String,
    /// The largest value that passes.
    pub max: f64,
}

/// One service's figures over a step's window, lane or base, for [`GateSpec::judge`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GateFigures {
    /// Requests served.
    pub requests: f64,
    /// Of them, errors.
    pub errors: f64,
    /// The 99th percentile latency, in milliseconds, when there were requests.
    pub p99_ms: Option<f64>,
}

impl GateFigures {
    /// `errors / requests`; 0 without requests.
    pub fn error_ratio(&self) -> f64 {
        if self.requests > 0.0 {
            self.errors / self.requests
        } else {
            0.0
        }
    }
}

/// What a step's gates made of one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateOutcome {
    /// Every gate holds.
    Pass,
    /// Fewer lane requests than `min_requests` so far, and their errors decide nothing yet.
    Pending,
    /// The lane's error ratio exceeds base's by more than `max_error_ratio_increase`.
    ErrorRatio,
    /// The lane's p99 exceeds both `max_p99_ratio` times base's and base's plus the tolerance.
    P99,
}

impl GateOutcome {
    /// `pass`, `pending`, `error_ratio` or `p99`, as reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            GateOutcome::Pass => "pass",
            GateOutcome::Pending => "pending",
            GateOutcome::ErrorRatio => "error_ratio",
            GateOutcome::P99 => "p99",
        }
    }
}

impl GateSpec {
    /// Judges one service: the lane's figures against base's over the same window.
    ///
    /// ```
    /// use graylane_core::spec::{GateFigures, GateOutcome, GateSpec};
    ///
    /// let gates = GateSpec::default(); // 1 point of errors, p99 × 1.25 or + 2 ms, 50 requests
    /// let base = GateFigures { requests: 900.0, errors: 9.0, p99_ms: Some(20.0) };
    /// let lane = GateFigures { requests: 100.0, errors: 5.0, p99_ms: Some(21.0) };
    /// assert_eq!(gates.judge(&lane, &base), GateOutcome::ErrorRatio);
    /// let lane = GateFigures { errors: 1.0, ..lane };
    /// assert_eq!(gates.judge(&lane, &base), GateOutcome::Pass);
    /// ```
    pub fn judge(&self, lane: &GateFigures, base: &GateFigures) -> GateOutcome {
        let bound = base.error_ratio() + self.max_error_ratio_increase + 1e-12;
        let minimum = self.min_requests as f64;
        // Short of the minimum, the errors so far may already be too many for any outcome of
        // the rest: the ratio at the minimum is at least errors / minimum.
        let short = lane.requests < minimum;
        let ratio = if short {
            lane.errors / minimum
        } else {
            lane.error_ratio()
        };
        if ratio > bound {
            GateOutcome::ErrorRatio
        } else if short {
            GateOutcome::Pending
        } else if let (Some(l), Some(b)) = (lane.p99_ms, base.p99_ms)
            && base.requests > 0.0
            && l > b * self.max_p99_ratio
            && l > b + self.p99_tolerance_ms
        {
            GateOutcome::P99
        } else {
            GateOutcome::Pass
        }
    }
}

/// Where a release stands in a spec: what its rule exposes now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exposure {
    /// Whether any of the lane's coloring rules is on.
    pub exposed: bool,
    /// The release rule's sticky percent now.
    pub percent: f64,
    /// The plan's step that percent is (0-based), if it is one.
    pub step: Option<usize>,
}

impl ReleaseSpec {
    /// What `spec`'s coloring exposes of this release now; `None` when `spec` has no rule of
    /// the release's name (a spec validated with its releases always has it).
    pub fn exposure(&self, spec: &super::LaneSpec) -> Option<Exposure> {
        let rules = &spec.coloring.rules;
        let rule = rules
            .iter()
            .find(|r| r.name.as_deref() == Some(self.rule.as_str()))?;
        let percent = rule
            .condition
            .sticky
            .as_ref()
            .map_or(Percent::ZERO, |s| s.percent);
        Some(Exposure {
            exposed: rules.iter().any(|r| r.lane == self.lane && r.enabled),
            percent: percent.value(),
            step: self.steps.iter().position(|s| *s == percent),
        })
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use crate::coloring::SimpleRequest;
    use crate::spec::LaneSpec;

    const LANES: &str = "\
lanes: [{ name: gray }, { name: blue }]
coloring:
  rules:
    - { name: beta, lane: gray, match: { header: { name: x-user-group, exact: beta } } }
    - { name: some-users, lane: gray, match: { sticky: { percent: 5, by: { header: x-user-id } } } }
";

    fn with(release: &str) -> Result<LaneSpec, crate::spec::SpecError> {
        LaneSpec::from_yaml_str(&format!("{LANES}releases:\n  - {release}\n"))
    }

    #[test]
    fn a_plan_loads_with_its_defaults() {
        let spec = with("{ lane: gray, rule: some-users, steps: [0, 5, 25, 100] }").unwrap();
        let r = &spec.releases[0];
        assert_eq!((r.bake_secs, r.steps.len()), (300, 4));
        assert_eq!(
            (
                r.gates.max_error_ratio_increase,
                r.gates.max_p99_ratio,
                r.gates.min_requests
            ),
            (0.01, 1.25, 50)
        );
    }

    #[test]
    fn a_plan_that_cannot_run_is_refused_where_it_is_wrong() {
        for (release, path, says) in [
            (
                "{ lane: green, rule: some-users, steps: [5] }",
                "releases[0].lane",
                "unknown lane",
            ),
            (
                "{ lane: gray, rule: nobody, steps: [5] }",
                "releases[0].rule",
                "no coloring rule",
            ),
            (
                "{ lane: gray, rule: beta, steps: [5] }",
                "releases[0].rule",
                "no `match.sticky`",
            ),
            (
                "{ lane: blue, rule: some-users, steps: [5] }",
                "releases[0].rule",
                "colors lane",
            ),
            (
                "{ lane: gray, rule: some-users, steps: [5, 5] }",
                "releases[0].steps[1]",
                "increase",
            ),
            (
                "{ lane: gray, rule: some-users, steps: [] }",
                "releases[0].steps",
                "at least one",
            ),
            (
                "{ lane: gray, rule: some-users, steps: [5], bake_secs: 0 }",
                "releases[0].bake_secs",
                "at least 1",
            ),
            (
                "{ lane: gray, rule: some-users, steps: [5], gates: { max_p99_ratio: 0.5 } }",
                "releases[0].gates.max_p99_ratio",
                "from 1",
            ),
        ] {
            let e = with(release).unwrap_err();
            assert_eq!(e.path, path, "{release}: {e}");
            assert!(e.message.contains(says), "{release}: {e}");
        }
    }

    #[test]
    fn a_rule_that_is_off_does_not_color() {
        let spec = LaneSpec::from_yaml_str(&LANES.replace(
            "lane: gray, match: { header",
            "lane: gray, enabled: false, match: { header",
        ))
        .unwrap();
        let edge = spec.edge().unwrap();
        let mut beta = SimpleRequest::new("/").header("x-user-group", "beta");
        assert!(edge.admit(&mut beta).context().lane().is_base());
        // Still checked: turning it back on cannot fail.
        let broken = LANES.replace(
            "lane: gray, match: { header",
            "lane: gray, enabled: false, match: { header: { name: x, regex: '(' }, cookie",
        );
        assert!(LaneSpec::from_yaml_str(&broken).is_err());
    }
}
