use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::Lane;
use crate::coloring::SimpleRequest;
use crate::stats::Rejection;

fn lane(s: &str) -> Lane {
    Lane::new(s).unwrap()
}

/// Two lanes, the beta group colored into `to`.
fn spec_to(to: &str) -> LaneSpec {
    LaneSpec::from_yaml_str(&format!(
        "services: [{{name: orders}}]\n\
         lanes: [{{name: gray, services: [orders]}}, {{name: blue}}]\n\
         coloring: {{rules: [{{lane: {to}, match: {{header: {{name: x-user-group, exact: beta}}}}}}]}}"
    ))
    .unwrap()
}

fn beta() -> SimpleRequest {
    SimpleRequest::new("/").header("x-user-group", "beta")
}

#[test]
fn a_change_applies_as_the_next_revision_and_contexts_carry_it() {
    let live = LiveSpec::new(spec_to("gray")).unwrap();
    let first = live.current();
    assert_eq!(first.number(), 1);
    assert_eq!(live.apply(spec_to("blue")).unwrap(), 2);
    // The same spec again is no change.
    assert_eq!(live.apply(spec_to("blue")).unwrap(), 2);
    let ctx = live.current().edge().admit(&mut beta()).context();
    assert_eq!((ctx.lane(), ctx.revision()), (lane("blue"), 2));
    // A request that started on revision 1 finishes on it.
    let ctx = first.edge().admit(&mut beta()).context();
    assert_eq!((ctx.lane(), ctx.revision()), (lane("gray"), 1));
    // What the shared propagator reads carries the revision in force.
    let wire = SimpleRequest::new("/").header("x-gray-lane", "gray");
    assert_eq!(live.propagator().extract(&wire).revision(), 2);
    assert_eq!(
        live.stats(),
        ReloadStats {
            revision: 2,
            applied: 1,
            invalid: 0,
            refused: 0
        }
    );
}

#[test]
fn a_removed_lane_is_unknown_on_the_wire_from_its_revision_on() {
    let live = LiveSpec::new(spec_to("gray")).unwrap();
    let clone = live.propagator().clone();
    let blue = SimpleRequest::new("/").header("x-gray-lane", "blue");
    assert_eq!(clone.extract(&blue).lane(), lane("blue"));
    let admitted = live.current().edge().admit(&mut beta()).context();

    let without_blue = LaneSpec::from_yaml_str(
        "services: [{name: orders}]\nlanes: [{name: gray, services: [orders]}]\n\
         coloring: {rules: [{lane: gray, match: {header: {name: x-user-group, exact: beta}}}]}",
    )
    .unwrap();
    assert_eq!(live.apply(without_blue).unwrap(), 2);
    let read = clone.extract(&blue);
    assert!(read.lane().is_base(), "{read:?}");
    assert_eq!(clone.stats().get(Rejection::Unknown), 1);
    assert!(!clone.lanes().contains(lane("blue")));
    // A request already on a lane still travels on it.
    let mut next_hop = SimpleRequest::new("/");
    clone.inject(&admitted, &mut next_hop);
    assert_eq!(clone.extract(&next_hop).lane(), lane("gray"));
    // A lane the process started with may come back: its names are still known.
    assert_eq!(live.apply(spec_to("gray")).unwrap(), 3);
    assert_eq!(clone.extract(&blue).lane(), lane("blue"));
    // Read under revision 3, lane or not.
    assert_eq!(clone.extract(&SimpleRequest::new("/")).revision(), 3);
}

#[test]
fn a_change_that_needs_a_restart_is_refused_and_says_so() {
    let live = LiveSpec::new(spec_to("gray")).unwrap();
    let cases = [
        (
            "lanes: [{name: gray, services: [orders]}, {name: blue}, {name: green}]",
            "adds lane \"green\"",
        ),
        (
            "lanes: [{name: gray}, {name: blue}]",
            "changes the services of lane \"gray\"",
        ),
        (
            "lanes: [{name: gray, services: [orders], version: v9}, {name: blue}]",
            "version, data or mirror flag of lane \"gray\"",
        ),
        (
            "lanes: [{name: gray, services: [orders], mirror: true}, {name: blue}]",
            "mirror flag of lane \"gray\"",
        ),
        (
            "wire: {header: x-lane}\nlanes: [{name: gray, services: [orders]}, {name: blue}]",
            "wire names",
        ),
        (
            "data: {redis_prefix: 'l:{lane}:'}\nlanes: [{name: gray, services: [orders]}, {name: blue}]",
            "data naming",
        ),
    ];
    for (lanes, says) in cases {
        let spec =
            LaneSpec::from_yaml_str(&format!("services: [{{name: orders}}]\n{lanes}")).unwrap();
        let e = live.apply(spec).unwrap_err();
        assert!(matches!(e, ReloadError::NeedsRestart(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(says) && text.contains("needs a restart"),
            "{text}"
        );
    }
    // A service added, a port moved, and a promotion (the lane's version now base's).
    for (services, lanes) in [
        (
            "[{name: orders}, {name: payments}]",
            "[{name: gray, services: [orders]}, {name: blue}]",
        ),
        (
            "[{name: orders, port: 9090}]",
            "[{name: gray, services: [orders]}, {name: blue}]",
        ),
        (
            "[{name: orders, version: gray}]",
            "[{name: gray}, {name: blue}]",
        ),
    ] {
        let spec =
            LaneSpec::from_yaml_str(&format!("services: {services}\nlanes: {lanes}")).unwrap();
        assert!(matches!(
            live.apply(spec),
            Err(ReloadError::NeedsRestart(_))
        ));
    }
    assert_eq!(live.stats().refused, 9);
    // The same lane spelt otherwise is no change of structure: its version written out as
    // its name, the default.
    let respelt = LaneSpec::from_yaml_str(
        "services: [{name: orders}]\nlanes: [{name: gray, version: gray, services: [orders]}, {name: blue}]\n\
         coloring: {rules: [{lane: blue, match: {header: {name: x-user-group, exact: beta}}}]}",
    )
    .unwrap();
    assert_eq!(live.apply(respelt).unwrap(), 2);
}

#[test]
fn a_spec_that_does_not_build_keeps_the_old_one() {
    let live = LiveSpec::new(spec_to("gray")).unwrap();
    let mut bad = spec_to("gray");
    bad.trust.token =
        Some(serde_yaml_ng::from_str("{key_env: GRAYLANE_TEST_LIVE_NO_SUCH_VAR}").unwrap());
    let e = live.apply(bad).unwrap_err();
    assert!(matches!(e, ReloadError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("trust.token"), "{e}");
    assert_eq!((live.stats().invalid, live.current().number()), (1, 1));
}

#[test]
fn token_settings_follow_the_spec() {
    let with_key = |key: &str| {
        let mut spec = spec_to("gray");
        spec.trust.token = Some(serde_yaml_ng::from_str(&format!("{{key: '{key}'}}")).unwrap());
        spec
    };
    let live = LiveSpec::new(with_key("first key, sixteen bytes")).unwrap();
    let old = crate::trust::TokenKey::new(b"first key, sixteen bytes").unwrap();
    let token = old.mint(
        lane("blue"),
        std::time::SystemTime::now() + Duration::from_secs(60),
    );
    let admit = |live: &LiveSpec| {
        let mut req = SimpleRequest::new("/").header("x-gray-lane-token", &token);
        live.current().edge().admit(&mut req).context().lane()
    };
    assert_eq!(admit(&live), lane("blue"));
    live.apply(with_key("second key, sixteen bytes")).unwrap();
    assert!(admit(&live).is_base(), "the old key is gone");
}

#[test]
fn concurrent_requests_each_see_one_revision() {
    let live = LiveSpec::new(spec_to("gray")).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let ctx = live.current().edge().admit(&mut beta()).context();
                        // Odd revisions color gray, even ones blue.
                        let want = if ctx.revision() % 2 == 1 {
                            "gray"
                        } else {
                            "blue"
                        };
                        assert_eq!(ctx.lane(), lane(want), "{ctx:?}");
                        seen += 1;
                    }
                    seen
                })
            })
            .collect();
        for i in 0..100 {
            let to = if i % 2 == 0 { "blue" } else { "gray" };
            assert_eq!(live.apply(spec_to(to)).unwrap(), i + 2);
            std::thread::sleep(Duration::from_micros(200));
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    });
    assert_eq!(live.stats().applied, 100);
}

/// Waits until the spec in force has revision `n`.
fn until_revision(live: &LiveSpec, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while live.current().number() != n {
        assert!(
            Instant::now() < deadline,
            "revision {n} not in force: {:?}",
            live.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn yaml_to(to: &str) -> String {
    format!(
        "services: [{{name: orders}}]\n\
         lanes: [{{name: gray, services: [orders]}}, {{name: blue}}]\n\
         coloring: {{rules: [{{lane: {to}, match: {{header: {{name: x-user-group, exact: beta}}}}}}]}}\n"
    )
}

fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "graylane-live-{what}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_watcher_follows_plain_edits_and_keeps_the_spec_on_a_bad_one() {
    let dir = temp_dir("plain");
    let path = dir.join("lanes.yaml");
    std::fs::write(&path, yaml_to("gray")).unwrap();
    let live = LiveSpec::from_path(&path).unwrap();
    let watcher = live.watch(&path, Duration::from_millis(20));
    std::fs::write(&path, yaml_to("blue")).unwrap();
    until_revision(&live, 2);

    // A broken edit: kept, counted once however many times the file is read.
    std::fs::write(&path, "lanes:\n  - name: gray\n    services: [nope]\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!((live.current().number(), live.stats().invalid), (2, 1));
    // A structural one: refused, counted once.
    std::fs::write(
        &path,
        yaml_to("blue").replace("{name: blue}", "{name: blue}, {name: green}"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!((live.current().number(), live.stats().refused), (2, 1));
    // Fixed: in force.
    std::fs::write(&path, yaml_to("gray")).unwrap();
    until_revision(&live, 3);
    watcher.stop();
    std::fs::write(&path, yaml_to("blue")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        live.current().number(),
        3,
        "a stopped watcher applies nothing"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A Kubernetes ConfigMap volume: `lanes.yaml -> ..data/lanes.yaml`, `..data -> ..<timestamp>`;
/// an update writes a new timestamped directory and renames a new `..data` link over the old.
#[cfg(unix)]
#[test]
fn the_watcher_follows_a_configmap_symlink_swap() {
    use std::os::unix::fs::symlink;

    fn publish(dir: &Path, n: u32, text: &str) {
        let version = dir.join(format!("..2026_12_01_{n}"));
        std::fs::create_dir(&version).unwrap();
        std::fs::write(version.join("lanes.yaml"), text).unwrap();
        let tmp = dir.join("..data_tmp");
        symlink(version.file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
    }
    let dir = temp_dir("configmap");
    publish(&dir, 1, &yaml_to("gray"));
    symlink("..data/lanes.yaml", dir.join("lanes.yaml")).unwrap();
    let path = dir.join("lanes.yaml");
    let live = LiveSpec::from_path(&path).unwrap();
    let _watcher = live.watch(&path, Duration::from_millis(20));
    publish(&dir, 2, &yaml_to("blue"));
    until_revision(&live, 2);
    let ctx = live.current().edge().admit(&mut beta()).context();
    assert_eq!(ctx.lane(), lane("blue"));
    let _ = std::fs::remove_dir_all(dir);
}
