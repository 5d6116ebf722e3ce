//! The lane report the demo ends with: requests per service, version and lane; mirror copies
//! and what their comparison with production found; an excerpt of the metrics a dashboard
//! reads; Kafka messages per consumer; rows per schema and keys per namespace; and last, the
//! [audit](super::audit) line.

use std::process::ExitCode;

use graylane::http::BoxError;
use graylane::kafka::ConsumerStats;

use super::audit::{self, Store, TABLES};
use super::traffic::Sent;
use crate::topology::Shop;

/// Prints the report of the run `run`, whose requests were `sent`: success when the audit is
/// clean.
pub(crate) async fn report(
    shop: &mut Shop,
    run: &str,
    sent: &[Sent],
) -> Result<ExitCode, BoxError> {
    let stores = audit::stores(shop.spec())?;
    let fallbacks = hops(shop);
    let mirror = shop.mirror.stats();
    println!(
        "mirror copies: sent={} failed={} noise copies={}",
        mirror.sent, mirror.failed, mirror.noise_sent
    );
    comparison(shop);
    metrics(shop)?;
    consumers(shop);
    rows(shop, &stores, run).await?;
    let evidence = audit::gather(shop.admin(), &mut shop.redis(), &stores, run).await?;
    println!("keys per namespace (this run):");
    for (store, keys) in stores.iter().zip(&evidence.keys) {
        println!(
            "  {:<5} '{}shop:order:*' {}",
            store.name,
            store.prefix,
            keys.len()
        );
    }
    let (by_gray, while_held) = audit::gray_consumer_share(sent, &evidence);
    println!(
        "gray consumer share: shipped {by_gray} of the {while_held} gray orders sent while it held \
         its partitions ({}%)",
        (by_gray * 100).checked_div(while_held).unwrap_or(0)
    );
    let revision = shop.app.live.current();
    let mut audit = audit::judge(sent, &evidence, &stores, revision.edge());
    let hops: Vec<_> = shop.hops.snapshot().into_iter().collect();
    for version in audit::idle(shop.spec(), &hops, sent) {
        eprintln!("idle: {version} handled none of its lane's traffic");
        audit.idle += 1;
    }
    {
        let mut latest = shop
            .app
            .audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *latest = graylane::otel::AuditCounts::new(
            latest.runs + 1,
            vec![
                ("lost", audit.lost),
                ("leaks", audit.leaks),
                ("idle", audit.idle),
            ],
        );
    }
    println!(
        "lane audit: requests={} gray={} fallbacks={} mirrored={} lost={} leaks={} idle={}",
        sent.len(),
        sent.iter().filter(|s| s.lane == "gray").count(),
        fallbacks,
        mirror.sent,
        audit.lost,
        audit.leaks,
        audit.idle
    );
    Ok(if audit.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Requests per service, version and lane; returns how many were fallbacks (served by a
/// version of another lane than theirs).
fn hops(shop: &Shop) -> u64 {
    println!("\nrequests per service and version (requested lane -> served lane):");
    let mut fallbacks = 0;
    for ((service, version, lane, served), n) in shop.hops.snapshot() {
        // `gray (mirror)`: the lane is the first word.
        let fallback = lane.split(' ').next() != Some(served.as_str());
        if fallback {
            fallbacks += n;
        }
        println!(
            "  {service:<12} {version}  {lane:<16} -> {served:<5} {n:>5}{}",
            if fallback { "  (fallback)" } else { "" }
        );
    }
    fallbacks
}

/// What the mirror's comparison found (`GET /graylane/mirror`): per route, the diff rate, the
/// fields that differed and the noise learned; then the two latest sample diffs.
fn comparison(shop: &Shop) {
    let report = shop.mirror.report();
    println!("mirror comparison with production (GET /graylane/mirror):");
    for r in &report.routes {
        let different = r.different_status + r.different_header + r.different_body;
        let fields: Vec<String> = r.fields.iter().map(|(f, n)| format!("{f} ({n})")).collect();
        let differing = if fields.is_empty() {
            "-".into()
        } else {
            fields.join(", ")
        };
        let noise = if r.noise.is_empty() {
            "-".into()
        } else {
            r.noise.join(", ")
        };
        println!(
            "  {:<15} compared={} different={} ({}%) status/header/body={}/{}/{} skipped={}",
            r.route,
            r.compared,
            different,
            (different * 100).checked_div(r.compared).unwrap_or(0),
            r.different_status,
            r.different_header,
            r.different_body,
            r.skipped,
        );
        println!("  {:<15} differing: {differing}; noise: {noise}", "");
    }
    for sample in report.samples.iter().rev().take(2) {
        let fields: Vec<String> = sample
            .fields
            .iter()
            .map(|f| format!("{} {} -> {}", f.path, f.primary, f.mirror))
            .collect();
        println!(
            "  sample {} {}: {}",
            sample.request_id.as_deref().unwrap_or("-"),
            sample.route,
            fields.join("; ")
        );
    }
}

/// The same story in the metrics a dashboard reads (`GET /metrics`).
fn metrics(shop: &Shop) -> Result<(), BoxError> {
    println!("metrics (excerpt of GET /metrics):");
    let text = shop.app.exposition.render()?;
    for line in text.lines().filter(|l| {
        l.starts_with("graylane_fallbacks_total")
            || l.starts_with("graylane_lane_headers_stripped_total")
            || l.starts_with("graylane_mirror_copies_total")
            || l.starts_with("graylane_mirror_compared_total")
    }) {
        println!("  {line}");
    }
    Ok(())
}

fn consumers(shop: &Shop) {
    println!("kafka messages handled per consumer:");
    for h in &shop.fulfillment {
        let s: ConsumerStats = h.stats();
        let before = if h.lane().is_base() {
            0
        } else {
            shop.gray_before
        };
        println!(
            "  fulfillment {:<4} own={} fallback={} (replayed {}) skipped={} grants={} releases={}",
            h.lane(),
            s.processed + before,
            s.fallback,
            s.replayed,
            s.skipped,
            s.grants,
            s.releases
        );
    }
}

async fn rows(shop: &Shop, stores: &[Store; 2], run: &str) -> Result<(), BoxError> {
    println!("rows per schema (this run; live / mirror copies):");
    for store in stores {
        let mut line = format!("  {:<5} {:<16}", store.name, store.schema);
        for table in TABLES {
            let live = audit::ids(shop.admin(), &store.schema, table, run, false).await?;
            let mirrored = audit::ids(shop.admin(), &store.schema, table, run, true).await?;
            line.push_str(&format!(" {table}={}/{}", live.len(), mirrored.len()));
        }
        println!("{line}");
    }
    Ok(())
}
