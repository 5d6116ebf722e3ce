//! Signed lane tokens: how a trusted tester forces a lane from outside the mesh.
//!
//! At the edge, lane headers from clients are stripped (anyone can type `x-gray-lane: gray`).
//! A tester who must reach a lane sends a token instead: `v1.<lane>.<expiry>.<mac>`, where
//! `<expiry>` is Unix seconds and `<mac>` is the hex HMAC-SHA256 of `v1.<lane>.<expiry>` under a
//! key only the edge and the token minter know. Forged, expired and malformed tokens are
//! ignored (the request goes on as if it had none) and counted.
//!
//! A token has one spelling, the one [`TokenKey::mint`] writes: the expiry in decimal without
//! sign or leading zeros, the MAC in 64 lowercase hex digits, nothing around it. Any other
//! spelling (`+60`, `060`, upper-case hex, surrounding whitespace) is malformed, so replay
//! caches and deny-lists keyed on the token as sent see one token per grant.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use graylane_core::trust::TokenKey;
//! use graylane_core::{Lane, LaneSet, Rejection};
//!
//! let key = TokenKey::new(b"a long shared secret, 16+ bytes")?;
//! let gray = Lane::new("gray")?;
//! let lanes = LaneSet::new([gray]);
//! let now = SystemTime::now();
//!
//! let token = key.mint(gray, now + Duration::from_secs(3600));
//! assert_eq!(key.verify(token.as_bytes(), &lanes, now), Ok(gray));
//!
//! let forged = token.replace("gray", "base");
//! assert_eq!(key.verify(forged.as_bytes(), &lanes, now), Err(Rejection::TokenForged));
//! let later = now + Duration::from_secs(7200);
//! assert_eq!(key.verify(token.as_bytes(), &lanes, later), Err(Rejection::TokenExpired));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::lane::{Lane, LaneSet};
use crate::stats::Rejection;

/// The default header a lane token travels in.
pub const DEFAULT_TOKEN_HEADER: &str = "x-gray-lane-token";
/// The default environment variable the token key is read from.
pub const DEFAULT_TOKEN_KEY_ENV: &str = "GRAYLANE_TOKEN_KEY";
/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 160;
/// The default longest validity a token may claim (tokens expiring later are refused).
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

const VERSION: &str = "v1";

/// The secret that signs and verifies lane tokens. Its `Debug` output never shows it.
///
/// Rotation: [`with_previous`](Self::with_previous) adds the key being replaced, with an end.
/// Tokens are minted with the current key only; a token signed with a previous key verifies
/// until that key's end, so testers are not locked out by a rotation, and an old key does not
/// stay alive for ever.
#[derive(Clone)]
pub struct TokenKey {
    key: Vec<u8>,
    max_ttl: Duration,
    /// Keys being rotated out, each with its end (Unix seconds, exclusive).
    previous: Vec<(Vec<u8>, u64)>,
}

/// Why a token key could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The key is shorter than [`MIN_KEY_LEN`] bytes.
    TooShort(usize),
    /// The environment variable is not set (or not UTF-8).
    MissingEnv(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::TooShort(n) => write!(
                f,
                "lane token key is {n} bytes, at least {MIN_KEY_LEN} are required"
            ),
            KeyError::MissingEnv(var) => write!(
                f,
                "lane token key: environment variable {var} is not set (export {var}=<secret of {MIN_KEY_LEN}+ bytes>)"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("key", &"<redacted>")
            .field("max_ttl", &self.max_ttl)
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl TokenKey {
    /// A key from secret bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(secret: &[u8]) -> Result<TokenKey, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        Ok(TokenKey {
            key: secret.to_vec(),
            max_ttl: DEFAULT_MAX_TTL,
            previous: Vec::new(),
        })
    }

    /// A key from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<TokenKey, KeyError> {
        let secret = std::env::var(var).map_err(|_| KeyError::MissingEnv(var.to_owned()))?;
        TokenKey::new(secret.as_bytes())
    }

    /// The same key, refusing tokens that claim to be valid for longer than `max_ttl`.
    #[must_use]
    pub fn with_max_ttl(mut self, max_ttl: Duration) -> TokenKey {
        self.max_ttl = max_ttl;
        self
    }

    /// The same key, also verifying (never minting) tokens signed with `previous` until
    /// `until`: the key being rotated out. Give it an end no later than the longest validity
    /// a token may claim after the rotation (`max_ttl`); after it, its tokens are forged.
    #[must_use]
    pub fn with_previous(mut self, previous: &TokenKey, until: SystemTime) -> TokenKey {
        let until = until.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.previous.push((previous.key.clone(), until));
        self
    }

    fn mac(&self, lane: &str, expiry: u64) -> Hmac<Sha256> {
        mac_with(&self.key, lane, expiry)
    }
}

/// The MAC of a token for `lane` and `expiry` under `key`.
fn mac_with(key: &[u8], lane: &str, expiry: u64) -> Hmac<Sha256> {
    // `new_from_slice` only fails for fixed-size keys; HMAC takes any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(VERSION.as_bytes());
    mac.update(b".");
    mac.update(lane.as_bytes());
    mac.update(b".");
    mac.update(expiry.to_string().as_bytes());
    mac
}

impl TokenKey {
    /// A token for `lane`, valid until `expires`.
    pub fn mint(&self, lane: Lane, expires: SystemTime) -> String {
        let expiry = expires
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let tag = self.mac(lane.as_str(), expiry).finalize().into_bytes();
        let mut out = format!("{VERSION}.{lane}.{expiry}.");
        for b in tag.iter() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The lane a token grants at time `now`, if it is genuine, unexpired and for a configured
    /// lane. The MAC comparison is constant-time.
    pub fn verify(
        &self,
        token: &[u8],
        lanes: &LaneSet,
        now: SystemTime,
    ) -> Result<Lane, Rejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::TokenMalformed);
        }
        // No trimming, no case folding: a token verifies only as `mint` spells it (see
        // `canonical_expiry`), so a cache or deny-list keyed on the token sees every replay.
        let token = std::str::from_utf8(token).map_err(|_| Rejection::TokenMalformed)?;
        let mut parts = token.split('.');
        let (Some(VERSION), Some(lane), Some(expiry), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Rejection::TokenMalformed);
        };
        if crate::lane::validate(lane.as_bytes()).is_err() {
            return Err(Rejection::TokenMalformed);
        }
        let expiry = canonical_expiry(expiry).ok_or(Rejection::TokenMalformed)?;
        // Lowercase hex, as `mint` writes it: `u8::from_str_radix` alone takes `AB` too.
        if tag.len() != 64 || !tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Rejection::TokenMalformed);
        }
        let tag: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&tag[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| Rejection::TokenMalformed)?;
        // Authenticity first, so a forger learns nothing from which check failed. Every key is
        // tried (no early exit), previous ones only before their end.
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let current = self.mac(lane, expiry).verify_slice(&tag).is_ok();
        let previous = self.previous.iter().fold(false, |found, (key, until)| {
            let genuine = mac_with(key, lane, expiry).verify_slice(&tag).is_ok();
            found | (genuine & (now < *until))
        });
        if !(current | previous) {
            return Err(Rejection::TokenForged);
        }
        if expiry <= now || expiry - now > self.max_ttl.as_secs() {
            return Err(Rejection::TokenExpired);
        }
        // Signed for a lane this deployment does not have (any more): nothing to grant.
        lanes.get(lane.as_bytes()).ok_or(Rejection::Unknown)
    }
}

/// `raw` as an expiry if it is spelled as `mint` writes one: decimal digits, no sign, no
/// leading zero (but `0` itself). `u64::from_str` also takes `+60` and `060`, which the MAC,
/// computed over the number, would not tell apart from `60`.
fn canonical_expiry(raw: &str) -> Option<u64> {
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    if !digits || (raw.len() > 1 && raw.starts_with('0')) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef-secret").unwrap()
    }
    fn gray() -> Lane {
        Lane::new("gray").unwrap()
    }
    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn round_trip_and_format() {
        let lanes = LaneSet::new([gray()]);
        let token = key().mint(gray(), t0() + Duration::from_secs(60));
        assert!(token.starts_with("v1.gray.1800000060."));
        assert_eq!(token.len(), "v1.gray.1800000060.".len() + 64);
        assert_eq!(key().verify(token.as_bytes(), &lanes, t0()), Ok(gray()));
    }

    #[test]
    fn a_rotated_key_keeps_testers_in_until_its_end() {
        let lanes = LaneSet::new([gray()]);
        let old = key();
        let new = TokenKey::new(b"the key after the rotation").unwrap();
        let rotated = new
            .clone()
            .with_previous(&old, t0() + Duration::from_secs(3600));
        // A tester's token from before the rotation, valid for three more hours.
        let theirs = old.mint(gray(), t0() + Duration::from_secs(3 * 3600));
        assert_eq!(rotated.verify(theirs.as_bytes(), &lanes, t0()), Ok(gray()));
        // Until the old key's end, not after it.
        let later = t0() + Duration::from_secs(3600);
        assert_eq!(
            rotated.verify(theirs.as_bytes(), &lanes, later),
            Err(Rejection::TokenForged)
        );
        // New tokens are the new key's: the old key alone cannot verify them.
        let fresh = rotated.mint(gray(), t0() + Duration::from_secs(60));
        assert_eq!(new.verify(fresh.as_bytes(), &lanes, t0()), Ok(gray()));
        assert_eq!(
            old.verify(fresh.as_bytes(), &lanes, t0()),
            Err(Rejection::TokenForged)
        );
    }

    #[test]
    fn a_token_has_one_valid_spelling() {
        // Replay caches and deny-lists key on the token as sent: each token verifies in the one
        // spelling `mint` writes, or the same grant could be replayed under another name.
        let lanes = LaneSet::new([gray()]);
        let good = key().mint(gray(), t0() + Duration::from_secs(60));
        assert_eq!(key().verify(good.as_bytes(), &lanes, t0()), Ok(gray()));
        let (head, tag) = good.rsplit_once('.').unwrap();
        let mut respelled = vec![
            good.replace(".1800000060.", ".+1800000060."),
            good.replace(".1800000060.", ".01800000060."),
            good.replace(".1800000060.", ".0001800000060."),
            format!("{head}.{}", tag.to_ascii_uppercase()),
            format!(" {good}"),
            format!("{good} "),
            format!("{good}\t"),
            format!("{good}\n"),
            good.replace("v1.", "V1."),
        ];
        // One hex digit in upper case.
        let i = tag.find(|c: char| c.is_ascii_alphabetic()).unwrap();
        let mut one_upper = tag.to_owned();
        one_upper.replace_range(i..=i, &tag[i..=i].to_ascii_uppercase());
        respelled.push(format!("{head}.{one_upper}"));
        for token in &respelled {
            assert_eq!(
                key().verify(token.as_bytes(), &lanes, t0()),
                Err(Rejection::TokenMalformed),
                "{token:?}"
            );
        }
        // Expiry 0 is spelled `0`.
        let zero = key().mint(gray(), UNIX_EPOCH);
        assert!(zero.starts_with("v1.gray.0."));
        assert_eq!(
            key().verify(zero.as_bytes(), &lanes, t0()),
            Err(Rejection::TokenExpired)
        );
        let zeros = zero.replace(".0.", ".00.");
        assert_eq!(
            key().verify(zeros.as_bytes(), &lanes, t0()),
            Err(Rejection::TokenMalformed)
        );
    }

    #[test]
    fn refusals() {
        let lanes = LaneSet::new([gray()]);
        let good = key().mint(gray(), t0() + Duration::from_secs(60));
        let other_key = TokenKey::new(b"another secret of 16+ bytes").unwrap();
        let forged_key = other_key.mint(gray(), t0() + Duration::from_secs(60));
        let extended = good.replace(".1800000060.", ".1800009999.");
        let mut flipped = good.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        let blue = Lane::new("blue").unwrap();
        let unknown = key().mint(blue, t0() + Duration::from_secs(60));
        let too_long =
            key()
                .with_max_ttl(Duration::from_secs(10))
                .verify(good.as_bytes(), &lanes, t0());
        let cases: Vec<(Vec<u8>, Rejection)> = vec![
            (forged_key.into_bytes(), Rejection::TokenForged),
            (extended.into_bytes(), Rejection::TokenForged),
            (flipped.into_bytes(), Rejection::TokenForged),
            (unknown.into_bytes(), Rejection::Unknown),
            (b"".to_vec(), Rejection::TokenMalformed),
            (b"v1.gray".to_vec(), Rejection::TokenMalformed),
            (b"v2.gray.1.00".to_vec(), Rejection::TokenMalformed),
            (
                format!("{good}.extra").into_bytes(),
                Rejection::TokenMalformed,
            ),
            (
                good.replace(".1800000060.", ".-5.").into_bytes(),
                Rejection::TokenMalformed,
            ),
            (vec![0xff; 40], Rejection::TokenMalformed),
            ("x".repeat(10_000).into_bytes(), Rejection::TokenMalformed),
            (
                good.replace('a', "Z").into_bytes(),
                Rejection::TokenMalformed,
            ),
        ];
        for (i, (token, expected)) in cases.iter().enumerate() {
            assert_eq!(
                key().verify(token, &lanes, t0()),
                Err(*expected),
                "case {i}"
            );
        }
        assert_eq!(
            key().verify(good.as_bytes(), &lanes, t0() + Duration::from_secs(60)),
            Err(Rejection::TokenExpired)
        );
        assert_eq!(too_long, Err(Rejection::TokenExpired));
    }

    #[test]
    fn keys() {
        assert_eq!(TokenKey::new(b"short").unwrap_err(), KeyError::TooShort(5));
        assert!(!format!("{:?}", key()).contains("secret"));
        let missing = TokenKey::from_env("GRAYLANE_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("GRAYLANE_TEST_SURELY_UNSET_VAR")
        );
    }

    proptest! {
        /// Any one byte changed, added or removed, and the token no longer verifies.
        #[test]
        fn no_other_spelling_verifies(
            at in 0usize..100,
            byte in prop_oneof![
                proptest::sample::select(&b" \t\r\n+-0.ABCDEFabcdef"[..]),
                any::<u8>(),
            ],
            edit in 0u8..4,
        ) {
            let lanes = LaneSet::new([gray()]);
            let good = key().mint(gray(), t0() + Duration::from_secs(60)).into_bytes();
            let at = at % (good.len() + 1);
            let mut other = good.clone();
            match edit {
                0 if at < good.len() => other[at] = byte,
                1 => other.insert(at, byte),
                2 if at < good.len() => { other.remove(at); }
                3 if at < good.len() => other[at].make_ascii_uppercase(),
                _ => other.push(byte),
            }
            prop_assume!(other != good);
            prop_assert!(key().verify(&other, &lanes, t0()).is_err(), "{:?}", String::from_utf8_lossy(&other));
        }

        #[test]
        fn arbitrary_tokens_never_verify(token in proptest::collection::vec(any::<u8>(), 0..200)) {
            let lanes = LaneSet::new([gray()]);
            prop_assert!(key().verify(&token, &lanes, t0()).is_err());
        }
    }
}
