//! `graylane release`: a lane's release plan, one step at a time, as edits of the spec file.
//!
//! The plan is the spec's `releases[]` entry for the lane: the sticky rule whose percent is the
//! exposure, the steps, the bake time and the gates. Every change is a minimal edit of the
//! spec's text ([`SpecText`]): `start` turns the lane's coloring rules on at the first step,
//! `advance` sets the rule's percent to the next step's (`5` becomes `25`), `rollback` turns
//! the lane's rules off and its mesh routes to zero at once (canary weight and mirror percent
//! 0, content routes off, a blue-green side on the lane back to base). Running
//! services follow the file ([`LiveSpec`](graylane_core::live::LiveSpec)); `--manifests DIR`
//! regenerates the manifests for `kubectl apply`. `judge` and `run` measure the lane against
//! base (`judge.rs`). `promote` makes the lane's versions base's (`promote.rs`); `finish`
//! takes the lane offline — spec, consumers, audit, data, groups, manifests (`finish.rs`).

mod figures;
mod finish;
mod judge;
mod promote;

use std::path::Path;

use graylane_core::Lane;
use graylane_core::spec::{LaneSpec, ReleaseSpec, SpecText};
use serde::Serialize;

use super::{lane_arg, print_json};
use crate::args::ReleaseAction;
use crate::{Fail, bad_input, refused};

pub use judge::RunSummary;

/// `graylane release run ARGS` in-process (the arguments after `run`): the loop, printing
/// what the command prints; how it ended. A rollback is an `Ok` summary, not an error.
pub fn release_run<I: IntoIterator<Item = String>>(args: I) -> Result<RunSummary, Fail> {
    #[derive(clap::Parser)]
    #[command(name = "graylane release run")]
    struct Cli {
        #[command(flatten)]
        args: crate::args::RunArgs,
    }
    let cli = <Cli as clap::Parser>::try_parse_from(std::iter::once(String::new()).chain(args))
        .map_err(|e| bad_input(e.to_string()))?;
    judge::run_release(&cli.args)
}

/// `graylane release finish ARGS` in-process (the arguments after `finish`): every step,
/// printed; the teardown's end (`clean`, `incomplete` or `refused`).
pub fn release_finish<I: IntoIterator<Item = String>>(args: I) -> Result<String, Fail> {
    #[derive(clap::Parser)]
    #[command(name = "graylane release finish")]
    struct Cli {
        #[command(flatten)]
        args: crate::args::FinishArgs,
    }
    let cli = <Cli as clap::Parser>::try_parse_from(std::iter::once(String::new()).chain(args))
        .map_err(|e| bad_input(e.to_string()))?;
    Ok(finish::finish_lane(&cli.args)?.teardown.to_owned())
}

pub(crate) fn run(action: ReleaseAction) -> Result<(), Fail> {
    match action {
        ReleaseAction::Plan(args) => plan(&args),
        ReleaseAction::Status(args) => status(&args),
        ReleaseAction::Start(args) => change(&args, Change::Start),
        ReleaseAction::Advance(args) => change(&args, Change::Advance),
        ReleaseAction::Rollback(args) => change(&args, Change::Rollback),
        ReleaseAction::Promote(args) => promote::promote(&args),
        ReleaseAction::Finish(args) => finish::finish(&args),
        ReleaseAction::Judge(args) => judge::judge(&args),
        ReleaseAction::Run(args) => judge::run_loop(&args),
    }
}

/// A spec's release of one lane, and where its rules are.
pub(crate) struct Release {
    pub(crate) spec: LaneSpec,
    pub(crate) plan: ReleaseSpec,
    /// The index of the plan's sticky rule in `coloring.rules`.
    rule: usize,
}

/// Where a release stands, read off the spec.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct State {
    pub(crate) lane: String,
    pub(crate) rule: String,
    /// Whether any of the lane's coloring rules is on.
    pub(crate) exposed: bool,
    /// The sticky rule's percent now.
    pub(crate) percent: f64,
    /// The step that percent is (0-based), if it is one.
    pub(crate) step: Option<usize>,
    pub(crate) steps: Vec<f64>,
}

impl Release {
    /// The release of `lane` in `spec` (`None`: the only one).
    pub(crate) fn of(spec: LaneSpec, lane: Option<&str>) -> Result<Release, Fail> {
        let plan = match lane {
            Some(name) => {
                let lane = lane_arg(&spec, name, "the spec")?;
                spec.releases
                    .iter()
                    .find(|r| r.lane == lane)
                    .cloned()
                    .ok_or_else(|| {
                        bad_input(format!(
                            "the spec has no release of lane {lane} (`releases[]`)"
                        ))
                    })?
            }
            None => match spec.releases.as_slice() {
                [one] => one.clone(),
                [] => return Err(bad_input("the spec has no release plan (`releases[]`)")),
                _ => {
                    return Err(bad_input(
                        "the spec has several releases: say which with --lane",
                    ));
                }
            },
        };
        // Validated with the spec: the rule is there, and sticky.
        let rule = spec
            .coloring
            .rules
            .iter()
            .position(|r| r.name.as_deref() == Some(plan.rule.as_str()))
            .ok_or_else(|| bad_input(format!("no coloring rule is named {:?}", plan.rule)))?;
        Ok(Release { spec, plan, rule })
    }

    pub(crate) fn lane(&self) -> Lane {
        self.plan.lane
    }

    fn percent_path(&self) -> String {
        format!("coloring.rules[{}].match.sticky.percent", self.rule)
    }

    /// The indices of the lane's coloring rules.
    fn lane_rules(&self) -> impl Iterator<Item = usize> + '_ {
        let lane = self.lane();
        self.spec
            .coloring
            .rules
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.lane == lane)
            .map(|(i, _)| i)
    }

    pub(crate) fn state(&self) -> State {
        // `of` found the rule, so there is an exposure.
        let e = self
            .plan
            .exposure(&self.spec)
            .unwrap_or(graylane_core::spec::Exposure {
                exposed: false,
                percent: 0.0,
                step: None,
            });
        State {
            lane: self.lane().to_string(),
            rule: self.plan.rule.clone(),
            exposed: e.exposed,
            percent: e.percent,
            step: e.step,
            steps: self.plan.steps.iter().map(|s| s.value()).collect(),
        }
    }
}

/// `release plan`: the steps and what each changes.
fn plan(args: &crate::args::ReleaseOpts) -> Result<(), Fail> {
    let release = Release::of(super::load(&args.spec)?, args.lane.as_deref())?;
    let p = &release.plan;
    if args.json {
        return print_json(&serde_json::json!({
            "lane": p.lane.as_str(),
            "rule": p.rule,
            "steps": p.steps.iter().map(|s| s.value()).collect::<Vec<_>>(),
            "bake_secs": p.bake_secs,
            "gates": p.gates,
            "sets": release.percent_path(),
        }));
    }
    println!(
        "release of lane {} (rule {:?}, bake {} s per step)",
        p.lane, p.rule, p.bake_secs
    );
    for (i, step) in p.steps.iter().enumerate() {
        let what = if step.value() == 0.0 {
            "the lane's other rules only".to_owned()
        } else {
            format!("{step} of users by the sticky rule, plus the lane's other rules")
        };
        println!(
            "  step {}: {} = {}  ({what})",
            i + 1,
            release.percent_path(),
            step.value()
        );
    }
    let g = &p.gates;
    println!(
        "  gates: error ratio at most base's + {}, p99 at most {} x base's (or {} ms above it), at least {} lane requests per service",
        g.max_error_ratio_increase, g.max_p99_ratio, g.p99_tolerance_ms, g.min_requests
    );
    for q in &g.promql {
        println!("  gate {}: {} <= {}", q.name, q.query, q.max);
    }
    println!(
        "  rollback: the lane's rules and content routes off, its canary weight and mirror percent 0, blue-green back to base; tokens still reach it"
    );
    Ok(())
}

/// `release status`.
fn status(args: &crate::args::ReleaseOpts) -> Result<(), Fail> {
    let state = Release::of(super::load(&args.spec)?, args.lane.as_deref())?.state();
    if args.json {
        return print_json(&state);
    }
    println!("{}", describe(&state));
    Ok(())
}

pub(crate) fn describe(s: &State) -> String {
    let at = match (s.exposed, s.step) {
        (false, _) => "off (no exposure)".to_owned(),
        (true, Some(i)) => format!("step {} of {} ({}%)", i + 1, s.steps.len(), s.percent),
        (true, None) => format!("exposed at {}%, which is no step of the plan", s.percent),
    };
    format!("release of lane {}: {at}", s.lane)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Start,
    Advance,
    Rollback,
}

/// What a change did to the spec text: each edit, `path: before -> after`.
pub(crate) struct Applied {
    pub(crate) edits: Vec<String>,
    pub(crate) state: State,
}

/// Applies `change` to the text of `release`'s spec; `Err` with exit 3 when the plan refuses it
/// (advance past the last step, or before start). No edits: nothing to do.
pub(crate) fn apply(
    text: &mut SpecText,
    release: &Release,
    change: Change,
) -> Result<Vec<String>, Fail> {
    let state = release.state();
    let mut edits = Vec::new();
    let mut edit =
        |text: &mut SpecText, path: String, key: Option<&str>, value: String| -> Result<(), Fail> {
            let result = match key {
                Some(key) => text.set_beside(&path, key, &value),
                None => text.set(&path, &value),
            };
            result.map_err(|e| bad_input(format!("cannot edit the spec at {path}: {e}")))?;
            let shown = key.map_or(path.clone(), |k| {
                format!("{}.{k}", path.rsplit_once('.').map_or("", |p| p.0))
            });
            edits.push(format!("{shown} = {value}"));
            Ok(())
        };
    let percent = |i: usize| format_percent(release.plan.steps[i].value());
    match change {
        Change::Start => {
            for i in release.lane_rules() {
                if !release.spec.coloring.rules[i].enabled {
                    edit(
                        text,
                        format!("coloring.rules[{i}].lane"),
                        Some("enabled"),
                        "true".into(),
                    )?;
                }
            }
            if state.step != Some(0) {
                edit(text, release.percent_path(), None, percent(0))?;
            }
        }
        Change::Advance => {
            if !state.exposed {
                return Err(refused(format!("{}: start it first", describe(&state))));
            }
            let next = match state.step {
                Some(i) => i + 1,
                None => release
                    .plan
                    .steps
                    .iter()
                    .position(|s| s.value() > state.percent)
                    .unwrap_or(release.plan.steps.len()),
            };
            if next >= release.plan.steps.len() {
                return Err(refused(format!(
                    "{}: the last step; promote it",
                    describe(&state)
                )));
            }
            edit(text, release.percent_path(), None, percent(next))?;
        }
        Change::Rollback => {
            for i in release.lane_rules() {
                if release.spec.coloring.rules[i].enabled {
                    edit(
                        text,
                        format!("coloring.rules[{i}].lane"),
                        Some("enabled"),
                        "false".into(),
                    )?;
                }
            }
            let lane = release.lane();
            for (i, s) in release.spec.services.iter().enumerate() {
                if s.routing
                    .canary
                    .as_ref()
                    .is_some_and(|c| c.lane == lane && c.weight > 0)
                {
                    edit(
                        text,
                        format!("services[{i}].routing.canary.weight"),
                        None,
                        "0".into(),
                    )?;
                }
                if s.routing
                    .mirror
                    .as_ref()
                    .is_some_and(|m| m.lane == lane && m.percent.value() > 0.0)
                {
                    edit(
                        text,
                        format!("services[{i}].routing.mirror.percent"),
                        None,
                        "0".into(),
                    )?;
                }
                if s.routing
                    .blue_green
                    .as_ref()
                    .is_some_and(|b| b.active == lane)
                {
                    edit(
                        text,
                        format!("services[{i}].routing.blue_green.active"),
                        None,
                        "base".into(),
                    )?;
                }
                for (j, c) in s.routing.content.iter().enumerate() {
                    if c.lane == lane && c.enabled {
                        edit(
                            text,
                            format!("services[{i}].routing.content[{j}].lane"),
                            Some("enabled"),
                            "false".into(),
                        )?;
                    }
                }
            }
        }
    }
    Ok(edits)
}

fn format_percent(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p}")
    }
}

/// `release start|advance|rollback`: edits the spec file (unless `--dry-run`), then the
/// manifests (`--manifests`).
fn change(args: &crate::args::ReleaseChangeArgs, change: Change) -> Result<(), Fail> {
    let applied = change_file(
        &args.opts.spec,
        args.opts.lane.as_deref(),
        change,
        args.dry_run,
        args.manifests.as_deref(),
    )?;
    if args.opts.json {
        return print_json(&serde_json::json!({
            "edits": applied.edits,
            "state": applied.state,
            "dry_run": args.dry_run,
        }));
    }
    if applied.edits.is_empty() {
        println!("nothing to change: {}", describe(&applied.state));
    }
    for e in &applied.edits {
        println!("{}{e}", if args.dry_run { "would set " } else { "set " });
    }
    println!("{}", describe(&applied.state));
    Ok(())
}

/// Applies `change` to the spec file at `path`; writes it back unless `dry_run`, and the
/// manifests into `manifests` when given.
pub(crate) fn change_file(
    path: &Path,
    lane: Option<&str>,
    change: Change,
    dry_run: bool,
    manifests: Option<&Path>,
) -> Result<Applied, Fail> {
    let mut text = SpecText::read(path).map_err(|e| bad_input(e.to_string()))?;
    let release = Release::of(text.spec().map_err(|e| bad_input(e.to_string()))?, lane)?;
    let edits = apply(&mut text, &release, change)?;
    let after = Release::of(text.spec().map_err(|e| bad_input(e.to_string()))?, lane)?;
    if !dry_run && !edits.is_empty() {
        text.write()
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        if let Some(out) = manifests {
            super::manifests::write_all(&after.spec, out)?;
        }
    }
    Ok(Applied {
        edits,
        state: after.state(),
    })
}
