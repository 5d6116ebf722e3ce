//! `graylane route`: where a request goes, worked out offline. The edge decides the lane as the
//! edge service would (tokens, coloring rules, stripping client lane headers); then each
//! service's routes, generated from the spec or read from manifests, resolve the request as
//! Istio would. A mirror whose target is not a mirror lane's subset is a finding (exit 1): its
//! copies would be served as base.

use std::borrow::Cow;
use std::collections::BTreeMap;

use graylane_core::coloring::SimpleRequest;
use graylane_core::spec::LaneSpec;
use graylane_core::{Admission, Extractor, Injector, Lane, LaneContext};
use graylane_mesh::{Hop, Request, Routes, Target, generate};

use super::{load, print_json};
use crate::args::RouteArgs;
use crate::{Fail, bad_input, manifest_dir, problem};

#[derive(serde::Serialize)]
struct RouteReport {
    lane: String,
    decided_by: String,
    hops: Vec<Hop>,
    /// Mirror targets that are not a mirror lane's subset, one message each.
    unsafe_mirrors: Vec<String>,
}

/// Prints the lane and what decided it, then one line (or JSON object) per service.
pub(crate) fn run(args: &RouteArgs) -> Result<(), Fail> {
    let spec = load(&args.spec)?;
    let routes = match &args.manifests {
        Some(dir) => Routes::new(manifest_dir::read(dir)?.into_iter().flat_map(|f| f.docs)),
        None => Routes::new(generate(&spec).resources().cloned()),
    };
    let (mut request, edge_request) = requests(args)?;
    let (lane, decided_by) = if args.no_edge {
        let lane = spec
            .propagator()
            .extract(&LaneCarrier(&mut request.headers))
            .lane();
        (lane, "the request's own lane header (--no-edge)".to_owned())
    } else {
        at_the_edge(&spec, edge_request, &mut request)?
    };
    let services: Vec<String> = if args.services.is_empty() {
        spec.services.iter().map(|s| s.name.clone()).collect()
    } else {
        args.services.clone()
    };
    let hops = services
        .iter()
        .map(|s| {
            routes
                .resolve(s, &request)
                .map_err(|e| bad_input(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let unsafe_mirrors: Vec<String> = hops
        .iter()
        .filter_map(|h| unsafe_mirror(&spec, h))
        .collect();
    if args.json {
        print_json(&RouteReport {
            lane: lane.to_string(),
            decided_by,
            hops,
            unsafe_mirrors: unsafe_mirrors.clone(),
        })?;
    } else {
        println!("lane: {lane} (decided by {decided_by})");
        for hop in &hops {
            println!("{}", hop_line(hop));
        }
    }
    match unsafe_mirrors.as_slice() {
        [] => Ok(()),
        found => Err(problem(found.join("\n"))),
    }
}

/// Why `hop`'s mirror is unsafe, if it is: its subset is no mirror lane of the spec, so the pods
/// that take Envoy's copies are not pinned (the copies carry no lane), and serve them as base,
/// writing production data.
fn unsafe_mirror(spec: &LaneSpec, hop: &Hop) -> Option<String> {
    let (target, percent) = hop.mirror.as_ref()?;
    let subset = target.subset.as_deref().unwrap_or("*");
    let pinned = Lane::new(subset)
        .ok()
        .and_then(|lane| spec.lane(lane))
        .is_some_and(|l| l.mirror);
    (!pinned).then(|| {
        format!(
            "{}: route {} mirrors {percent}% to subset {subset}, which is no mirror lane of the spec: \
             Envoy's copies carry no lane, and pods not pinned to one serve them as base, \
             writing production data (declare the lane `mirror: true`)",
            hop.service, hop.route
        )
    })
}

/// The request twice over: as the mesh routes see it, and as it reaches the edge service
/// (headers, with cookies folded into `cookie`, and the query in the URI).
fn requests(args: &RouteArgs) -> Result<(Request, SimpleRequest), Fail> {
    let mut request = Request::default().path(&args.path);
    let mut edge_request = SimpleRequest::new(&match args.query.is_empty() {
        true => args.path.clone(),
        false => format!("{}?{}", args.path, args.query.join("&")),
    });
    for h in &args.headers {
        let (k, v) = split_pair(h, ':', "header")?;
        request = request.header(k, v);
        edge_request = edge_request.header(k, v);
    }
    for c in &args.cookies {
        let (k, v) = split_pair(c, '=', "cookie")?;
        request = request.cookie(k, v);
    }
    if let Some(cookie) = request.headers.get("cookie") {
        edge_request = edge_request.header("cookie", cookie);
    }
    for q in &args.query {
        let (k, v) = split_pair(q, '=', "query parameter")?;
        request = request.query(k, v);
    }
    Ok((request, edge_request))
}

/// `name<sep>value`, both sides trimmed; the name must not be empty.
fn split_pair<'a>(s: &'a str, sep: char, what: &str) -> Result<(&'a str, &'a str), Fail> {
    s.split_once(sep)
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| bad_input(format!("{what} {s:?} must look like name{sep}value")))
}

/// The edge service's decision: the lane and what decided it. `request` leaves the edge as the
/// edge service sends it on: the client's lane headers replaced by the lane decided.
fn at_the_edge(
    spec: &LaneSpec,
    mut edge_request: SimpleRequest,
    request: &mut Request,
) -> Result<(Lane, String), Fail> {
    let edge = spec.edge().map_err(|e| bad_input(e.to_string()))?;
    let admission = edge.admit(&mut edge_request);
    let lane = admission.context().lane();
    // Inside the mesh the lane travels as the edge wrote it.
    request
        .headers
        .retain(|k, _| *k != spec.wire.header && *k != spec.wire.mirror_header);
    spec.propagator().inject(
        &LaneContext::new(lane),
        &mut LaneCarrier(&mut request.headers),
    );
    Ok((lane, decided_by(&admission)))
}

/// What decided the lane at the edge, for `lane: ... (decided by ...)`.
fn decided_by(admission: &Admission) -> String {
    match (admission.rule(), admission.token()) {
        (_, Some(Ok(()))) => "a signed lane token".to_owned(),
        (Some(rule), _) => format!("coloring rule {rule:?}"),
        (None, Some(Err(r))) => format!("no rule matched (token refused: {r})"),
        (None, None) if admission.stripped() => {
            "no rule matched (client lane headers stripped)".to_owned()
        }
        (None, None) => "no rule matched".to_owned(),
    }
}

/// `  orders         route default            -> base (v1) 90%, gray (v2) 10%; mirror 5% to ...`
fn hop_line(hop: &Hop) -> String {
    let dests: Vec<String> = hop
        .destinations
        .iter()
        .map(|d| format!("{} {}%", target(d), d.weight))
        .collect();
    let mut line = format!(
        "  {:<14} route {:<18} -> {}",
        hop.service,
        hop.route,
        dests.join(", ")
    );
    if let Some((m, pct)) = &hop.mirror {
        line.push_str(&format!("; mirror {pct}% to {}", target(m)));
    }
    line
}

/// `subset (version)`; `*` for any pod of the service, `?` for an unknown version.
fn target(t: &Target) -> String {
    format!(
        "{} ({})",
        t.subset.as_deref().unwrap_or("*"),
        t.version.as_deref().unwrap_or("?")
    )
}

/// The routing request's headers as a lane carrier.
struct LaneCarrier<'a>(&'a mut BTreeMap<String, String>);

impl Extractor for LaneCarrier<'_> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(|v| v.as_bytes())
    }
}

impl Injector for LaneCarrier<'_> {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        self.0.insert(key.to_owned(), value.into_owned());
    }
    fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(subset: Option<&str>, version: Option<&str>, weight: f64) -> Target {
        Target {
            host: "orders".into(),
            subset: subset.map(Into::into),
            version: version.map(Into::into),
            weight,
        }
    }

    #[test]
    fn pairs_are_trimmed_and_need_a_name() {
        assert_eq!(
            split_pair(" x-user-group :  beta ", ':', "header").ok(),
            Some(("x-user-group", "beta"))
        );
        assert_eq!(split_pair("a=b=c", '=', "cookie").ok(), Some(("a", "b=c")));
        for bad in ["no-colon", ": value", "  :x"] {
            assert!(split_pair(bad, ':', "header").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hop_is_one_aligned_line() {
        let hop = Hop {
            service: "orders".into(),
            route: "default".into(),
            destinations: vec![
                dest(Some("base"), Some("v1"), 90.0),
                dest(Some("gray"), None, 10.0),
            ],
            mirror: Some((dest(None, Some("v2-shadow"), 0.0), 5.0)),
        };
        assert_eq!(
            hop_line(&hop),
            "  orders         route default            -> base (v1) 90%, gray (?) 10%; \
             mirror 5% to * (v2-shadow)"
        );
    }
}
