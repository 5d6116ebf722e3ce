//! From a spec to the pieces that run: the [`Propagator`], the coloring [`Rules`], the
//! [`Edge`], and the token key.
//!
//! This is the one part of the spec that knows those pieces; the document types, the queries
//! and the validation do not, so the spec's types can be read by crates that run none of it
//! (the mesh generator, the CLI).
//!
//! The factories ([`LaneSpec::propagator`], [`LaneSpec::edge`]) build a new piece with
//! rejection counters of its own on every call.

use std::time::Duration;

use super::error::SpecError;
use super::mesh::ContentRouteSpec;
use super::rules::RuleSpec;
use super::schema::{LaneSpec, TokenSpec};
use crate::coloring::{RuleSet, Rules};
use crate::edge::Edge;
use crate::trust::{KeyError, TokenKey};
use crate::wire::Propagator;

impl LaneSpec {
    /// A new propagator for this spec's lanes and wire names.
    ///
    /// Each call builds one with rejection counters of its own, which no other piece sees.
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
    /// set.
    ///
    /// # Panics
    ///
    /// As [`propagator`](Self::propagator).
    pub fn edge(&self) -> Result<Edge, SpecError> {
        let propagator = self.propagator();
        self.edge_on(propagator, Rules::new(self.rule_set()?))
    }

    fn edge_on(&self, propagator: Propagator, rules: Rules) -> Result<Edge, SpecError> {
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
    pub(super) fn check_route_condition(
        &self,
        route: &ContentRouteSpec,
        at: &str,
    ) -> Result<(), SpecError> {
        let rule = RuleSpec {
            name: None,
            lane: route.lane,
            condition: route.condition.clone(),
        };
        match RuleSet::compile(&[rule], &self.lane_set()) {
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
    /// The key: from `key_env` when set in the environment, else the inline `key`.
    pub fn load_key(&self) -> Result<TokenKey, KeyError> {
        let key = match (TokenKey::from_env(&self.key_env), &self.key) {
            (Ok(key), _) => key,
            (Err(KeyError::MissingEnv(_)), Some(inline)) => TokenKey::new(inline.as_bytes())?,
            (Err(e), _) => return Err(e),
        };
        Ok(key.with_max_ttl(Duration::from_secs(self.max_ttl_secs)))
    }
}
