use super::*;

const YAML: &str = "\
# The shop's lanes.
lanes:
  - name: gray   # the v2 line
coloring:
  rules:
    - name: beta
      lane: gray
      match: { header: { name: x-user-group, exact: beta } }
    - { name: some-users, lane: gray, match: { sticky: { percent: 5, by: { header: x-user-id } } } }
";

/// The lines that differ between `a` and `b` (same line count).
fn changed(a: &str, b: &str) -> Vec<(String, String)> {
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_owned(), y.to_owned()))
        .collect()
}

#[test]
fn a_scalar_changes_where_it_stands_and_nothing_else_does() {
    let mut text = SpecText::yaml(YAML.into()).unwrap();
    text.set("coloring.rules[1].match.sticky.percent", "25")
        .unwrap();
    assert_eq!(
        changed(YAML, text.text()),
        [(
            "    - { name: some-users, lane: gray, match: { sticky: { percent: 5, by: { header: x-user-id } } } }".into(),
            "    - { name: some-users, lane: gray, match: { sticky: { percent: 25, by: { header: x-user-id } } } }".into()
        )]
    );
    let p = text.spec().unwrap().coloring.rules[1]
        .condition
        .sticky
        .clone()
        .unwrap()
        .percent;
    assert_eq!(p, crate::Percent::new(25.0).unwrap());
}

#[test]
fn a_new_key_follows_its_sibling_in_block_and_flow_style() {
    let mut text = SpecText::yaml(YAML.into()).unwrap();
    text.set_beside("coloring.rules[0].lane", "enabled", "false")
        .unwrap();
    text.set_beside("coloring.rules[1].lane", "enabled", "false")
        .unwrap();
    assert!(
        text.text()
            .contains("      lane: gray\n      enabled: false\n      match:"),
        "{}",
        text.text()
    );
    assert!(
        text.text().contains("lane: gray, enabled: false, match:"),
        "{}",
        text.text()
    );
    assert!(
        text.spec()
            .unwrap()
            .coloring
            .rules
            .iter()
            .all(|r| !r.enabled)
    );
    // There now: set in place.
    text.set_beside("coloring.rules[0].lane", "enabled", "true")
        .unwrap();
    assert!(text.text().contains("      enabled: true\n"));
    assert!(text.text().starts_with("# The shop's lanes.\n"));
}

#[test]
fn quoted_scalars_and_comments_are_respected() {
    let src = "lanes:\n  - name: gray\n    description: \"v2, \\\" # x\"  # quoted\n";
    let mut text = SpecText::yaml(src.into()).unwrap();
    text.set("lanes[0].description", "'it''s v3'").unwrap();
    assert_eq!(
        text.text(),
        "lanes:\n  - name: gray\n    description: 'it''s v3'  # quoted\n"
    );
    text.set("lanes[0].description", "plain").unwrap();
    assert_eq!(
        text.text(),
        "lanes:\n  - name: gray\n    description: plain  # quoted\n"
    );
}

#[test]
fn a_plain_scalar_in_block_style_ends_at_its_line_or_comment_not_at_a_comma() {
    let src =
        "lanes:\n  - name: gray\n    description: it's v2, fast\t# tab comment\n    services: []\n";
    let mut text = SpecText::yaml(src.into()).unwrap();
    text.set("lanes[0].description", "slow").unwrap();
    assert_eq!(
        text.text(),
        "lanes:\n  - name: gray\n    description: slow\t# tab comment\n    services: []\n"
    );
}

#[test]
fn toml_tables_and_inline_tables() {
    let src = "\
[[lanes]]
name = \"gray\"

[[coloring.rules]]
name = \"some-users\"
lane = \"gray\"
match = { sticky = { percent = 5, by = { header = \"x-user-id\" } } }
";
    let mut text = SpecText::toml(src.into()).unwrap();
    text.set("coloring.rules[0].match.sticky.percent", "50")
        .unwrap();
    text.set_beside("coloring.rules[0].lane", "enabled", "false")
        .unwrap();
    assert!(text.text().contains("percent = 50,"), "{}", text.text());
    assert!(
        text.text().contains("lane = \"gray\"\nenabled = false\n"),
        "{}",
        text.text()
    );
    assert!(!text.spec().unwrap().coloring.rules[0].enabled);
}

#[test]
fn an_edit_that_does_not_load_or_leads_nowhere_is_refused() {
    let mut text = SpecText::yaml(YAML.into()).unwrap();
    for (path, value) in [
        ("coloring.rules[1].match.sticky.percent", "101"),
        ("coloring.rules[0].lane", "nope"),
        ("coloring.rules[7].lane", "gray"),
    ] {
        assert!(text.set(path, value).is_err(), "{path} = {value}");
    }
    assert_eq!(text.text(), YAML);
}

#[test]
fn write_replaces_the_file_through_a_symlink() {
    let dir = std::env::temp_dir().join(format!("graylane-spec-edit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let real = dir.join("real.yaml");
    std::fs::write(&real, YAML).unwrap();
    let link = dir.join("graylane.yaml");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&real, &link).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(&real, &link).unwrap();
    let mut text = SpecText::read(&link).unwrap();
    text.set("coloring.rules[1].match.sticky.percent", "25")
        .unwrap();
    text.write().unwrap();
    let back = std::fs::read_to_string(&real).unwrap();
    assert!(back.contains("percent: 25,"));
    #[cfg(unix)]
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let _ = std::fs::remove_dir_all(dir);
}

const ROUTED: &str = "\
services:
  - name: orders
    routing:
      canary: { lane: gray, weight: 10 }
      mirror:
        lane: shadow
        percent: 5
  - name: cart
    routing:
      content:
        - { lane: gray, match: { header: { name: x-debug, exact: 'on' } } }
lanes:
  - name: gray
    version: v2
    services: [orders, cart]   # the gray line
  - { name: shadow, services: [orders], mirror: true }
coloring:
  rules:
    # Testers first.
    - name: beta
      lane: gray
      match: { header: { name: x-user-group, exact: beta } }

    - { name: some-users, lane: gray, match: { sticky: { percent: 5, by: { header: x-user-id } } } }
releases:
  - { lane: gray, rule: some-users, steps: [5, 50] }
";

#[test]
fn a_block_item_goes_with_its_comment_and_a_flow_element_with_its_comma() {
    let mut text = SpecText::yaml(ROUTED.into()).unwrap();
    text.remove("coloring.rules[0]").unwrap();
    assert!(
        text.text().contains(
            "coloring:\n  rules:\n\n    - { name: some-users, lane: gray, match: { sticky:"
        ),
        "{}",
        text.text()
    );
    text.remove("lanes[0].services[1]").unwrap_err(); // cart's content route needs it
    text.together(|t| {
        t.remove("services[1].routing.content[0]")?;
        t.remove("lanes[0].services[1]")
    })
    .unwrap();
    assert!(
        text.text()
            .contains("    routing:\n      content: []\nlanes:\n"),
        "{}",
        text.text()
    );
    assert!(
        text.text()
            .contains("    services: [orders]   # the gray line\n"),
        "{}",
        text.text()
    );
    text.remove("services[0].routing.mirror").unwrap();
    assert!(
        text.text()
            .contains("      canary: { lane: gray, weight: 10 }\n  - name: cart\n"),
        "{}",
        text.text()
    );
    text.remove("services[0].routing.canary").unwrap();
    assert!(
        text.text()
            .starts_with("services:\n  - name: orders\n    routing: {}\n  - name: cart\n"),
        "{}",
        text.text()
    );
    let spec = text.spec().unwrap();
    assert!(spec.services[0].routing.canary.is_none());
    assert_eq!(spec.coloring.rules.len(), 1);
}

#[test]
fn edits_together_may_pass_through_an_invalid_spec_but_not_end_in_one() {
    let mut text = SpecText::yaml(ROUTED.into()).unwrap();
    // The release names the rule: alone, the removal is refused.
    assert!(text.remove("coloring.rules[1]").is_err());
    let failed = text.together(|t| {
        t.remove("releases[0]")?;
        t.remove("lanes[0]")
    });
    assert!(
        failed.is_err(),
        "the routes and rules name the lane removed"
    );
    assert_eq!(text.text(), ROUTED);
    text.together(|t| {
        t.remove("coloring.rules[1]")?;
        t.remove("releases[0]")
    })
    .unwrap();
    assert!(
        text.text().ends_with("exact: beta } }\n\nreleases: []\n"),
        "{}",
        text.text()
    );
    // The first key of a block item and a TOML spec are refused, clearly.
    let err = text.remove("services[0].name").unwrap_err();
    assert!(err.to_string().contains("by hand"), "{err}");
    let mut toml = SpecText::toml("[[lanes]]\nname = \"gray\"\n".into()).unwrap();
    assert!(
        toml.remove("lanes[0]")
            .unwrap_err()
            .to_string()
            .contains("YAML")
    );
}

#[test]
fn an_indentless_sequence_goes_with_its_key_and_a_quoted_key_is_found() {
    let src = "\
services:
- name: orders
  \"routing\": { canary: { lane: gray, weight: 5 } }
- name: cart
lanes:
- name: gray
  services:
  - orders
  description: v2
";
    let mut text = SpecText::yaml(src.into()).unwrap();
    text.together(|t| {
        t.remove("services[0].routing")?;
        t.remove("lanes[0].services")
    })
    .unwrap();
    assert_eq!(
        text.text(),
        "services:\n- name: orders\n- name: cart\nlanes:\n- name: gray\n  description: v2\n"
    );
}
