//! The `graylane` binary, run as users run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use graylane_testkit::services::{mysql_url, postgres_url, redis_url, unique};

// `graylane audit` against the real stores.
mod audit;
mod finish;
// `graylane release` on spec files and a real service's metrics.
mod release;
// `graylane view` serving its page.
mod view;

fn graylane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graylane"))
        .args(args)
        .current_dir(workspace())
        .env_remove("GRAYLANE_TOKEN_KEY")
        .output()
        .expect("the binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SPEC: &str = "examples/mesh/graylane.yaml";
const MANIFESTS: &str = "examples/mesh/manifests";

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn committed_example_manifests_match_the_spec() {
    // The CI drift check: regenerate and compare byte for byte, for every committed example.
    for (spec, manifests, summary) in [
        (
            SPEC,
            MANIFESTS,
            "ok (3 lanes, 4 services, 21 manifest documents)",
        ),
        (
            "examples/shop/graylane.yaml",
            "examples/shop/manifests",
            "ok (2 lanes, 4 services, 18 manifest documents)",
        ),
    ] {
        let (code, stdout, stderr) = text(&graylane(&[
            "manifests",
            "--spec",
            spec,
            "--out",
            manifests,
            "--check",
        ]));
        assert_eq!(code, 0, "{spec}: {stdout}{stderr}");
        let (code, stdout, stderr) = text(&graylane(&[
            "check",
            "--spec",
            spec,
            "--manifests",
            manifests,
        ]));
        assert_eq!(code, 0, "{spec}: {stdout}{stderr}");
        assert!(stdout.contains(summary), "{spec}: {stdout}");
    }
}

#[test]
fn drift_and_broken_manifests_fail_with_exit_1() {
    let dir = TempDir::new("drift");
    let (code, _, stderr) = text(&graylane(&[
        "manifests",
        "--spec",
        SPEC,
        "--out",
        dir.path(),
    ]));
    assert_eq!(code, 0, "{stderr}");
    let orders = dir.0.join("orders.yaml");
    let yaml = std::fs::read_to_string(&orders).unwrap();
    std::fs::write(&orders, yaml.replace("weight: 90", "weight: 80")).unwrap();
    std::fs::write(dir.0.join("stray.yaml"), "---\n").unwrap();

    let (code, _, stderr) = text(&graylane(&[
        "manifests",
        "--spec",
        SPEC,
        "--out",
        dir.path(),
        "--check",
    ]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("orders.yaml: differs from the generated manifests"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stray.yaml: not generated from the spec"),
        "{stderr}"
    );

    let (code, stdout, _) = text(&graylane(&[
        "check",
        "--spec",
        SPEC,
        "--manifests",
        dir.path(),
        "--json",
    ]));
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let problems: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(problems.iter().any(|p| p.contains("VirtualService/orders: route default: weights sum to 90, not 100")), "{problems:#?}");
}

#[test]
fn route_explains_the_path_of_a_request() {
    let (code, stdout, stderr) = text(&graylane(&[
        "route",
        "--spec",
        SPEC,
        "-H",
        "x-user-group: beta",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("lane: gray (decided by coloring rule \"beta-testers\")"),
        "{stdout}"
    );
    assert!(
        stdout.contains("orders         route lane-gray          -> gray (v2) 100%"),
        "{stdout}"
    );
    assert!(
        stdout.contains("inventory      route fallback-gray      -> base (v1) 100%"),
        "{stdout}"
    );

    // A forged header is stripped at the edge.
    let (_, stdout, _) = text(&graylane(&[
        "route",
        "--spec",
        SPEC,
        "-H",
        "x-gray-lane: gray",
        "--service",
        "orders",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["lane"], "base");
    assert_eq!(report["hops"][0]["route"], "default");
    assert_eq!(report["hops"][0]["destinations"][1]["weight"], 10.0);
    assert_eq!(report["hops"][0]["mirror"][1], 5.0);

    let (code, _, stderr) = text(&graylane(&["route", "--spec", SPEC, "-H", "no-colon"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("must look like name:value"), "{stderr}");
}

#[test]
fn route_refuses_a_mirror_to_a_lane_that_is_not_pinned() {
    // As generated, orders mirrors to `shadow`, a mirror lane: pinned pods, exit 0.
    let orders = ["route", "--spec", SPEC, "--service", "orders"];
    let (code, stdout, stderr) = text(&graylane(&orders));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("; mirror 5% to shadow (v2-shadow)"),
        "{stdout}"
    );
    // Hand-edited to mirror to `gray`: its pods take Envoy's copies as base traffic.
    let dir = TempDir::new("unpinned");
    let (code, _, stderr) = text(&graylane(&[
        "manifests",
        "--spec",
        SPEC,
        "--out",
        dir.path(),
    ]));
    assert_eq!(code, 0, "{stderr}");
    let file = dir.0.join("orders.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    let edited = yaml.replace(
        "    mirror:\n      host: orders\n      subset: shadow",
        "    mirror:\n      host: orders\n      subset: gray",
    );
    assert_ne!(edited, yaml);
    std::fs::write(&file, edited).unwrap();
    let with = [&orders[..], &["--manifests", dir.path(), "--json"]].concat();
    let (code, stdout, stderr) = text(&graylane(&with));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let found = report["unsafe_mirrors"][0].as_str().unwrap();
    assert!(
        found.starts_with(
            "orders: route default mirrors 5% to subset gray, which is no mirror lane"
        ),
        "{found}"
    );
    assert!(stderr.contains("writing production data"), "{stderr}");
}

#[test]
fn tokens_minted_by_the_cli_are_accepted_by_the_edge() {
    let (code, token, stderr) = text(&graylane(&[
        "token", "--spec", SPEC, "--lane", "gray", "--ttl", "10m",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let header = format!("x-gray-lane-token: {}", token.trim());
    let (_, stdout, _) = text(&graylane(&[
        "route",
        "--spec",
        SPEC,
        "-H",
        &header,
        "--service",
        "orders",
    ]));
    assert!(
        stdout.starts_with("lane: gray (decided by a signed lane token)"),
        "{stdout}"
    );

    let (code, _, stderr) = text(&graylane(&[
        "token", "--spec", SPEC, "--lane", "gray", "--ttl", "30d",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("exceeds trust.token.max_ttl_secs"),
        "{stderr}"
    );
    let (code, _, stderr) = text(&graylane(&["token", "--spec", SPEC, "--lane", "purple"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("lane purple is not in"), "{stderr}");
}

#[test]
fn spec_errors_name_file_line_and_field() {
    let dir = TempDir::new("bad");
    let spec = dir.0.join("graylane.yaml");
    std::fs::write(
        &spec,
        "services: [{name: a}]\nlanes:\n  - name: gray\n    services: [a, ghost]\n",
    )
    .unwrap();
    let (code, _, stderr) = text(&graylane(&["check", "--spec", spec.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!(
            "{}:4:19: lanes[0].services[1]: unknown service \"ghost\"",
            spec.display()
        )),
        "{stderr}"
    );
}

#[test]
fn help_lists_the_commands() {
    let (code, stdout, _) = text(&graylane(&["--help"]));
    assert_eq!(code, 0);
    for command in ["manifests", "route", "token", "check"] {
        assert!(stdout.contains(command), "{stdout}");
    }
    let (code, _, _) = text(&graylane(&["frobnicate"]));
    assert_eq!(code, 2);
}

#[test]
fn shadow_provision_status_drop_on_postgres_and_mariadb() {
    let dir = TempDir::new("shadow");
    let prefix = unique("cli");
    let spec = dir.0.join("graylane.yaml");
    std::fs::write(
        &spec,
        format!("lanes: [{{name: gray}}]\ndata: {{pg_schema: \"{prefix}_{{lane}}\"}}\n"),
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let cases = [
        (postgres_url(), "crates/graylane-sqlx/tests/migrations"),
        (mysql_url(), "crates/graylane-sqlx/tests/migrations-mysql"),
    ];
    for (url, migrations) in cases {
        let url = url.as_str();
        let run = |args: &[&str]| {
            let mut all = vec!["shadow"];
            all.extend_from_slice(&args[..1]);
            all.extend_from_slice(&["--spec", spec, "--database-url", url]);
            all.extend_from_slice(&args[1..]);
            text(&graylane(&all))
        };
        let (code, stdout, stderr) =
            run(&["provision", "--lane", "gray", "--migrations", migrations]);
        assert_eq!(code, 0, "{url}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "lane gray: {prefix}_gray provisioned (2 migrations known)"
            )),
            "{stdout}"
        );
        let (code, stdout, _) = run(&["status", "--json"]);
        assert_eq!(code, 0);
        let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(rows[0]["exists"], true, "{url}");
        assert_eq!(rows[0]["created_by_graylane"], true);
        assert_eq!(rows[0]["migrations"], 2);
        let (code, _, stderr) = run(&["drop", "--lane", "base"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("refusing to touch base"), "{stderr}");
        let (code, stdout, _) = run(&["drop", "--lane", "gray"]);
        assert_eq!((code, stdout.trim()), (0, "lane gray: dropped"), "{url}");
        let (_, stdout, _) = run(&["status"]);
        assert!(stdout.contains("absent"), "{stdout}");
    }
    let (code, _, stderr) = text(&graylane(&[
        "shadow",
        "status",
        "--spec",
        spec,
        "--database-url",
        "redis://x",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("must start with postgres:// or mysql://"),
        "{stderr}"
    );
}
