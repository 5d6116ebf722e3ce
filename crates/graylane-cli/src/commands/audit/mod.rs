//! `graylane audit`: find a lane's data outside the lane's namespace.

//!
//! Each store has its module: `sql` (PostgreSQL and MySQL rows), `keys` (Redis), `records`
//! (Kafka). Each adds what it finds to one [`Report`], and what it could not search.

mod keys;
pub(crate) use keys::{connect_redis, glob_escape};
mod records;
mod sql;

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;

use super::{lane_arg, load, print_json, runtime};
use crate::args::AuditArgs;
use crate::{Fail, bad_input, problem};

/// Where the marker was found.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Report {
    lane: String,
    marker: String,
    /// `(place, count)` outside the lane: leaks.
    leaks: Vec<(String, i64)>,
    /// `(place, count)` inside the lane's namespace.
    pub(crate) in_lane: Vec<(String, i64)>,
    /// `(place, why)`: what could not be searched. An audit with any is incomplete, not clean.
    unsearched: Vec<(String, String)>,
}

impl Report {
    /// Records `count` finds at `place`, in the lane or as a leak; a count of 0 is no find.
    fn add(&mut self, in_lane: bool, place: String, count: i64) {
        if count == 0 {
            return;
        }
        if in_lane {
            self.in_lane.push((place, count));
        } else {
            self.leaks.push((place, count));
        }
    }

    /// Records that `place` could not be searched, and why.
    fn unsearched(&mut self, place: String, why: impl Into<String>) {
        self.unsearched.push((place, why.into()));
    }
}

/// Searches every source given for the marker and prints where it was found; exit 1 on a leak
/// or when something could not be searched.
pub(crate) fn run(args: &AuditArgs) -> Result<(), Fail> {
    let spec = load(&args.spec)?;
    let lane = lane_arg(&spec, &args.lane, "the spec")?;
    let report = search_all(&spec, lane, args)?;
    if args.json {
        print_json(&report)?;
    } else {
        for line in report.lines() {
            println!("{line}");
        }
    }
    report.verdict()
}

/// What the audit needs of its arguments: a marker long enough, a store, brokers for topics.
pub(crate) fn check_args(args: &AuditArgs) -> Result<(), Fail> {
    if args.marker.len() < 3 {
        return Err(bad_input(
            "--marker must be at least 3 characters (it is searched everywhere)",
        ));
    }
    let stores = &args.stores;
    if !stores.any() {
        return Err(bad_input(
            "nothing to audit: give --database-url, --redis-url and/or --topic",
        ));
    }
    if !stores.topics.is_empty() && stores.kafka_brokers.is_none() {
        return Err(bad_input(
            "--topic needs --kafka-brokers (or GRAYLANE_KAFKA_BROKERS)",
        ));
    }
    Ok(())
}

/// Searches every source `args` gives for `lane`'s marker, with `spec`'s data names.
pub(crate) fn search_all(spec: &LaneSpec, lane: Lane, args: &AuditArgs) -> Result<Report, Fail> {
    check_args(args)?;
    if lane.is_base() {
        return Err(bad_input("audit a lane, not base"));
    }
    let runtime = runtime()?;
    let mut report = Report {
        lane: lane.to_string(),
        marker: args.marker.clone(),
        ..Report::default()
    };
    runtime.block_on(async {
        if let Some(url) = &args.stores.database_url {
            sql::search(
                spec,
                lane,
                url,
                &args.stores.base_schema,
                &args.marker,
                &mut report,
            )
            .await?;
        }
        if let Some(url) = &args.stores.redis_url {
            keys::search(spec, lane, url, &args.marker, &mut report).await?;
        }
        Ok::<_, Fail>(())
    })?;
    if let Some(brokers) = &args.stores.kafka_brokers {
        for topic in &args.stores.topics {
            records::search(spec, lane, brokers, topic, &args.marker, &mut report)?;
        }
    }
    Ok(report)
}

impl Report {
    /// What the audit found, a line per place, then the totals.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (place, n) in &self.in_lane {
            lines.push(format!("in lane    {n:>8}  {place}"));
        }
        for (place, n) in &self.leaks {
            lines.push(format!("LEAK       {n:>8}  {place}"));
        }
        for (place, why) in &self.unsearched {
            lines.push(format!("NOT SEARCHED        {place}: {why}"));
        }
        let found: i64 = self.in_lane.iter().map(|(_, n)| n).sum();
        lines.push(format!(
            "lane {}: {found} in the lane, {} outside it",
            self.lane,
            self.leaked()
        ));
        lines
    }

    /// How many finds are outside the lane.
    pub(crate) fn leaked(&self) -> i64 {
        self.leaks.iter().map(|(_, n)| n).sum()
    }

    /// `Ok` for a clean, complete audit; exit 1 on a leak, or when something could not be
    /// searched.
    pub(crate) fn verdict(&self) -> Result<(), Fail> {
        let (leaked, lane) = (self.leaked(), &self.lane);
        if leaked > 0 {
            return Err(problem(format!(
                "{leaked} item(s) of lane {lane} found outside its namespace"
            )));
        }
        if !self.unsearched.is_empty() {
            return Err(problem(format!(
                "the audit is incomplete: {} place(s) could not be searched",
                self.unsearched.len()
            )));
        }
        Ok(())
    }
}
