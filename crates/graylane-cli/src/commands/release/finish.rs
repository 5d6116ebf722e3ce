//! `release finish`: takes a lane offline and proves it — in this order, each step idempotent
//! and reported:
//!
//! 1. `spec`: the lane goes from the spec — its routes, rules, release plan and definition —
//!    and the manifests are regenerated without it. Running services follow the file and treat
//!    the lane's wire value as unknown from then on; applying the manifests removes the lane's
//!    Deployments, which is what stops its Kafka consumers.
//! 2. `consumers`: waits until the control topic shows every lane consumer of each `--group`
//!    stopped and every grant handed back to base.
//! 3. `audit`: the leak audit over the lane's storage; a leak (or a place it could not search)
//!    refuses the rest, exit 3, unless `--force REASON`.
//! 4. `shadow`: the safe drop of the lane's shadow schema or database.
//! 5. `redis`: the lane's keys, `SCAN MATCH <prefix>*` then `UNLINK` in batches, each key
//!    checked against the prefix before it goes.
//! 6. `groups`: the lane's consumer groups deleted, where the broker allows it.
//! 7. `manifests`: the directory checked against the spec without the lane.
//!
//! The lane's data names are read from the spec before step 1 removes the lane. Run again, the
//! lane is no longer in the spec: its names are then the templates', and every step finds
//! nothing to do.

mod teardown;

use graylane_core::Lane;
use graylane_core::spec::{LaneDef, LaneSpec, SpecText};
use serde::Serialize;

use super::promote::retire;
use crate::args::{AuditArgs, FinishArgs};
use crate::commands::{audit, print_json};
use crate::{Fail, bad_input, problem, refused};

/// How one step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// It removed something, or waited for something that happened.
    Done,
    /// There was nothing to do.
    Nothing,
    /// Not asked for (no `--redis-url`, ...), or not something the broker does.
    Skipped,
    /// Something stays that should have gone (a consumer group still in use, drift).
    Remains,
    /// It found a reason to stop; nothing after it ran.
    Refused,
    /// It found a reason to stop, and `--force` went on.
    Forced,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Done => "done:",
            Outcome::Nothing => "nothing to do:",
            Outcome::Skipped => "skipped:",
            Outcome::Remains => "REMAINS:",
            Outcome::Refused => "REFUSED:",
            Outcome::Forced => "FORCED past:",
        }
    }
}

#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    outcome: Outcome,
    detail: String,
}

/// What `finish` did, step by step.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    lane: String,
    dry_run: bool,
    /// `clean`, `incomplete` (something remains) or `refused`.
    pub(crate) teardown: &'static str,
    /// Why `--force` went past a refusal.
    forced: Option<String>,
    steps: Vec<Step>,
}

/// A teardown under way: what it works on, and its report.
pub(crate) struct Teardown<'a> {
    args: &'a FinishArgs,
    lane: Lane,
    /// The spec before the lane left it, with the lane in it (for its data names).
    data_spec: LaneSpec,
    report: Report,
}

/// `release finish`.
pub(crate) fn finish(args: &FinishArgs) -> Result<(), Fail> {
    let report = finish_lane(args)?;
    if args.json {
        print_json(&report)?;
    }
    match report.teardown {
        "clean" => Ok(()),
        "refused" => Err(refused(format!(
            "lane {}: teardown refused (see the REFUSED step)",
            report.lane
        ))),
        _ => Err(problem(format!(
            "lane {}: teardown incomplete (see the REMAINS steps)",
            report.lane
        ))),
    }
}

/// Runs every step (printing each unless `--json`) and says how the teardown ended.
pub(crate) fn finish_lane(args: &FinishArgs) -> Result<Report, Fail> {
    // Every argument is checked before the first step changes anything.
    if !args.groups.is_empty() && args.stores.kafka_brokers.is_none() {
        return Err(bad_input(
            "--group needs --kafka-brokers (or GRAYLANE_KAFKA_BROKERS)",
        ));
    }
    let stores = args.stores.any();
    if !stores && args.force.is_none() {
        return Err(bad_input(
            "nothing to audit: give --database-url, --redis-url and/or --topic \
             (or --force REASON to finish without an audit)",
        ));
    }
    if stores {
        audit::check_args(&audit_args(args, &args.lane))?;
    }
    let mut text = SpecText::read(&args.spec).map_err(|e| bad_input(e.to_string()))?;
    let spec = text.spec().map_err(|e| bad_input(e.to_string()))?;
    let lane = Lane::new(&args.lane).map_err(|e| bad_input(format!("--lane: {e}")))?;
    if lane.is_base() {
        return Err(bad_input("base is not finished: name a lane"));
    }
    let mut data_spec = spec.clone();
    let known = spec.lane(lane).is_some();
    if !known {
        data_spec.lanes.push(LaneDef {
            name: lane,
            description: None,
            version: None,
            services: Vec::new(),
            data: None,
            mirror: false,
        });
        // Its template names must not reach another lane's (`lane:gra` would take in
        // `lane:gray:...`): the spec with it is checked as any spec is.
        data_spec.validate().map_err(|e| {
            bad_input(format!(
                "lane {lane} is not in {}, and its data names would not be its own: {e}",
                args.spec.display()
            ))
        })?;
    }
    let mut t = Teardown {
        args,
        lane,
        data_spec,
        report: Report {
            lane: lane.to_string(),
            dry_run: args.dry_run,
            teardown: "clean",
            forced: None,
            steps: Vec::new(),
        },
    };
    if !known {
        t.add(
            "spec",
            Outcome::Nothing,
            format!(
                "lane {lane} is not in {} (finished already?); its data names are the templates'",
                args.spec.display()
            ),
        );
    } else {
        t.leave_spec(&mut text, &spec)?;
    }
    // Each returns false when it refused: nothing after it runs. A step that fails (a
    // connection, a drop the database refuses) is a refusal too, reported as one.
    type StepFn<'a> = fn(&mut Teardown<'a>) -> Result<bool, Fail>;
    let steps: [(&'static str, StepFn<'_>); 6] = [
        ("consumers", Teardown::drain),
        ("audit", Teardown::audit),
        ("shadow", Teardown::drop_shadow),
        ("redis", Teardown::unlink_keys),
        ("groups", Teardown::delete_groups),
        ("manifests", Teardown::check_manifests),
    ];
    for (name, step) in steps {
        let go_on = match step(&mut t) {
            Ok(go_on) => go_on,
            Err(Fail(message, _)) => {
                t.add(
                    name,
                    Outcome::Refused,
                    format!("{message}; nothing after this step ran"),
                );
                false
            }
        };
        if !go_on {
            t.report.teardown = "refused";
            break;
        }
    }
    let steps = &t.report.steps;
    if t.report.teardown == "clean" && steps.iter().any(|s| s.outcome == Outcome::Remains) {
        t.report.teardown = "incomplete";
    }
    if !args.json {
        let removed = steps.iter().filter(|s| s.outcome == Outcome::Done).count();
        let remains = steps
            .iter()
            .filter(|s| s.outcome == Outcome::Remains)
            .count();
        println!(
            "finish: lane={lane} teardown={} steps_done={removed} remains={remains}{}",
            t.report.teardown,
            if args.dry_run { " (dry run)" } else { "" }
        );
    }
    Ok(t.report)
}

/// The audit `finish` runs, as `graylane audit` would be called.
fn audit_args(a: &FinishArgs, lane: &str) -> AuditArgs {
    AuditArgs {
        spec: a.spec.clone(),
        lane: lane.to_owned(),
        marker: a.marker.clone(),
        stores: a.stores.clone(),
        json: false,
    }
}

impl Teardown<'_> {
    fn add(&mut self, step: &'static str, outcome: Outcome, detail: impl Into<String>) {
        let detail = detail.into();
        if !self.args.json {
            println!("finish: {step}: {} {detail}", outcome.label());
        }
        self.report.steps.push(Step {
            step,
            outcome,
            detail,
        });
    }

    /// A reason to stop: refused, or forced past with `--force`. `true`: go on.
    fn stop(&mut self, step: &'static str, why: String) -> bool {
        match &self.args.force {
            Some(reason) => {
                self.add(step, Outcome::Forced, format!("{why} (--force: {reason})"));
                self.report.forced = Some(reason.clone());
                true
            }
            None => {
                self.add(
                    step,
                    Outcome::Refused,
                    format!("{why}; nothing after this step ran (--force REASON goes on)"),
                );
                false
            }
        }
    }

    /// Step 1: the lane out of the spec, and out of the manifests.
    fn leave_spec(&mut self, text: &mut SpecText, spec: &LaneSpec) -> Result<(), Fail> {
        let lane = self.lane;
        let def = spec
            .lanes
            .iter()
            .position(|l| l.name == lane)
            .expect("the lane is in the spec");
        let mut edits = Vec::new();
        text.together(|t| {
            retire(t, spec, lane, &mut edits)?;
            t.remove(&format!("lanes[{def}]"))?;
            edits.push(format!("remove lanes[{def}]"));
            Ok(())
        })
        .map_err(|e| bad_input(format!("cannot remove lane {lane} from the spec: {e}")))?;
        let after = text.spec().map_err(|e| bad_input(e.to_string()))?;
        let manifests = match &self.args.manifests {
            Some(dir) if !self.args.dry_run => {
                crate::commands::manifests::write_all(&after, dir)?;
                format!(
                    "; manifests regenerated in {} (apply them: the lane's Deployments go)",
                    dir.display()
                )
            }
            Some(dir) => format!("; would regenerate the manifests in {}", dir.display()),
            None => "; no --manifests: regenerate them with `graylane manifests`".into(),
        };
        if !self.args.dry_run {
            text.write()
                .map_err(|e| bad_input(format!("{}: {e}", self.args.spec.display())))?;
        }
        let verb = if self.args.dry_run { "would " } else { "" };
        self.add(
            "spec",
            Outcome::Done,
            format!("{verb}{}{manifests}", edits.join(", ")),
        );
        Ok(())
    }

    /// Step 3: the leak audit, over every store given.
    fn audit(&mut self) -> Result<bool, Fail> {
        let a = self.args;
        if !a.stores.any() {
            // Only with --force (checked before the first step).
            return Ok(self.stop("audit", "nothing to audit: no store given".into()));
        }
        let args = audit_args(a, self.lane.as_str());
        let found = audit::search_all(&self.data_spec, self.lane, &args)?;
        let summary = found.lines().join("; ");
        if found.verdict().is_err() {
            return Ok(self.stop(
                "audit",
                format!("the lane's data is not all in the lane: {summary}"),
            ));
        }
        // Clean, and nothing of the lane found either: nothing for the next steps to remove.
        let outcome = if found.in_lane.is_empty() {
            Outcome::Nothing
        } else {
            Outcome::Done
        };
        self.add("audit", outcome, format!("clean: {summary}"));
        Ok(true)
    }
}
