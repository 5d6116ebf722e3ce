//! From a spec to the pieces that run: the [`Propagator`], the coloring [`Rules`], the
//! [`Edge`], and the token key.
//!
//! This is the one part of the spec that knows those pieces. The document types, the queries
//! and the validation do not, so they stand below the pieces (coloring reads the rule types)
//! and nothing loops back.
//!
//! A process builds them once, with [`LaneSpec::compile`], and shares them: a [`CompiledSpec`]
//! holds one propagator, whose rejection counters the edge counts into too. The single-piece
//! factories ([`LaneSpec::propagator`], [`LaneSpec::edge`]) build a new piece with counters of
//! its own on every call.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::SpecError;
use super::mesh::ContentRouteSpec;
use super::rules::RuleSpec;
use super::schema::{LaneSpec, TokenSpec};
use crate::coloring::{RuleSet, Rules};
use crate::edge::Edge;
use crate::lane::LaneSet;
use crate::stats::Snapshot;
use crate::trust::{KeyError, TokenKey};
use crate::wire::Propagator;

/// A spec built once into the pieces every part of a process shares: one [`Propagator`], the
/// coloring [`Rules`], and the [`Edge`] made of both.
///
/// Hand out clones of the pieces (each is a cheap handle): a clone of the propagator counts
/// into the same rejection counters, and a clone of the rules sees every
/// [`store`](Rules::store). So what is refused anywhere in the process shows in one
/// [`stats`](Self::stats), whichever layer refused it.
///
/// Made by [`LaneSpec::compile`].
#[derive(Clone, Debug)]
pub struct CompiledSpec {
    propagator: Propagator,
    rules: Rules,
    edge: Edge,
}

impl CompiledSpec {
    /// The propagator for the spec's lanes and wire names, shared by the edge.
    pub fn propagator(&self) -> &Propagator {
        &self.propagator
    }

    /// The coloring rules the edge evaluates; swap them through this handle at run time.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The edge: tokens when `trust.token` is set, then the rules, on the shared propagator.
    pub fn edge(&self) -> &Edge {
        &self.edge
    }

    /// What has been refused so far, by the edge and by every clone of the propagator.
    pub fn stats(&self) -> Snapshot {
        self.propagator.stats()
    }
}

impl LaneSpec {
    /// Builds the propagator, the rules and the edge once, sharing one set of rejection
    /// counters: call it at start-up and hand the pieces around.
    ///
    /// Refuses what would stop a piece from being built (bad wire names, rules that do not
    /// compile, a token key that cannot be loaded). A spec read with
    /// [`from_path`](Self::from_path) and the other loaders is already
    /// [validated](Self::validate); one built in code is not, so validate it first.
    ///
    /// ```
    /// use graylane_core::coloring::SimpleRequest;
    /// use graylane_core::spec::LaneSpec;
    /// use graylane_core::Rejection;
    ///
    /// let spec = LaneSpec::from_yaml_str(r#"
    /// lanes: [{ name: gray }]
    /// coloring:
    ///   rules: [{ lane: gray, match: { header: { name: x-user-group, exact: beta } } }]
    /// "#)?;
    /// let compiled = spec.compile()?;
    ///
    /// // The edge colors, and refuses a lane header forged by a client...
    /// let mut forged = SimpleRequest::new("/").header("x-gray-lane", "gray");
    /// assert!(compiled.edge().admit(&mut forged).context().lane().is_base());
    ///
    /// // ...a service deeper in refuses a lane that is not configured...
    /// let inner = compiled.propagator().clone();
    /// let unknown = SimpleRequest::new("/").header("x-gray-lane", "blue");
    /// assert!(inner.extract(&unknown).lane().is_base());
    ///
    /// // ...and both are counted in one place.
    /// let stats = compiled.stats();
    /// assert_eq!(stats.get(Rejection::Untrusted), 1);
    /// assert_eq!(stats.get(Rejection::Unknown), 1);
    /// assert_eq!(compiled.edge().stats(), stats);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compile(&self) -> Result<CompiledSpec, SpecError> {
        let propagator = Propagator::try_with_wire(self.lane_set(), self.wire.clone())
            .map_err(|e| SpecError::at("wire".into(), e.to_string()))?;
        let rules = Rules::new(self.rule_set()?);
        let edge = self.edge_on(propagator.clone(), rules.clone())?;
        Ok(CompiledSpec {
            propagator,
            rules,
            edge,
        })
    }

    /// A new propagator for this spec's lanes and wire names.
    ///
    /// Each call builds one with rejection counters of its own, which no other piece sees:
    /// build the pieces once with [`compile`](Self::compile) and share its
    /// [`propagator`](CompiledSpec::propagator) instead.
    ///
    /// # Panics
    ///
    /// If the `wire` names are invalid; a loaded spec has been validated, so they are not.
    pub fn propagator(&self) -> Propagator {
        Propagator::with_wire(self.lane_set(), self.wire.clone())
    }

    /// The compiled coloring rules.
    pub fn rule_set(&self) -> Result<RuleSet, SpecError> {
        RuleSet::compile(&self.coloring.rules, &self.lane_set())
            .map_err(|e| SpecError::at(format!("coloring.rules{}", e.path), e.message))
    }

    /// A new edge for this spec: its own propagator, rules, and tokens when `trust.token` is
    /// set. [`compile`](Self::compile) builds one that shares its counters with the
    /// propagator handed to the rest of the process.
    ///
    /// # Panics
    ///
    /// As [`propagator`](Self::propagator).
    pub fn edge(&self) -> Result<Edge, SpecError> {
        let propagator = self.propagator();
        self.edge_on(propagator, Rules::new(self.rule_set()?))
    }

    pub(crate) fn edge_on(&self, propagator: Propagator, rules: Rules) -> Result<Edge, SpecError> {
        let edge = Edge::new(propagator, rules);
        Ok(match &self.trust.token {
            Some(t) => {
                let key = t
                    .load_key()
                    .map_err(|e| SpecError::at("trust.token".into(), e.to_string()))?;
                edge.with_tokens_in(key, &t.header)
            }
            None => edge,
        })
    }

    /// Checks that a content route's condition compiles as a coloring rule's does, so Envoy
    /// and the edge read it alike; errors point under `at` (`services[0].routing.content[1]`).
    /// `lanes` is the spec's [`lane_set`](Self::lane_set), built once by the caller rather than
    /// once per route.
    pub(super) fn check_route_condition(
        route: &ContentRouteSpec,
        lanes: &LaneSet,
        at: &str,
    ) -> Result<(), SpecError> {
        let rule = RuleSpec {
            name: None,
            lane: route.lane,
            condition: route.condition.clone(),
            enabled: true,
        };
        match RuleSet::compile(&[rule], lanes) {
            Ok(_) => Ok(()),
            Err(e) => {
                // The path starts at the one-rule list: `[0].match...`.
                let field = e.path.strip_prefix("[0]").unwrap_or(&e.path);
                Err(SpecError::at(format!("{at}{field}"), e.message))
            }
        }
    }
}

impl TokenSpec {
    /// The key: from `key_env` when set in the environment, else the inline `key`; with the
    /// `previous` keys whose end is still ahead (one past its end is not loaded: its variable
    /// may be gone already).
    pub fn load_key(&self) -> Result<TokenKey, KeyError> {
        let mut key = load(Some(&self.key_env), self.key.as_deref())?
            .with_max_ttl(Duration::from_secs(self.max_ttl_secs));
        let now = SystemTime::now();
        for previous in &self.previous {
            // Validated with the spec; a hand-built spec's bad time ends the key now.
            let until = super::time::parse_rfc3339_utc(&previous.until).unwrap_or(UNIX_EPOCH);
            if until > now {
                let old = load(previous.key_env.as_deref(), previous.key.as_deref())?;
                key = key.with_previous(&old, until);
            }
        }
        Ok(key)
    }
}

/// A key from the environment variable `env` when it is set, else `inline`.
fn load(env: Option<&str>, inline: Option<&str>) -> Result<TokenKey, KeyError> {
    let from_env = match env {
        Some(var) => TokenKey::from_env(var),
        None => Err(KeyError::MissingEnv(String::new())),
    };
    match (from_env, inline) {
        (Ok(key), _) => Ok(key),
        (Err(KeyError::MissingEnv(_)), Some(inline)) => TokenKey::new(inline.as_bytes()),
        (Err(e), _) => Err(e),
    }
}
