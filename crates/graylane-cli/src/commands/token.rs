//! `graylane token`: mint a signed lane token with the spec's `trust.token` key.

use std::time::{Duration, SystemTime};

use super::{lane_arg, load};
use crate::args::TokenArgs;
use crate::{Fail, bad_input};

/// Prints a token for `--lane`, valid for `--ttl`; refuses a ttl the edge would refuse.
pub(crate) fn run(args: &TokenArgs) -> Result<(), Fail> {
    let spec = load(&args.spec)?;
    let lane = lane_arg(&spec, &args.lane, args.spec.display())?;
    let settings = spec.trust.token.as_ref().ok_or_else(|| {
        bad_input(format!(
            "{}: tokens are off (set trust.token)",
            args.spec.display()
        ))
    })?;
    let ttl = parse_ttl(&args.ttl)?;
    if ttl.as_secs() > settings.max_ttl_secs {
        return Err(bad_input(format!(
            "ttl {}s exceeds trust.token.max_ttl_secs ({}s): the edge would refuse the token",
            ttl.as_secs(),
            settings.max_ttl_secs
        )));
    }
    let key = settings.load_key().map_err(|e| bad_input(e.to_string()))?;
    println!("{}", key.mint(lane, SystemTime::now() + ttl));
    Ok(())
}

/// A positive duration: a number and a unit (`s`, the default, `m`, `h` or `d`).
fn parse_ttl(s: &str) -> Result<Duration, Fail> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| bad_input(format!("ttl {s:?}: expected a number and a unit, e.g. 30m")))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => {
            return Err(bad_input(format!(
                "ttl {s:?}: unknown unit {other:?} (s, m, h, d)"
            )));
        }
    };
    if secs == 0 {
        return Err(bad_input("ttl must be positive"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("90").ok().map(|d| d.as_secs()), Some(90));
        assert_eq!(parse_ttl("30m").ok().map(|d| d.as_secs()), Some(1800));
        assert_eq!(parse_ttl("2h").ok().map(|d| d.as_secs()), Some(7200));
        assert_eq!(parse_ttl("1d").ok().map(|d| d.as_secs()), Some(86_400));
        for bad in ["", "h", "0s", "5w", "-1h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
