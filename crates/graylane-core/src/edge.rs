//! [`Edge`]: the trust boundary, where requests from outside get their lane.
//!
//! For each inbound request the edge, in order:
//!
//! 1. verifies a signed lane token, if one is sent, and removes it from the request;
//! 2. strips every lane mark the client sent (header, mirror header, baggage members, on every
//!    line of each header): clients are not trusted to pick a lane, so a forged `x-gray-lane`
//!    lands on base;
//! 3. if no valid token chose the lane, evaluates the coloring rules (first match wins);
//! 4. otherwise the request is base.
//!
//! Refusals (untrusted headers, bad tokens) are counted in [`Edge::stats`]; the request always
//! goes on.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use graylane_core::coloring::{Rules, SimpleRequest};
//! use graylane_core::trust::TokenKey;
//! use graylane_core::{Edge, Lane, LaneSet, Origin, Propagator, Rejection};
//!
//! let gray = Lane::new("gray")?;
//! let key = TokenKey::new(b"edge secret, 16 bytes or more")?;
//! let edge = Edge::new(Propagator::new(LaneSet::new([gray])), Rules::default())
//!     .with_tokens(key.clone());
//!
//! // A client forging the lane header stays on base, and the header is gone.
//! let mut forged = SimpleRequest::new("/").header("x-gray-lane", "gray");
//! let admitted = edge.admit(&mut forged);
//! assert!(admitted.context().lane().is_base());
//! assert_eq!(edge.stats().get(Rejection::Untrusted), 1);
//!
//! // A tester with a signed token gets the lane.
//! let token = key.mint(gray, SystemTime::now() + Duration::from_secs(600));
//! let mut tester = SimpleRequest::new("/").header("x-gray-lane-token", &token);
//! let admitted = edge.admit(&mut tester);
//! assert_eq!(admitted.context().lane(), gray);
//! assert_eq!(admitted.context().origin(), Origin::Token);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::SystemTime;

use crate::coloring::{RequestView, Rules};
use crate::context::{LaneContext, Origin};
use crate::stats::{Rejection, Snapshot};
use crate::trust::{DEFAULT_TOKEN_HEADER, TokenKey};
use crate::wire::{Injector, Key, Propagator};

/// Decides the lane of requests entering from untrusted clients. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Edge {
    propagator: Propagator,
    rules: Rules,
    tokens: Option<Tokens>,
    /// The live spec revision this edge was built for (0: not from a live spec).
    revision: u64,
}

#[derive(Clone, Debug)]
struct Tokens {
    key: TokenKey,
    header: Key,
}

/// What the edge decided for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    context: LaneContext,
    rule: Option<String>,
    stripped: bool,
    token: Option<Result<(), Rejection>>,
}

impl Admission {
    /// The context to run the request in.
    pub fn context(&self) -> LaneContext {
        self.context
    }

    /// The coloring rule that chose the lane, if one did.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// Whether the client sent lane marks that were stripped.
    pub fn stripped(&self) -> bool {
        self.stripped
    }

    /// `None` without a token, `Some(Ok(()))` for an accepted one, `Some(Err(_))` for a refused one.
    pub fn token(&self) -> Option<Result<(), Rejection>> {
        self.token
    }
}

impl Edge {
    /// An edge that strips client lane marks and colors with `rules`. Tokens are off until
    /// [`with_tokens`](Self::with_tokens).
    pub fn new(propagator: Propagator, rules: Rules) -> Edge {
        Edge {
            propagator,
            rules,
            tokens: None,
            revision: 0,
        }
    }

    /// The same edge, stamping its contexts with spec revision `revision`.
    pub(crate) fn at_revision(mut self, revision: u64) -> Edge {
        self.revision = revision;
        self
    }

    /// The live spec revision this edge decides under (0 unless built by a
    /// [`LiveSpec`](crate::live::LiveSpec)).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Accepts lane tokens signed with `key` in the [`DEFAULT_TOKEN_HEADER`] header.
    #[must_use]
    pub fn with_tokens(self, key: TokenKey) -> Edge {
        self.with_tokens_in(key, DEFAULT_TOKEN_HEADER)
    }

    /// Accepts lane tokens signed with `key` in `header` (lowercase).
    #[must_use]
    pub fn with_tokens_in(mut self, key: TokenKey, header: &str) -> Edge {
        self.tokens = Some(Tokens {
            key,
            header: Key::new(&header.to_ascii_lowercase()),
        });
        self
    }

    /// The propagator whose lanes and counters this edge uses.
    pub fn propagator(&self) -> &Propagator {
        &self.propagator
    }

    /// The coloring rules (swap them through this handle at run time).
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// What has been refused so far (shared with the propagator).
    pub fn stats(&self) -> Snapshot {
        self.propagator.stats()
    }

    /// Decides the lane of `req` and removes the client's lane marks and token from it.
    pub fn admit<R: RequestView + Injector + ?Sized>(&self, req: &mut R) -> Admission {
        self.admit_at(req, SystemTime::now())
    }

    /// [`admit`](Self::admit) at a given time (for tests and replays).
    pub fn admit_at<R: RequestView + Injector + ?Sized>(
        &self,
        req: &mut R,
        now: SystemTime,
    ) -> Admission {
        let counters = self.propagator.counters();
        let mut token = None;
        let mut context = None;
        if let Some(tokens) = &self.tokens
            // Every line: two tokens are one malformed value (`a,b`), as a proxy would pass
            // them on, not a choice of the first.
            && let Some(raw) = req.get_list(&tokens.header)
        {
            let verdict = tokens.key.verify(&raw, &self.propagator.lanes(), now);
            drop(raw);
            req.remove(tokens.header.as_str());
            match verdict {
                Ok(lane) => {
                    token = Some(Ok(()));
                    context = Some(LaneContext::new(lane).with_origin(Origin::Token));
                }
                Err(rejection) => {
                    counters.record(rejection);
                    token = Some(Err(rejection));
                }
            }
        }
        let stripped = self.propagator.strip(req);
        if stripped {
            counters.record(Rejection::Untrusted);
        }
        let mut rule = None;
        let context = context.unwrap_or_else(|| match self.rules.evaluate(req) {
            Some(m) => {
                rule = Some(m.rule().to_owned());
                LaneContext::new(m.lane()).with_origin(Origin::Colored)
            }
            None => LaneContext::base(),
        });
        Admission {
            context: context.with_revision(self.revision),
            rule,
            stripped,
            token,
        }
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;
    use crate::coloring::{RuleSet, SimpleRequest};
    use crate::lane::{Lane, LaneSet};
    use crate::spec::RuleSpec;
    use crate::wire::Extractor;
    use std::time::Duration;

    fn gray() -> Lane {
        Lane::new("gray").unwrap()
    }

    fn key() -> TokenKey {
        TokenKey::new(b"edge-test-secret-0123").unwrap()
    }

    fn edge() -> Edge {
        let lanes = LaneSet::new([gray()]);
        let specs: Vec<RuleSpec> = serde_yaml_ng::from_str(
            "[{name: beta, lane: gray, match: {header: {name: x-group, exact: beta}}}]",
        )
        .unwrap();
        let rules = Rules::new(RuleSet::compile(&specs, &lanes).unwrap());
        Edge::new(Propagator::new(lanes), rules).with_tokens(key())
    }

    #[test]
    fn forged_header_is_stripped_and_rules_still_apply() {
        let edge = edge();
        let mut req = SimpleRequest::new("/")
            .header("x-gray-lane", "gray")
            .header("baggage", "gray.lane=gray,k=v")
            .header("x-group", "beta");
        let a = edge.admit(&mut req);
        assert_eq!(a.context().lane(), gray());
        assert_eq!(a.context().origin(), Origin::Colored);
        assert_eq!(a.rule(), Some("beta"));
        assert!(a.stripped());
        assert_eq!(req.get("x-gray-lane"), None);
        assert_eq!(req.get("baggage"), Some(&b"k=v"[..]));
        assert_eq!(edge.stats().get(Rejection::Untrusted), 1);
    }

    #[test]
    fn bad_tokens_are_ignored_and_counted_by_kind() {
        let edge = edge();
        let now = SystemTime::now();
        let expired = key().mint(gray(), now - Duration::from_secs(1));
        let forged = TokenKey::new(b"not the edge key 123")
            .unwrap()
            .mint(gray(), now + Duration::from_secs(60));
        for (token, kind) in [
            (expired, Rejection::TokenExpired),
            (forged, Rejection::TokenForged),
            ("garbage".to_owned(), Rejection::TokenMalformed),
        ] {
            let mut req = SimpleRequest::new("/").header("x-gray-lane-token", &token);
            let a = edge.admit_at(&mut req, now);
            assert!(a.context().lane().is_base());
            assert_eq!(a.token(), Some(Err(kind)));
            assert_eq!(
                req.get("x-gray-lane-token"),
                None,
                "token never travels inward"
            );
            assert_eq!(edge.stats().get(kind), 1);
        }
    }

    #[test]
    fn valid_token_wins_over_rules_and_headers() {
        let edge = edge();
        let token = key().mint(gray(), SystemTime::now() + Duration::from_secs(60));
        let mut req = SimpleRequest::new("/")
            .header("x-gray-lane-token", &token)
            .header("x-gray-lane", "base");
        let a = edge.admit(&mut req);
        assert_eq!(a.context().lane(), gray());
        assert_eq!(a.token(), Some(Ok(())));
        assert!(a.stripped());
    }

    #[test]
    fn tokens_off_means_token_header_is_left_alone() {
        let lanes = LaneSet::new([gray()]);
        let edge = Edge::new(Propagator::new(lanes), Rules::default());
        let token = key().mint(gray(), SystemTime::now() + Duration::from_secs(60));
        let mut req = SimpleRequest::new("/").header("x-gray-lane-token", &token);
        let a = edge.admit(&mut req);
        assert!(a.context().lane().is_base());
        assert_eq!(a.token(), None);
    }
}
