//! `release promote`: the lane's versions become the services' base versions, and the lane's
//! routes, rules and release plan go — one edit of the spec, made together and validated as a
//! whole.
//!
//! The lane itself stays, with no versions: requests still carrying it are served by base
//! (which now runs what the lane ran), and its data names still say where its data is, for
//! `finish`. Gray data is test data: nothing of it is merged into base.

use std::path::Path;

use graylane_core::spec::{LaneSpec, SpecError, SpecText};

use super::{Release, describe};
use crate::args::ReleaseChangeArgs;
use crate::commands::print_json;
use crate::{Fail, bad_input, refused};

/// `release promote`.
pub(crate) fn promote(args: &ReleaseChangeArgs) -> Result<(), Fail> {
    let promoted = promote_file(
        &args.opts.spec,
        args.opts.lane.as_deref(),
        args.dry_run,
        args.manifests.as_deref(),
    )?;
    if args.opts.json {
        return print_json(&serde_json::json!({
            "lane": promoted.lane,
            "edits": promoted.edits,
            "services": promoted.services,
            "version": promoted.version,
            "dry_run": args.dry_run,
        }));
    }
    let verb = if args.dry_run { "would " } else { "" };
    for e in &promoted.edits {
        println!("{verb}{e}");
    }
    println!(
        "lane {} {}promoted: {} {} version {} as base; requests still carrying the lane go to base; its data stays (never merged into base) until `release finish`",
        promoted.lane,
        if args.dry_run { "would be " } else { "" },
        promoted.services.join(", "),
        if promoted.services.len() == 1 {
            "runs"
        } else {
            "run"
        },
        promoted.version
    );
    Ok(())
}

/// What a promotion changed.
pub(crate) struct Promoted {
    pub(crate) lane: String,
    pub(crate) version: String,
    pub(crate) services: Vec<String>,
    pub(crate) edits: Vec<String>,
}

/// Promotes the release in the spec file at `path`; writes it back unless `dry_run`, and the
/// manifests into `manifests` when given.
pub(crate) fn promote_file(
    path: &Path,
    lane: Option<&str>,
    dry_run: bool,
    manifests: Option<&Path>,
) -> Result<Promoted, Fail> {
    let mut text = SpecText::read(path).map_err(|e| bad_input(e.to_string()))?;
    let release = Release::of(text.spec().map_err(|e| bad_input(e.to_string()))?, lane)?;
    let state = release.state();
    if !state.exposed {
        return Err(refused(format!(
            "{}: only a release that is on is promoted (start it; a rolled-back one stays rolled back)",
            describe(&state)
        )));
    }
    let promoted = promote_text(&mut text, &release.spec, release.lane())
        .map_err(|e| bad_input(format!("cannot promote in the spec: {e}")))?;
    if !dry_run {
        text.write()
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        if let Some(out) = manifests {
            let spec = text.spec().map_err(|e| bad_input(e.to_string()))?;
            crate::commands::manifests::write_all(&spec, out)?;
        }
    }
    Ok(promoted)
}

/// The edits of a promotion of `lane`, made in `text` (which says `spec`).
pub(crate) fn promote_text(
    text: &mut SpecText,
    spec: &LaneSpec,
    lane: graylane_core::Lane,
) -> Result<Promoted, SpecError> {
    let def = spec
        .lanes
        .iter()
        .position(|l| l.name == lane)
        .expect("a release's lane is in its spec");
    let version = spec.lanes[def].version().to_owned();
    let services = spec.lanes[def].services.clone();
    let mut edits = Vec::new();
    text.together(|t| {
        for (i, s) in spec.services.iter().enumerate() {
            if services.contains(&s.name) {
                let path = format!("services[{i}].version");
                let value = yaml_string(&version);
                if t.set(&path, &value).is_err() {
                    t.set_beside(&format!("services[{i}].name"), "version", &value)?;
                }
                edits.push(format!("set {path} = {version} (was {})", s.version));
            }
        }
        retire(t, spec, lane, &mut edits)?;
        if !services.is_empty() {
            remove(t, &mut edits, format!("lanes[{def}].services"))?;
        }
        Ok(())
    })?;
    Ok(Promoted {
        lane: lane.to_string(),
        version,
        services,
        edits,
    })
}

/// Removes from `t` (which says `spec`) everything that sends requests to `lane`: the routes
/// to it, its coloring rules, its release plan. Part of a [`SpecText::together`]: a removal
/// may leave the spec invalid until the rest is done.
pub(crate) fn retire(
    t: &mut SpecText,
    spec: &LaneSpec,
    lane: graylane_core::Lane,
    edits: &mut Vec<String>,
) -> Result<(), SpecError> {
    for (i, s) in spec.services.iter().enumerate() {
        // The routes to the lane, last first so that the indices still hold.
        let r = &s.routing;
        let mut gone = Vec::new();
        if r.canary.as_ref().is_some_and(|c| c.lane == lane) {
            gone.push("canary");
        }
        if r.blue_green.as_ref().is_some_and(|b| b.active == lane) {
            gone.push("blue_green");
        }
        if r.mirror.as_ref().is_some_and(|m| m.lane == lane) {
            gone.push("mirror");
        }
        let content: Vec<usize> = (0..r.content.len())
            .filter(|&j| r.content[j].lane == lane)
            .collect();
        let whole_content = !content.is_empty() && content.len() == r.content.len();
        if whole_content {
            gone.push("content");
        }
        let present = usize::from(r.canary.is_some())
            + usize::from(r.blue_green.is_some())
            + usize::from(r.mirror.is_some())
            + usize::from(!r.content.is_empty());
        if !gone.is_empty() && gone.len() == present {
            // Nothing of the routing stays: it goes as a whole, not as an empty `{}`.
            remove(t, edits, format!("services[{i}].routing"))?;
            continue;
        }
        for key in gone {
            remove(t, edits, format!("services[{i}].routing.{key}"))?;
        }
        if !whole_content {
            for j in content.into_iter().rev() {
                remove(t, edits, format!("services[{i}].routing.content[{j}]"))?;
            }
        }
    }
    for (i, r) in spec.coloring.rules.iter().enumerate().rev() {
        if r.lane == lane {
            remove(t, edits, format!("coloring.rules[{i}]"))?;
        }
    }
    if let Some(k) = spec.releases.iter().position(|r| r.lane == lane) {
        remove(t, edits, format!("releases[{k}]"))?;
    }
    Ok(())
}

fn remove(t: &mut SpecText, edits: &mut Vec<String>, path: String) -> Result<(), SpecError> {
    t.remove(&path)?;
    edits.push(format!("remove {path}"));
    Ok(())
}

/// A version label as a YAML scalar: quoted when a plain scalar would read as something else
/// (`1.0`, `true`).
fn yaml_string(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}
