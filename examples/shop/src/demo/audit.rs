//! The audit: every request's data in its own lane's storage, and nowhere else.
//!
//! For each request the demo sent, its lane's schema must hold its order (one row), its
//! reservations (two: for the order, for the pick) and its shipment (one), and its lane's
//! Redis namespace its cached status: anything missing is **lost**. Any of them in the other
//! lane's storage, a forged lane header that changed a lane, and a mirror copy that wrote base
//! data are **leaks**. A lane version (an HTTP or gRPC service, a Kafka consumer) that ran while
//! its lane's traffic flowed and handled none of it is **idle**: a release that never ran.
//! [`gather`] reads the storage; [`judge`] and [`idle`] decide, without I/O.

use std::collections::{HashMap, HashSet};

use graylane::coloring::SimpleRequest;
use graylane::http::BoxError;
use graylane::redis::Namespaces;
use graylane::spec::LaneSpec;
use graylane::sqlx::quote_ident;
use graylane::{Edge, Lane};

use super::hops::Hop;
use super::traffic::{Kind, Sent};
use crate::infra::BASE_SCHEMA;

/// The tables a request writes.
pub(crate) const TABLES: [&str; 3] = ["orders", "reservations", "shipments"];

/// Rows a request writes per table of [`TABLES`].
const EXPECTED: [usize; 3] = [1, 2, 1];

/// Where a lane keeps its data.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    /// `base` or `gray`.
    pub(crate) name: &'static str,
    /// Its PostgreSQL schema.
    pub(crate) schema: String,
    /// Its Redis key prefix (none for base).
    pub(crate) prefix: String,
}

/// The stores of base (`[0]`) and the gray lane (`[1]`), as the spec names them.
pub(crate) fn stores(spec: &LaneSpec) -> Result<[Store; 2], BoxError> {
    let gray = Lane::new("gray")?;
    let prefix = Namespaces::from_spec(spec)
        .prefix(gray)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    Ok([
        Store {
            name: "base",
            schema: BASE_SCHEMA.to_owned(),
            prefix: String::new(),
        },
        Store {
            name: "gray",
            schema: spec
                .data_names(gray)
                .pg_schema
                .ok_or("the gray lane has no schema")?,
            prefix,
        },
    ])
}

/// What the storage holds for one run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Evidence {
    /// Per store and table of [`TABLES`]: live (not mirrored) rows per request id.
    pub(crate) rows: [[HashMap<String, usize>; 3]; 2],
    /// Per store: the run's `shop:order:*` keys.
    pub(crate) keys: [HashSet<String>; 2],
    /// Requests whose mirror copy wrote a gray order.
    pub(crate) mirrored: HashSet<String>,
    /// Rows that mirror copies wrote in base: each one is a leak.
    pub(crate) mirrored_in_base: u64,
    /// The carrier of each live gray shipment (`drone`: fulfillment v2, `truck`: v1).
    pub(crate) gray_carriers: HashMap<String, String>,
}

/// Reads what the run `run` left in `stores`.
pub(crate) async fn gather(
    admin: &sqlx::PgPool,
    redis: &mut redis::aio::MultiplexedConnection,
    stores: &[Store; 2],
    run: &str,
) -> Result<Evidence, BoxError> {
    let mut evidence = Evidence::default();
    for (i, store) in stores.iter().enumerate() {
        for (t, table) in TABLES.iter().enumerate() {
            for id in ids(admin, &store.schema, table, run, false).await? {
                *evidence.rows[i][t].entry(id).or_default() += 1;
            }
        }
        let pattern = format!("{}shop:order:{run}-*", store.prefix);
        evidence.keys[i] = keys(redis, &pattern).await?.into_iter().collect();
    }
    evidence.mirrored = ids(admin, &stores[1].schema, "orders", run, true)
        .await?
        .into_iter()
        .collect();
    for table in TABLES {
        let rows = ids(admin, &stores[0].schema, table, run, true).await?;
        evidence.mirrored_in_base += rows.len() as u64;
    }
    let sql = format!(
        "SELECT request_id, carrier FROM {}.shipments WHERE request_id LIKE $1 AND NOT mirror",
        quote_ident(&stores[1].schema)
    );
    evidence.gray_carriers = sqlx::query_as(&sql)
        .bind(format!("{run}-%"))
        .fetch_all(admin)
        .await?
        .into_iter()
        .collect();
    Ok(evidence)
}

/// What the audit found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Audit {
    /// Pieces of data missing from their lane's storage (and failed requests).
    pub(crate) lost: u64,
    /// Pieces of data where they do not belong.
    pub(crate) leaks: u64,
    /// Lane versions that handled none of their lane's traffic (see [`idle`]).
    pub(crate) idle: u64,
}

impl Audit {
    /// Nothing lost, nothing leaked, no lane version idle.
    pub(crate) fn is_clean(&self) -> bool {
        self.lost == 0 && self.leaks == 0 && self.idle == 0
    }
}

/// The lane versions of `spec` (`service@lane`) that handled none of their lane's traffic,
/// by the `hops` they recorded, while `sent` carried some of it. Every version of the demo runs
/// while traffic flows (the gray consumer with a pause in the middle), so one that handled
/// nothing never got its lane's traffic: a broken release, however clean its data.
pub(crate) fn idle(spec: &LaneSpec, hops: &[(Hop, u64)], sent: &[Sent]) -> Vec<String> {
    let mut idle = Vec::new();
    for def in spec.lanes.iter().filter(|l| !l.name.is_base()) {
        let lane = def.name.as_str();
        if !sent.iter().any(|s| s.ok && s.lane == lane) {
            continue;
        }
        for service in &def.services {
            let handled: u64 = hops
                .iter()
                .filter(|((s, _, requested, served), _)| {
                    s == service && requested == lane && served == lane
                })
                .map(|(_, n)| n)
                .sum();
            if handled == 0 {
                idle.push(format!("{service}@{lane}"));
            }
        }
    }
    idle
}

/// Of the gray requests sent while the gray consumer ran with its partitions granted, how many
/// it shipped itself (the rest base shipped for it): `(shipped by gray, sent)`. Requests sent
/// just before it stopped may be left to base, so this is a share, not a check.
pub(crate) fn gray_consumer_share(sent: &[Sent], evidence: &Evidence) -> (usize, usize) {
    let while_held: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.ok && s.lane == "gray" && s.gray_consumer)
        .collect();
    let by_gray = while_held
        .iter()
        .filter(|s| {
            evidence
                .gray_carriers
                .get(&s.request_id)
                .map(String::as_str)
                == Some("drone")
        })
        .count();
    (by_gray, while_held.len())
}

/// Holds every request of `sent` to `evidence`. `edge` says which lane a forger would have
/// had without the forged header (it may be in the sticky 10%); admitting that honest
/// request counts nothing in the edge's metrics.
pub(crate) fn judge(sent: &[Sent], evidence: &Evidence, stores: &[Store; 2], edge: &Edge) -> Audit {
    let mut audit = Audit {
        leaks: evidence.mirrored_in_base,
        ..Audit::default()
    };
    for s in sent {
        if !s.ok {
            audit.lost += 1;
            continue;
        }
        if s.kind == Kind::Forger {
            let mut honest = SimpleRequest::new("/checkout").header("x-user-id", &s.user_id);
            let expected = edge.admit(&mut honest).context().lane();
            if s.lane != expected.as_str() {
                eprintln!("leak: forged {} landed on {}", s.request_id, s.lane);
                audit.leaks += 1;
            }
        }
        let (home, away) = if s.lane == "gray" { (1, 0) } else { (0, 1) };
        for (t, expected) in EXPECTED.into_iter().enumerate() {
            if evidence.rows[home][t]
                .get(&s.request_id)
                .copied()
                .unwrap_or(0)
                < expected
            {
                audit.lost += 1;
            }
            if evidence.rows[away][t].contains_key(&s.request_id) {
                audit.leaks += 1;
            }
        }
        let key = |i: usize| format!("{}shop:order:{}", stores[i].prefix, s.request_id);
        if !evidence.keys[home].contains(&key(home)) {
            audit.lost += 1;
        }
        // A mirror copy of a base request writes the gray namespace, as it should; Redis keys
        // do not say whether a mirror wrote them, the orders rows do.
        let mirrored_here = away == 1 && evidence.mirrored.contains(&s.request_id);
        if evidence.keys[away].contains(&key(away)) && !mirrored_here {
            eprintln!(
                "leak: {} ({:?}, lane {}) has key {}",
                s.request_id,
                s.kind,
                s.lane,
                key(away)
            );
            audit.leaks += 1;
        }
    }
    audit
}

/// The request ids of the rows of `schema.table` of the run `run`, live or mirrored.
pub(crate) async fn ids(
    pool: &sqlx::PgPool,
    schema: &str,
    table: &str,
    run: &str,
    mirror: bool,
) -> Result<Vec<String>, BoxError> {
    let sql = format!(
        "SELECT request_id FROM {}.{} WHERE request_id LIKE $1 AND mirror = $2",
        quote_ident(schema),
        quote_ident(table)
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(format!("{run}-%"))
        .bind(mirror)
        .fetch_all(pool)
        .await?)
}

async fn keys(
    redis: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<Vec<String>, BoxError> {
    use redis::AsyncCommands;
    let mut out = Vec::new();
    let mut iter: redis::AsyncIter<'_, String> = redis.scan_match(pattern).await?;
    while let Some(k) = iter.next_item().await {
        out.push(k?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> ([Store; 2], Edge) {
        let spec = crate::app::spec().unwrap();
        (stores(&spec).unwrap(), spec.edge().unwrap())
    }

    fn sent(id: &str, kind: Kind, lane: &str) -> Sent {
        Sent {
            request_id: id.into(),
            user_id: "user-1".into(),
            kind,
            lane: lane.into(),
            ok: true,
            gray_consumer: true,
        }
    }

    /// Everything `id` writes, in store `i`.
    fn landed(evidence: &mut Evidence, stores: &[Store; 2], i: usize, id: &str) {
        for (t, n) in EXPECTED.into_iter().enumerate() {
            evidence.rows[i][t].insert(id.into(), n);
        }
        evidence.keys[i].insert(format!("{}shop:order:{id}", stores[i].prefix));
    }

    #[test]
    fn data_in_its_own_lane_is_clean() {
        let (stores, edge) = setup();
        let mut evidence = Evidence::default();
        landed(&mut evidence, &stores, 0, "r-0");
        landed(&mut evidence, &stores, 1, "r-1");
        let sent = [
            sent("r-0", Kind::Ordinary, "base"),
            sent("r-1", Kind::Beta, "gray"),
        ];
        assert!(judge(&sent, &evidence, &stores, &edge).is_clean());
    }

    #[test]
    fn missing_data_is_lost_and_misplaced_data_leaks() {
        let (stores, edge) = setup();
        let mut evidence = Evidence::default();
        // A gray request that wrote everything in base: four pieces lost, four leaked.
        landed(&mut evidence, &stores, 0, "r-1");
        let audit = judge(
            &[sent("r-1", Kind::Beta, "gray")],
            &evidence,
            &stores,
            &edge,
        );
        assert_eq!(
            audit,
            Audit {
                lost: 4,
                leaks: 4,
                idle: 0
            }
        );
        // A failed request is lost.
        let mut failed = sent("r-2", Kind::Ordinary, "base");
        failed.ok = false;
        let audit = judge(&[failed], &evidence, &stores, &edge);
        assert_eq!(
            audit,
            Audit {
                lost: 1,
                leaks: 0,
                idle: 0
            }
        );
    }

    #[test]
    fn a_mirror_copy_may_write_gray_keys_but_not_base_rows() {
        let (stores, edge) = setup();
        let mut evidence = Evidence::default();
        landed(&mut evidence, &stores, 0, "r-0");
        evidence.keys[1].insert(format!("{}shop:order:r-0", stores[1].prefix));
        evidence.mirrored.insert("r-0".into());
        let sent = [sent("r-0", Kind::Ordinary, "base")];
        assert!(judge(&sent, &evidence, &stores, &edge).is_clean());
        evidence.mirrored_in_base = 3;
        assert_eq!(judge(&sent, &evidence, &stores, &edge).leaks, 3);
    }

    #[test]
    fn a_forged_header_that_changed_the_lane_leaks() {
        let (stores, edge) = setup();
        let mut evidence = Evidence::default();
        landed(&mut evidence, &stores, 1, "r-9");
        // A user the sticky 10% leaves on base.
        let user = (0..)
            .map(|i| format!("user-{i}"))
            .find(|u| {
                let mut req = SimpleRequest::new("/checkout").header("x-user-id", u);
                edge.admit(&mut req).context().lane().is_base()
            })
            .unwrap();
        let mut forged = sent("r-9", Kind::Forger, "gray");
        forged.user_id = user;
        let audit = judge(&[forged], &evidence, &stores, &edge);
        assert_eq!(
            audit,
            Audit {
                lost: 0,
                leaks: 1,
                idle: 0
            }
        );
    }

    #[test]
    fn a_lane_version_that_handled_none_of_its_traffic_is_idle() {
        let spec = crate::app::spec().unwrap();
        let hop = |service: &'static str, version: &'static str, lane: &str, served: &str| {
            (service, version, lane.to_owned(), served.to_owned())
        };
        let gray_traffic = [sent("r-1", Kind::Beta, "gray")];
        // Gray requests reached orders v2, but fulfillment v2 handled none: base did.
        let hops = [
            (hop("orders", "v2", "gray", "gray"), 5),
            (hop("fulfillment", "v1", "gray", "base"), 5),
            (hop("orders", "v2", "gray (mirror)", "gray"), 3),
        ];
        assert_eq!(idle(&spec, &hops, &gray_traffic), ["fulfillment@gray"]);
        // Mirror copies are not the lane's traffic.
        let mirrored_only = [(hop("orders", "v2", "gray (mirror)", "gray"), 3)];
        assert_eq!(
            idle(&spec, &mirrored_only, &gray_traffic),
            ["orders@gray", "fulfillment@gray"]
        );
        let both = [
            (hop("orders", "v2", "gray", "gray"), 5),
            (hop("fulfillment", "v2", "gray", "gray"), 5),
        ];
        assert!(idle(&spec, &both, &gray_traffic).is_empty());
        // No gray traffic: nothing to say.
        assert!(idle(&spec, &[], &[sent("r-0", Kind::Ordinary, "base")]).is_empty());
    }
}
