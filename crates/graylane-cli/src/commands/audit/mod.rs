//! `graylane audit`: find a lane's data outside the lane's namespace.

//!
//! Each store has its module: `sql` (PostgreSQL and MySQL rows), `keys` (Redis), `records`
//! (Kafka). Each adds what it finds to one [`Report`], and what it could not search.

mod keys;
mod records;
mod sql;

use super::{lane_arg, load, print_json, runtime};
use crate::args::AuditArgs;
use crate::{Fail, bad_input, problem};

/// Where the marker was found.
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    lane: String,
    marker: String,
    /// `(place, count)` outside the lane: leaks.
    leaks: Vec<(String, i64)>,
    /// `(place, count)` inside the lane's namespace.
    in_lane: Vec<(String, i64)>,
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
    if args.marker.len() < 3 {
        return Err(bad_input(
            "--marker must be at least 3 characters (it is searched everywhere)",
        ));
    }
    if args.database_url.is_none() && args.redis_url.is_none() && args.topics.is_empty() {
        return Err(bad_input(
            "nothing to audit: give --database-url, --redis-url and/or --topic",
        ));
    }
    if !args.topics.is_empty() && args.kafka_brokers.is_none() {
        return Err(bad_input(
            "--topic needs --kafka-brokers (or GRAYLANE_KAFKA_BROKERS)",
        ));
    }
    let spec = load(&args.spec)?;
    let lane = lane_arg(&spec, &args.lane, "the spec")?;
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
        if let Some(url) = &args.database_url {
            sql::search(
                &spec,
                lane,
                url,
                &args.base_schema,
                &args.marker,
                &mut report,
            )
            .await?;
        }
        if let Some(url) = &args.redis_url {
            keys::search(&spec, lane, url, &args.marker, &mut report).await?;
        }
        Ok::<_, Fail>(())
    })?;
    if let Some(brokers) = &args.kafka_brokers {
        for topic in &args.topics {
            records::search(&spec, lane, brokers, topic, &args.marker, &mut report)?;
        }
    }
    let leaked: i64 = report.leaks.iter().map(|(_, n)| n).sum();
    let found: i64 = report.in_lane.iter().map(|(_, n)| n).sum();
    if args.json {
        print_json(&report)?;
    } else {
        for (place, n) in &report.in_lane {
            println!("in lane    {n:>8}  {place}");
        }
        for (place, n) in &report.leaks {
            println!("LEAK       {n:>8}  {place}");
        }
        for (place, why) in &report.unsearched {
            println!("NOT SEARCHED        {place}: {why}");
        }
        println!("lane {lane}: {found} in the lane, {leaked} outside it");
    }
    if leaked > 0 {
        return Err(problem(format!(
            "{leaked} item(s) of lane {lane} found outside its namespace"
        )));
    }
    if !report.unsearched.is_empty() {
        return Err(problem(format!(
            "the audit is incomplete: {} place(s) could not be searched",
            report.unsearched.len()
        )));
    }
    Ok(())
}
