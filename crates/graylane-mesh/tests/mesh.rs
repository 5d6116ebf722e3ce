//! Generation, validation against the upstream schemas, cross-checks and offline routing.

use graylane_core::spec::LaneSpec;
use graylane_mesh::model::{Resource, from_yaml};
use graylane_mesh::{Request, Routes, check, generate, validate_upstream};

const SPEC: &str = r#"
services:
  - name: gateway
  - name: orders
    protocol: grpc
    port: 9090
    routing:
      canary: { lane: gray, weight: 10 }
      content:
        - lane: gray
          match: { header: { name: x-user-group, exact: beta } }
        - lane: gray
          match: { cookie: { name: optin, exact: "yes" }, path_prefix: /api/ }
      mirror: { lane: shadow, percent: 5 }
  - name: inventory
  - name: payments
    routing:
      blue_green: { active: green }
lanes:
  - { name: gray, version: v2, services: [orders] }
  - { name: shadow, version: v2-shadow, services: [orders], mirror: true }
  - { name: green, version: v3, services: [payments] }
mesh:
  namespace: shop
  image: "registry.local/shop/{service}:{version}"
  gateway: { hosts: [shop.example.com], service: gateway }
"#;

fn spec() -> LaneSpec {
    LaneSpec::from_yaml_str(SPEC).unwrap()
}

fn resources() -> Vec<Resource> {
    generate(&spec()).resources().cloned().collect()
}

#[test]
fn every_document_passes_the_upstream_schemas_and_the_cross_checks() {
    let manifests = generate(&spec());
    let rendered = manifests.render();
    assert_eq!(
        rendered.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [
            "gateway.yaml",
            "orders.yaml",
            "inventory.yaml",
            "payments.yaml",
            "_ingress.yaml"
        ]
    );
    for (name, yaml) in &rendered {
        let failures = validate_upstream(yaml);
        assert!(failures.is_empty(), "{name}: {failures:?}");
        // What we read back is what we wrote.
        let parsed = from_yaml(yaml).unwrap();
        let written = &manifests.files.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(&parsed, written, "{name}");
    }
    assert_eq!(check(&resources()), vec![]);
}

#[test]
fn output_is_byte_stable() {
    assert_eq!(generate(&spec()).render(), generate(&spec()).render());
}

#[test]
fn unknown_fields_are_caught_by_the_upstream_schema() {
    let (_, yaml) = generate(&spec()).render().remove(1);
    let broken = yaml.replacen("  hosts:", "  hostz:\n  - x\n  hosts:", 1);
    let failures = validate_upstream(&broken);
    assert!(
        failures
            .iter()
            .any(|(_, kind, e)| kind == "VirtualService" && e.contains("hostz")),
        "{failures:?}"
    );
    let wrong_version = yaml.replace("networking.istio.io/v1", "networking.istio.io/v9");
    assert!(
        validate_upstream(&wrong_version)
            .iter()
            .any(|(_, _, e)| e.contains("v9"))
    );
    assert!(from_yaml(&broken).unwrap_err().contains("hostz"));
}

#[test]
fn a_mirror_subset_whose_pods_are_not_pinned_is_found() {
    let mut docs = resources();
    assert!(check(&docs).is_empty(), "{:?}", check(&docs));
    let shadow = docs
        .iter_mut()
        .find_map(|d| match d {
            Resource::Deployment(d) if d.metadata.name == "orders-v2-shadow" => Some(d),
            _ => None,
        })
        .expect("the shadow lane's Deployment");
    let env = &mut shadow.spec.template.spec.containers[0].env;
    assert!(
        env.iter()
            .any(|e| e.name == graylane_mesh::PINNED_ENV && e.value == "shadow"),
        "{env:?}"
    );
    env.retain(|e| e.name != graylane_mesh::PINNED_ENV);
    let findings: Vec<String> = check(&docs).iter().map(ToString::to_string).collect();
    assert_eq!(
        findings,
        [
            "VirtualService/orders: route default: mirror subset shadow of orders selects Deployment orders-v2-shadow, whose pods are not pinned to lane shadow (GRAYLANE_PINNED_LANE): Envoy's copies carry no lane, and would write into production"
        ]
    );
}

#[test]
fn cross_checks_find_what_schemas_cannot() {
    let mut docs = resources();
    for doc in &mut docs {
        match doc {
            Resource::VirtualService(vs) if vs.metadata.name == "orders" => {
                let default = vs
                    .spec
                    .http
                    .iter_mut()
                    .find(|r| r.name == "default")
                    .unwrap();
                default.route[0].weight = Some(95);
                default.mirror_percentage.as_mut().unwrap().value = 150.0;
                vs.spec.http[0].route[0].destination.subset = Some("purple".into());
            }
            Resource::DestinationRule(dr) if dr.metadata.name == "inventory" => {
                dr.spec.subsets[0]
                    .labels
                    .insert("version".into(), "v9".into());
            }
            _ => {}
        }
    }
    let findings: Vec<String> = check(&docs).iter().map(ToString::to_string).collect();
    let expect = [
        "VirtualService/orders: route default: weights sum to 105, not 100",
        "VirtualService/orders: route default: mirrorPercentage 150 is outside 0..=100",
        "VirtualService/orders: route lane-gray: subset purple of orders is in no DestinationRule",
        "DestinationRule/inventory: subset base selects no Deployment's pods",
    ];
    for e in expect {
        assert!(
            findings.iter().any(|f| f == e),
            "missing {e:?} in {findings:#?}"
        );
    }
}

fn routes() -> Routes {
    Routes::new(resources())
}

fn version(routes: &Routes, service: &str, req: &Request) -> (String, Vec<(Option<String>, f64)>) {
    let hop = routes.resolve(service, req).unwrap();
    (
        hop.route.clone(),
        hop.destinations
            .iter()
            .map(|d| (d.version.clone(), d.weight))
            .collect(),
    )
}

#[test]
fn lane_header_goes_to_the_lane_where_deployed_and_base_elsewhere() {
    let r = routes();
    let gray = Request::default().header("X-Gray-Lane", "gray");
    assert_eq!(
        version(&r, "orders", &gray),
        ("lane-gray".into(), vec![(Some("v2".into()), 100.0)])
    );
    for service in ["gateway", "inventory", "payments"] {
        assert_eq!(
            version(&r, service, &gray),
            ("fallback-gray".into(), vec![(Some("v1".into()), 100.0)]),
            "{service}"
        );
    }
    // A lane the service lacks never lands in another lane's version, whatever the strategy:
    // green traffic at orders (gray canary) goes to base, not gray.
    let green = Request::default()
        .header("x-gray-lane", "green")
        .header("x-user-group", "beta");
    assert_eq!(
        version(&r, "orders", &green),
        ("fallback-green".into(), vec![(Some("v1".into()), 100.0)])
    );
    assert_eq!(
        version(&r, "payments", &green).1,
        vec![(Some("v3".into()), 100.0)]
    );
}

#[test]
fn strategies_for_traffic_without_a_lane() {
    let r = routes();
    // Content-based canary.
    let beta = Request::default().header("x-user-group", "beta");
    assert_eq!(
        version(&r, "orders", &beta),
        ("content-0-gray".into(), vec![(Some("v2".into()), 100.0)])
    );
    let optin = Request::default()
        .cookie("session", "1")
        .cookie("optin", "yes")
        .path("/api/orders");
    assert_eq!(version(&r, "orders", &optin).0, "content-1-gray");
    let optin_wrong_path = Request::default().cookie("optin", "yes").path("/web");
    assert_eq!(version(&r, "orders", &optin_wrong_path).0, "default");
    let optin_no = Request::default().cookie("optin", "yess").path("/api/x");
    assert_eq!(version(&r, "orders", &optin_no).0, "default");
    // Weighted canary.
    assert_eq!(
        version(&r, "orders", &Request::default()),
        (
            "default".into(),
            vec![(Some("v1".into()), 90.0), (Some("v2".into()), 10.0)]
        )
    );
    // Blue-green: all un-laned traffic on the active version.
    assert_eq!(
        version(&r, "payments", &Request::default()).1,
        vec![(Some("v3".into()), 100.0)]
    );
}

#[test]
fn weights_and_mirror_share_hold_over_many_samples() {
    let r = routes();
    let hop = r.resolve("orders", &Request::default()).unwrap();
    let (mirror, pct) = hop.mirror.clone().unwrap();
    assert_eq!((mirror.version.as_deref(), pct), (Some("v2-shadow"), 5.0));
    let mut rng = fastrand::Rng::with_seed(7);
    let n = 20_000;
    let (mut canary, mut mirrored) = (0, 0);
    for _ in 0..n {
        if hop.pick(rng.f64() * 100.0).version.as_deref() == Some("v2") {
            canary += 1;
        }
        if rng.f64() * 100.0 < pct {
            mirrored += 1;
        }
    }
    let (c, m) = (canary as f64 / n as f64, mirrored as f64 / n as f64);
    assert!((0.09..0.11).contains(&c), "canary share {c}");
    assert!((0.04..0.06).contains(&m), "mirror share {m}");
}

#[test]
fn the_gateway_routes_to_the_edge_and_strips_lane_headers() {
    let docs = resources();
    let vs = docs
        .iter()
        .find_map(|d| match d {
            Resource::VirtualService(vs) if !vs.spec.gateways.is_empty() => Some(vs),
            _ => None,
        })
        .unwrap();
    assert_eq!(vs.spec.hosts, ["shop.example.com"]);
    let route = &vs.spec.http[0];
    assert_eq!(route.route[0].destination.host, "gateway");
    let ops = route.headers.as_ref().unwrap().request.as_ref().unwrap();
    assert_eq!(ops.remove, ["x-gray-lane", "x-gray-mirror"]);
}

#[test]
fn broken_specs_give_one_clear_error_each() {
    let base = "services: [{name: a}, {name: b}]\nlanes: [{name: gray, services: [a]}]\n";
    let cases = [
        (
            format!("{base}coloring: {{rules: [{{lane: grey, match: {{path_prefix: /}}}}]}}\n"),
            "coloring.rules[0].lane",
            "unknown lane \"grey\"",
        ),
        (
            "services: [{name: a}, {name: a}]\n".to_owned(),
            "services[1].name",
            "listed twice",
        ),
        (
            base.replace(
                "{name: a}, {name: b}",
                "{name: a, routing: {canary: {lane: gray, weight: 120}}}, {name: b}",
            ),
            "services[0].routing.canary.weight",
            "outside 0..=100",
        ),
        (
            base.replace(
                "{name: b}",
                "{name: b, routing: {canary: {lane: gray, weight: 5}}}",
            ),
            "services[1].routing.canary.lane",
            "no version in lane gray",
        ),
        (
            base.replace(
                "{name: b}",
                "{name: b, routing: {mirror: {lane: gray, percent: 101}}}",
            ),
            "services[1].routing.mirror.percent",
            "outside 0..=100",
        ),
        (
            base.replace(
                "{name: a}",
                "{name: a, routing: {content: [{lane: gray, match: {random: 5}}]}}",
            ),
            "services[0].routing.content[0].match",
            "cannot be expressed in Istio",
        ),
        (
            base.replace(
                "{name: a}",
                "{name: a, routing: {canary: {lane: gray, weight: 5}, blue_green: {active: base}}}",
            ),
            "services[0].routing.blue_green",
            "either",
        ),
        (
            "lanes: [{name: Gray_1}]\n".to_owned(),
            "lanes[0].name",
            "lane name",
        ),
        (
            format!("{base}mesh: {{gateway: {{hosts: [x], service: nope}}}}\n"),
            "mesh.gateway.service",
            "unknown service",
        ),
        (
            format!("{base}mesh: {{image: \"shop:{{version}}\", args: [--verbose]}}\n"),
            "mesh.image",
            "must contain {service}",
        ),
    ];
    for (src, path, words) in cases {
        let e = LaneSpec::from_yaml_str(&src).unwrap_err();
        assert_eq!(e.path, path, "{src}\n{e}");
        assert!(e.message.contains(words), "{src}\n{e}");
        assert!(e.line.is_some(), "{e}");
    }
}

#[test]
fn one_image_for_every_service_through_args() {
    let src = SPEC.replace(
        r#"image: "registry.local/shop/{service}:{version}""#,
        r#"image: "registry.local/shop:{version}"
  args: ["--role", "{service}", "--lane={lane}"]"#,
    );
    let manifests = generate(&LaneSpec::from_yaml_str(&src).unwrap());
    let orders = &manifests.render()[1];
    assert_eq!(orders.0, "orders.yaml");
    assert!(validate_upstream(&orders.1).is_empty());
    let containers: Vec<(String, Vec<String>)> = manifests
        .resources()
        .filter_map(|r| match r {
            Resource::Deployment(d) if d.metadata.name.starts_with("orders-") => {
                let c = &d.spec.template.spec.containers[0];
                Some((c.image.clone(), c.args.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        containers,
        [
            (
                "registry.local/shop:v1".into(),
                vec!["--role".into(), "orders".into(), "--lane=base".into()]
            ),
            (
                "registry.local/shop:v2".into(),
                vec!["--role".into(), "orders".into(), "--lane=gray".into()]
            ),
            (
                "registry.local/shop:v2-shadow".into(),
                vec!["--role".into(), "orders".into(), "--lane=shadow".into()]
            ),
        ]
    );
}
