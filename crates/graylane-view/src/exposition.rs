//! Prometheus's text exposition format, read: the samples of a `/metrics` page, and the
//! quantile of a histogram as Prometheus's `histogram_quantile` computes it.
//!
//! ```
//! use graylane_view::exposition::sample;
//!
//! let s = sample(r#"graylane_requests_total{gray_lane="gray"} 7"#).unwrap();
//! assert_eq!((s.name, s.label("gray_lane"), s.value), ("graylane_requests_total", Some("gray"), 7.0));
//! ```

/// One sample line: `name{a="1",b="2"} value [timestamp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The metric's name, e.g. `graylane_requests_total`.
    pub name: &'a str,
    /// Its labels in the order written, escapes undone.
    pub labels: Vec<(String, String)>,
    /// Its value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of an exposition text; comments and lines that are not samples are skipped.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(sample)
}

/// One sample line; `None` for a comment, an empty line, or anything that is not a sample.
pub fn sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = line.split_at(line.find(['{', ' '])?);
    if name.is_empty() {
        return None;
    }
    let (labels, rest) = if let Some(inner) = rest.strip_prefix('{') {
        let end = label_end(inner)?;
        (labels(&inner[..end])?, &inner[end + 1..])
    } else {
        (Vec::new(), rest)
    };
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The index of the `}` closing a label set (quotes respected).
fn label_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `a="1",b="x\"y"` → pairs, with `\\`, `\"` and `\n` unescaped.
fn labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.push((name.trim().to_owned(), value));
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Some(out)
}

/// The `q` quantile of cumulative `buckets` (sorted by upper bound, `+Inf` last), as
/// `histogram_quantile`: the bucket where the rank falls, interpolated linearly (from 0 for
/// the first bucket); the highest finite bound when the rank falls in `+Inf`. `None` without
/// observations.
///
/// ```
/// use graylane_view::exposition::quantile;
///
/// let buckets = [(0.1, 50.0), (0.5, 100.0), (f64::INFINITY, 100.0)];
/// assert!((quantile(0.99, &buckets).unwrap() - 0.492).abs() < 1e-9);
/// ```
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            let share = if within > 0.0 {
                (rank - lower.1) / within
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * share);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn samples_parse_with_escapes_timestamps_and_odd_values() {
        let s = sample(r#"x_total{a="q\"u{o}te",b="back\\slash"} 3.5 1700000000000"#).unwrap();
        assert_eq!((s.name, s.value), ("x_total", 3.5));
        assert_eq!(s.labels[0], ("a".into(), "q\"u{o}te".into()));
        assert_eq!(s.label("b"), Some("back\\slash"));
        assert_eq!(sample("up 1").unwrap().value, 1.0);
        assert_eq!(sample("x +Inf").unwrap().value, f64::INFINITY);
        for junk in [
            "",
            "# HELP x",
            "x{a=\"1\" 2",
            "x{a=1} 2",
            "x nope",
            "{a=\"1\"} 2",
        ] {
            assert!(sample(junk).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn quantiles_match_histogram_quantile() {
        assert_eq!(quantile(0.99, &[]), None);
        assert_eq!(quantile(0.99, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(
            quantile(0.5, &[(1.0, 10.0), (f64::INFINITY, 10.0)]),
            Some(0.5)
        );
        // Past the last finite bound: that bound.
        assert_eq!(
            quantile(0.99, &[(1.0, 1.0), (f64::INFINITY, 10.0)]),
            Some(1.0)
        );
    }

    proptest! {
        /// Whatever a target serves, reading it never panics.
        #[test]
        fn any_line_reads_or_is_skipped(line in "\\PC{0,80}") {
            let _ = sample(&line);
        }

        /// A label value written with the format's escapes reads back as written.
        #[test]
        fn escaped_label_values_read_back(value in "\\PC{0,30}", n in 0u32..1_000_000) {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let line = format!("m_total{{k=\"{escaped}\",z=\"1\"}} {n}");
            let s = sample(&line).unwrap();
            prop_assert_eq!(s.label("k"), Some(value.as_str()));
            prop_assert_eq!(s.label("z"), Some("1"));
            prop_assert_eq!(s.value, f64::from(n));
        }
    }
}
