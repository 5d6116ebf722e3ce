//! Loading lane specs: the happy path in both formats, and one clear, located error per mistake.

use graylane_core::coloring::SimpleRequest;
use graylane_core::spec::{LaneSpec, SpecError};
use graylane_core::{Lane, Rejection};

const GOOD: &str = r#"
services:
  - name: gateway
  - name: orders
  - name: inventory
lanes:
  - name: gray
    version: v2
    services: [orders]
  - name: canary-2
    services: [orders, inventory]
    data: { redis_prefix: "c2|" }
coloring:
  rules:
    - { name: beta, lane: gray, match: { header: { name: x-group, exact: beta } } }
    - { lane: canary-2, match: { random: 0.5 } }
trust:
  token: { key: "inline demo key, long enough" }
"#;

#[test]
fn good_spec_loads_and_answers() {
    let spec = LaneSpec::from_yaml_str(GOOD).unwrap();
    let gray = Lane::new("gray").unwrap();
    let c2 = Lane::new("canary-2").unwrap();
    assert_eq!(spec.lane_set().iter().count(), 3);
    assert_eq!(spec.serving_lane("orders", gray), gray);
    assert_eq!(spec.serving_lane("inventory", gray), Lane::BASE);
    assert_eq!(spec.serving_lane("inventory", c2), c2);
    assert_eq!(spec.serving_lane("orders", Lane::BASE), Lane::BASE);
    assert_eq!(spec.serving_version("orders", gray), Some("v2"));
    assert_eq!(spec.serving_version("inventory", gray), Some("v1"));
    assert_eq!(spec.serving_version("inventory", c2), Some("canary-2"));
    assert_eq!(spec.serving_version("nope", gray), None);

    let names = spec.data_names(c2);
    assert_eq!(names.redis_prefix, "c2|");
    assert_eq!(names.pg_schema.as_deref(), Some("lane_canary_2"));
    assert_eq!(names.kafka_group_suffix, ".lane.canary-2");
    let base = spec.data_names(Lane::BASE);
    assert_eq!((base.redis_prefix.as_str(), base.pg_schema), ("", None));

    let edge = spec.edge().unwrap();
    let mut req = SimpleRequest::new("/").header("x-group", "beta");
    assert_eq!(edge.admit(&mut req).context().lane(), gray);
    let mut forged = SimpleRequest::new("/").header("x-gray-lane", "gray");
    assert!(edge.admit(&mut forged).context().lane().is_base());
    assert_eq!(edge.stats().get(Rejection::Untrusted), 1);
}

#[test]
fn yaml_and_toml_examples_agree() {
    let yaml = include_str!("../../../docs/examples/lane-spec.yaml");
    let toml = include_str!("../../../docs/examples/lane-spec.toml");
    let from_yaml = LaneSpec::from_yaml_str(yaml).unwrap();
    let from_toml = LaneSpec::from_toml_str(toml).unwrap();
    assert_eq!(from_yaml, from_toml);
    assert_eq!(from_yaml.coloring.rules.len(), 4);
}

fn yaml_err(src: &str) -> SpecError {
    LaneSpec::from_yaml_str(src).expect_err("the spec should be refused")
}

/// Each mistake: the spec, the line it must be reported at, the path, and words the message
/// must contain.
#[test]
fn each_mistake_gives_one_located_error() {
    let cases: &[(&str, usize, &str, &str)] = &[
        // Structural: found by serde, positioned by the YAML parser.
        ("lanes:\n  - name: Gray\n", 2, "lanes[0].name", "lane name"),
        (
            "lanes:\n  - name: gray\n    servces: [a]\n",
            3,
            "lanes[0].servces",
            "unknown field `servces`",
        ),
        (
            "services:\n  - name: a\n    version: [1]\n",
            3,
            "services[0].version",
            "invalid type",
        ),
        (
            "coloring:\n  rules:\n    - lane: gray\n      match: { random: 150 }\n",
            4,
            "coloring.rules[0].match.random",
            "outside 0..=100",
        ),
        (
            "colouring: {}\n",
            1,
            "colouring",
            "unknown field `colouring`",
        ),
        ("lanes: [\n", 2, "lanes", "expected node content"),
        // Semantic: found by validation, positioned by walking the document again.
        (
            "services: [{name: a}]\nlanes:\n  - name: gray\n    services: [a]\ncoloring:\n  rules:\n    - lane: grey\n      match: { path_prefix: / }\n",
            7,
            "coloring.rules[0].lane",
            "unknown lane \"grey\"",
        ),
        (
            "services:\n  - name: a\n  - name: b\n  - name: a\n",
            4,
            "services[2].name",
            "listed twice",
        ),
        (
            "services:\n  - name: Orders\n",
            2,
            "services[0].name",
            "DNS label",
        ),
        (
            "lanes:\n  - name: gray\n  - name: gray\n",
            3,
            "lanes[1].name",
            "declared twice",
        ),
        (
            "lanes:\n  - name: base\n",
            2,
            "lanes[0].name",
            "always present",
        ),
        (
            "services: [{name: a}]\nlanes:\n  - name: gray\n    version: v1\n    services: [a]\n",
            4,
            "lanes[0].version",
            "base version",
        ),
        (
            "lanes:\n  - name: gray\n    services:\n      - ghost\n",
            4,
            "lanes[0].services[0]",
            "unknown service",
        ),
        (
            "lanes:\n  - name: gray\n  - name: blue\ndata:\n  redis_prefix: \"shared:\"\n",
            5,
            "data.redis_prefix",
            "overlaps",
        ),
        (
            "lanes:\n  - name: gray\n    data:\n      pg_schema: public\n",
            4,
            "lanes[0].data.pg_schema",
            "public",
        ),
        (
            "lanes:\n  - name: gray\n    data:\n      redis_prefix: \"{tag}:\"\n",
            4,
            "lanes[0].data.redis_prefix",
            "braces",
        ),
        (
            "lanes:\n  - name: gray\n    data: { kafka_group_suffix: \"a b\" }\n",
            3,
            "lanes[0].data.kafka_group_suffix",
            "Kafka group suffix",
        ),
        (
            "lanes: [{name: gray}]\ncoloring:\n  rules:\n    - lane: gray\n      match:\n        header: { name: x, regex: \"(\" }\n",
            6,
            "coloring.rules[0].match.header.regex",
            "bad regex",
        ),
        ("version: 2\n", 1, "version", "unsupported version"),
        ("wire:\n  header: X-Lane\n", 2, "wire", "lowercase"),
        (
            "trust:\n  token:\n    key: short\n",
            3,
            "trust.token.key",
            "at least 16",
        ),
        (
            "data:\n  redis_scripts:\n    - e0e1f9fabfc9d4800c877a703b823ac0578ff831\n    - abc\n",
            4,
            "data.redis_scripts[1]",
            "SHA-1",
        ),
        (
            "trust:\n  token:\n    previous:\n      - {key_env: OLD, until: 2026-12-08}\n",
            4,
            "trust.token.previous[0].until",
            "RFC 3339",
        ),
        (
            "trust:\n  token:\n    previous:\n      - {key_env: OLD}\n",
            4,
            "trust.token.previous[0]",
            "missing field `until`",
        ),
        (
            "data:\n  redis_functions: [ok_1, 'no:colons']\n",
            2,
            "data.redis_functions[1]",
            "function name",
        ),
    ];
    for (src, line, path, words) in cases {
        let e = yaml_err(src);
        assert_eq!(e.line, Some(*line), "{src:?}: {e}");
        assert_eq!(e.path, *path, "{src:?}: {e}");
        assert!(e.message.contains(words), "{src:?}: {e}");
        assert!(
            !e.message.contains("at line"),
            "position is not repeated: {e}"
        );
    }
}

#[test]
fn toml_errors_are_located_too() {
    let e = LaneSpec::from_toml_str("[[lanes]]\nname = \"gray\"\nservices = [\"ghost\"]\n")
        .unwrap_err();
    assert_eq!(
        (e.line, e.path.as_str()),
        (Some(3), "lanes[0].services[0]"),
        "{e}"
    );
    let e = LaneSpec::from_toml_str("[[lanes]]\nname = \"GRAY\"\n").unwrap_err();
    assert_eq!((e.line, e.path.as_str()), (Some(2), "lanes[0].name"), "{e}");
    let e = LaneSpec::from_toml_str("lanes = [").unwrap_err();
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn files_are_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("graylane-spec-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, "lanes:\n  - name: gray\n    services: [ghost]\n").unwrap();
    let e = LaneSpec::from_path(&path).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("{}:3:", path.display())),
        "{e}"
    );
    let toml = dir.join("good.toml");
    std::fs::write(&toml, "[[lanes]]\nname = \"gray\"\n").unwrap();
    assert_eq!(LaneSpec::from_path(&toml).unwrap().lanes.len(), 1);
    let missing = LaneSpec::from_path(dir.join("missing.yaml")).unwrap_err();
    assert!(missing.to_string().contains("cannot read"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn token_key_from_env_when_present() {
    // The inline key is the fallback; a missing env var with no inline key is an error that
    // says what to export.
    let spec = LaneSpec::from_yaml_str(
        "lanes: [{name: gray}]\ntrust:\n  token: { key_env: GRAYLANE_TEST_UNSET_KEY_VAR }\n",
    )
    .unwrap();
    let e = spec.edge().unwrap_err();
    assert!(
        e.to_string().contains("export GRAYLANE_TEST_UNSET_KEY_VAR"),
        "{e}"
    );
}

#[test]
fn a_key_rotation_locks_no_tester_out_and_ends() {
    use graylane_core::trust::TokenKey;
    use std::time::{Duration, SystemTime};
    let old = "the key being rotated out";
    let spec = |until: &str| {
        LaneSpec::from_yaml_str(&format!(
            "lanes: [{{name: gray}}]\ntrust:\n  token:\n    key_env: GRAYLANE_TEST_UNSET_KEY_VAR\n    key: the current key, 16+ bytes\n    previous:\n      - {{key: {old}, until: '{until}'}}\n"
        ))
        .unwrap()
    };
    let gray = graylane_core::Lane::new("gray").unwrap();
    let lanes = graylane_core::LaneSet::new([gray]);
    let now = SystemTime::now();
    let theirs = TokenKey::new(old.as_bytes())
        .unwrap()
        .mint(gray, now + Duration::from_secs(600));
    // Before the old key's end, its tokens verify; minting uses the current key only.
    let key = spec("2999-01-01T00:00:00Z")
        .trust
        .token
        .unwrap()
        .load_key()
        .unwrap();
    assert_eq!(key.verify(theirs.as_bytes(), &lanes, now), Ok(gray));
    let fresh = key.mint(gray, now + Duration::from_secs(600));
    let current = TokenKey::new(b"the current key, 16+ bytes").unwrap();
    assert_eq!(current.verify(fresh.as_bytes(), &lanes, now), Ok(gray));
    // After it, not (and the key is not even loaded).
    let ended = spec("2000-01-01T00:00:00Z")
        .trust
        .token
        .unwrap()
        .load_key()
        .unwrap();
    assert_eq!(
        ended.verify(theirs.as_bytes(), &lanes, now),
        Err(graylane_core::Rejection::TokenForged)
    );
}

#[test]
fn compiled_pieces_share_counters_and_rules() {
    let spec = LaneSpec::from_yaml_str(GOOD).unwrap();
    let compiled = spec.compile().unwrap();
    let gray = Lane::new("gray").unwrap();

    // A clone handed to a layer counts into the same set as the edge.
    let layer = compiled.propagator().clone();
    layer.extract(&SimpleRequest::new("/").header("x-gray-lane", "nope"));
    let mut forged = SimpleRequest::new("/").header("x-gray-lane", "gray");
    compiled.edge().admit(&mut forged);
    assert_eq!(compiled.stats().get(Rejection::Unknown), 1);
    assert_eq!(compiled.stats().get(Rejection::Untrusted), 1);
    assert_eq!(compiled.edge().stats(), layer.stats());

    // Rules stored through the compiled handle are the edge's.
    let everyone = LaneSpec::from_yaml_str(
        "lanes: [{name: gray}]\ncoloring:\n  rules: [{lane: gray, match: {random: 100}}]\n",
    )
    .unwrap();
    compiled.rules().store(everyone.rule_set().unwrap());
    let mut anyone = SimpleRequest::new("/");
    assert_eq!(compiled.edge().admit(&mut anyone).context().lane(), gray);

    // The single-piece factories build pieces with counters of their own.
    let apart = spec.propagator();
    apart.extract(&SimpleRequest::new("/").header("x-gray-lane", "nope"));
    assert_eq!(compiled.stats().get(Rejection::Unknown), 1);
}

#[test]
fn compile_reports_what_a_spec_built_in_code_gets_wrong() {
    let mut spec = LaneSpec::default();
    spec.wire.header = "X-Lane".into();
    let e = spec.compile().unwrap_err();
    assert_eq!(e.path, "wire");
    assert!(e.message.contains("lowercase"), "{e}");

    let e = LaneSpec::from_yaml_str(
        "lanes: [{name: gray}]\ntrust:\n  token: { key_env: GRAYLANE_TEST_UNSET_KEY_VAR }\n",
    )
    .unwrap()
    .compile()
    .unwrap_err();
    assert_eq!(e.path, "trust.token");
}

fn load(toml: bool, src: &str) -> Result<LaneSpec, SpecError> {
    if toml {
        LaneSpec::from_toml_str(src)
    } else {
        LaneSpec::from_yaml_str(src)
    }
}

/// Generous for a debug build on a slow machine: left to the parser, the first refusal below
/// takes 30-40 s.
const FAST: std::time::Duration = std::time::Duration::from_secs(2);

#[test]
fn a_deep_spec_is_refused_fast() {
    use graylane_core::spec::MAX_SPEC_DEPTH;
    let n = 100_000;
    let cases = [
        (
            "flow sequences",
            false,
            format!("lanes: {}{}", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "block sequences",
            false,
            format!("lanes:\n{}x\n", "- ".repeat(n)),
        ),
        (
            "flow mappings",
            false,
            format!("mesh: {}1{}", "{a: ".repeat(n), "}".repeat(n)),
        ),
        (
            "arrays",
            true,
            format!("lanes = {}{}", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "inline tables",
            true,
            format!("mesh = {}1{}", "{a = ".repeat(n), "}".repeat(n)),
        ),
        (
            "a dotted table header",
            true,
            format!("[{}a]\n", "a.".repeat(n)),
        ),
        ("a dotted key", true, format!("{}a = 1\n", "a.".repeat(n))),
    ];
    for (what, toml, src) in &cases {
        let started = std::time::Instant::now();
        let e = load(*toml, src).unwrap_err();
        let took = started.elapsed();
        // Refused by the depth bound, before the parser saw it: the error names the bound.
        assert!(
            e.message.contains("MAX_SPEC_DEPTH") && e.message.contains(&MAX_SPEC_DEPTH.to_string()),
            "{what}: {e}"
        );
        assert!(e.line.is_some(), "{what}: {e}");
        assert!(took < FAST, "{what}: refused in {took:?}");
    }
}

#[test]
fn nesting_within_the_bound_loads() {
    // Conditions nested 24 deep (about 50 levels), in both formats and both YAML styles.
    let k = 24;
    let flow = format!(
        "lanes: [{{name: gray}}]\ncoloring: {{rules: [{{lane: gray, match: {}{{path_prefix: /}}{}}}]}}\n",
        "{all: [".repeat(k),
        "]}".repeat(k)
    );
    let mut block = String::from(
        "lanes:\n  - name: gray\ncoloring:\n  rules:\n    - lane: gray\n      match:\n",
    );
    for level in 0..k {
        let indent = 8 + 4 * level;
        block.push_str(&format!(
            "{}all:\n{}- path_prefix: /\n",
            " ".repeat(indent),
            " ".repeat(indent + 2)
        ));
    }
    let toml = format!(
        "[[lanes]]\nname = \"gray\"\n[[coloring.rules]]\nlane = \"gray\"\nmatch = {}{{ path_prefix = \"/\" }}{}\n",
        "{ all = [".repeat(k),
        "] }".repeat(k)
    );
    for (what, is_toml, src) in [
        ("flow", false, &flow),
        ("block", false, &block),
        ("toml", true, &toml),
    ] {
        let spec = load(is_toml, src).unwrap_or_else(|e| panic!("{what}: {e}\n{src}"));
        assert_eq!(spec.coloring.rules.len(), 1, "{what}");
    }
}

#[test]
fn an_oversized_spec_is_refused_before_parsing() {
    use graylane_core::spec::MAX_SPEC_BYTES;
    let big = format!("lanes: []\n# {}\n", "x".repeat(MAX_SPEC_BYTES));
    for toml in [false, true] {
        let e = load(toml, &big).unwrap_err();
        assert!(e.message.contains("MAX_SPEC_BYTES"), "{e}");
    }
    let dir = std::env::temp_dir().join(format!("graylane-spec-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.yaml");
    std::fs::write(&path, &big).unwrap();
    let e = LaneSpec::from_path(&path).unwrap_err();
    assert!(e.message.contains("MAX_SPEC_BYTES"), "{e}");
    assert_eq!(e.file.as_deref(), Some(path.as_path()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A spec with `lanes` lanes over `services` services, every lane in one service, and every
/// service routing a canary and content routes to lanes it has a version in, and a mirror to
/// a mirror lane of its own.
fn wide_spec(lanes: usize, services: usize) -> String {
    let mut src = String::from("services:\n");
    for s in 0..services {
        let lane = s;
        src.push_str(&format!(
            "  - name: s{s}\n    routing:\n      canary: {{ lane: l{lane}, weight: 5 }}\n      content: [{{ lane: l{lane}, match: {{ header: {{ name: x-l, exact: a }} }} }}]\n      mirror: {{ lane: m{lane}, percent: 1 }}\n"
        ));
    }
    src.push_str("lanes:\n");
    for l in 0..lanes {
        src.push_str(&format!(
            "  - {{ name: l{l}, services: [s{}] }}\n",
            l % services
        ));
    }
    // Each service's mirror lane.
    for s in 0..services {
        src.push_str(&format!(
            "  - {{ name: m{s}, services: [s{s}], mirror: true }}\n"
        ));
    }
    src
}

/// Ten times what the linear passes take here (under 1 s each, debug), and a twentieth of what
/// a quadratic pass takes.
const LINEAR: std::time::Duration = std::time::Duration::from_secs(10);

#[test]
fn a_wide_spec_validates_in_linear_time() {
    // A pass that looks each lane or service up by scanning the lists, for every lane and
    // route, takes 34 s (debug) over 20,000 lanes and 1,000 routed services. Linear, 50,000
    // lanes take under a second, where a quadratic pass would take minutes.
    let src = wide_spec(1_000, 1_000);
    let mut spec = LaneSpec::from_yaml_str(&src).unwrap();
    spec.lanes
        .extend((1_000..50_000).map(|l| graylane_core::spec::LaneDef {
            name: Lane::new(&format!("l{l}")).unwrap(),
            description: None,
            version: None,
            services: vec![format!("s{}", l % 1_000)],
            data: None,
            mirror: false,
        }));
    let started = std::time::Instant::now();
    spec.validate().unwrap();
    let took = started.elapsed();
    assert!(took < LINEAR, "validated in {took:?}");

    // And through the loader, within its size bound.
    let src = wide_spec(20_000, 1_000);
    assert!(
        src.len() < graylane_core::spec::MAX_SPEC_BYTES,
        "{}",
        src.len()
    );
    let started = std::time::Instant::now();
    // 20,000 lanes, and each service's mirror lane.
    assert_eq!(LaneSpec::from_yaml_str(&src).unwrap().lanes.len(), 21_000);
    let took = started.elapsed();
    assert!(took < LINEAR, "loaded in {took:?}");
}

#[test]
fn istio_mirroring_goes_to_a_mirror_lane_and_a_mirror_lane_takes_nothing_else() {
    let spec = |lanes: &str, routing: &str, rules: &str| {
        graylane_core::spec::LaneSpec::from_yaml_str(&format!(
            "services: [{{ name: orders, routing: {routing} }}]\nlanes: {lanes}\ncoloring: {{ rules: {rules} }}\n"
        ))
    };
    let shadow = "[{ name: shadow, services: [orders], mirror: true }]";
    let plain = "[{ name: shadow, services: [orders] }]";
    let mirror = "{ mirror: { lane: shadow, percent: 5 } }";
    spec(shadow, mirror, "[]").unwrap();
    let e = spec(plain, mirror, "[]").unwrap_err();
    assert_eq!(e.path, "services[0].routing.mirror.lane", "{e}");
    assert!(
        e.to_string().contains("add `mirror: true` to lane shadow"),
        "{e}"
    );
    for (routing, rules, path) in [
        (
            "{ canary: { lane: shadow, weight: 5 } }",
            "[]",
            "services[0].routing.canary.lane",
        ),
        (
            "{}",
            "[{ lane: shadow, match: { header: { name: x-a, exact: b } } }]",
            "coloring.rules[0].lane",
        ),
        (
            "{ blue_green: { active: shadow } }",
            "[]",
            "services[0].routing.blue_green.active",
        ),
    ] {
        let e = spec(shadow, routing, rules).unwrap_err();
        assert_eq!(e.path, path, "{e}");
        assert!(e.to_string().contains("is a mirror lane"), "{e}");
    }
}
