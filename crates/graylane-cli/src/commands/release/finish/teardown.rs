//! The steps of `finish` that reach the stores: the control topic, the database, Redis, the
//! broker's consumer groups, and the manifests directory.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

use super::{Outcome, Teardown};
use crate::commands::audit::{connect_redis, glob_escape};
use crate::commands::runtime;
use crate::commands::shadow::Db;
use crate::{Fail, bad_input};

/// Keys per `SCAN` reply and per `UNLINK`.
const BATCH: usize = 500;

impl Teardown<'_> {
    fn kafka(&self) -> Option<ClientConfig> {
        let brokers = self.args.stores.kafka_brokers.as_deref()?;
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        Some(config)
    }

    /// Step 2: every lane consumer of every `--group` stopped, every grant back with base.
    pub(super) fn drain(&mut self) -> Result<bool, Fail> {
        let Some(config) = self.kafka().filter(|_| !self.args.groups.is_empty()) else {
            self.add(
                "consumers",
                Outcome::Skipped,
                "no --group: the lane's Kafka consumers are not waited for",
            );
            return Ok(true);
        };
        let timeout = Duration::from_secs(self.args.drain_timeout);
        for group in self.args.groups.clone() {
            let started = Instant::now();
            let mut waited = false;
            loop {
                let read = graylane_kafka::lane_handback(
                    &config,
                    &self.args.control_topic,
                    &group,
                    self.lane,
                    Duration::from_secs(30),
                );
                let handback = match read {
                    Ok(h) => h,
                    Err(e)
                        if e.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition) =>
                    {
                        // A misspelt --control-topic would read as "nothing live".
                        let why = format!(
                            "control topic {} does not exist (check --control-topic)",
                            self.args.control_topic
                        );
                        if !self.stop("consumers", why) {
                            return Ok(false);
                        }
                        break;
                    }
                    Err(e) => {
                        return Err(bad_input(format!(
                            "control topic {}: {e}",
                            self.args.control_topic
                        )));
                    }
                };
                if handback.released() {
                    let (outcome, how) = if waited {
                        (
                            Outcome::Done,
                            format!("handed back after {:.1} s", started.elapsed().as_secs_f64()),
                        )
                    } else {
                        (Outcome::Nothing, "none live, no grant open".to_owned())
                    };
                    self.add("consumers", outcome, format!("group {group}: {how}"));
                    break;
                }
                let state = format!(
                    "group {group}: lane instances live {:?}, grants open {:?}",
                    handback.live,
                    handback
                        .open_grants
                        .iter()
                        .map(|(t, p)| format!("{t}/{p}"))
                        .collect::<Vec<_>>()
                );
                if self.args.dry_run {
                    self.add(
                        "consumers",
                        Outcome::Remains,
                        format!("would wait: {state}"),
                    );
                    break;
                }
                if started.elapsed() >= timeout {
                    if !self.stop(
                        "consumers",
                        format!(
                            "not drained after {} s: {state} (are the lane's Deployments gone?)",
                            timeout.as_secs()
                        ),
                    ) {
                        return Ok(false);
                    }
                    break;
                }
                if !waited && !self.args.json {
                    println!("finish: consumers: waiting: {state}");
                }
                waited = true;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(true)
    }

    /// Step 4: the safe drop of the lane's shadow.
    pub(super) fn drop_shadow(&mut self) -> Result<bool, Fail> {
        let Some(url) = self.args.stores.database_url.clone() else {
            self.add("shadow", Outcome::Skipped, "no --database-url");
            return Ok(true);
        };
        let db = Db::open(&self.data_spec, &url)?;
        let name = db.name(self.lane)?;
        if self.args.dry_run {
            self.add(
                "shadow",
                Outcome::Skipped,
                format!("would drop {name} (dry run)"),
            );
            return Ok(true);
        }
        let dropped = runtime()?.block_on(db.drop_lane(self.lane))?;
        if dropped {
            self.add("shadow", Outcome::Done, format!("dropped {name}"));
        } else {
            self.add("shadow", Outcome::Nothing, format!("{name} is not there"));
        }
        Ok(true)
    }

    /// Step 5: every key under the lane's prefix, by `SCAN MATCH` and `UNLINK`.
    pub(super) fn unlink_keys(&mut self) -> Result<bool, Fail> {
        let Some(url) = self.args.stores.redis_url.clone() else {
            self.add("redis", Outcome::Skipped, "no --redis-url");
            return Ok(true);
        };
        let prefix = self.data_spec.data_names(self.lane).redis_prefix;
        let dry_run = self.args.dry_run;
        let count = runtime()?.block_on(unlink_prefix(&url, &prefix, dry_run))?;
        let (outcome, detail) = match (count, dry_run) {
            (0, _) => (Outcome::Nothing, format!("no key under {prefix:?}")),
            (n, true) => (
                Outcome::Skipped,
                format!("would unlink {n} key(s) under {prefix:?}"),
            ),
            (n, false) => (
                Outcome::Done,
                format!("unlinked {n} key(s) under {prefix:?}"),
            ),
        };
        self.add("redis", outcome, detail);
        Ok(true)
    }

    /// Step 6: the lane's consumer group of each `--group`.
    pub(super) fn delete_groups(&mut self) -> Result<bool, Fail> {
        let Some(config) = self.kafka().filter(|_| !self.args.groups.is_empty()) else {
            self.add("groups", Outcome::Skipped, "no --group");
            return Ok(true);
        };
        let suffix = self.data_spec.data_names(self.lane).kafka_group_suffix;
        let names: Vec<String> = self
            .args
            .groups
            .iter()
            .map(|g| format!("{g}{suffix}"))
            .collect();
        if self.args.dry_run {
            self.add(
                "groups",
                Outcome::Skipped,
                format!("would delete {}", names.join(", ")),
            );
            return Ok(true);
        }
        let bootstrap = self.args.stores.kafka_brokers.clone().unwrap_or_default();
        if supports_delete_groups(&bootstrap) == Some(false) {
            self.add(
                "groups",
                Outcome::Skipped,
                format!(
                    "the broker at {bootstrap} does not delete groups (no DeleteGroups API): delete {} there",
                    names.join(", ")
                ),
            );
            return Ok(true);
        }
        for (name, result) in delete_groups(config, &names)? {
            use rdkafka::types::RDKafkaErrorCode as Code;
            match result {
                Ok(()) => self.add("groups", Outcome::Done, format!("deleted {name}")),
                Err(Code::GroupIdNotFound) => {
                    self.add("groups", Outcome::Nothing, format!("{name} is not there"))
                }
                Err(Code::NonEmptyGroup) => self.add(
                    "groups",
                    Outcome::Remains,
                    format!("{name} still has members: its consumers run"),
                ),
                Err(code) => self.add(
                    "groups",
                    Outcome::Remains,
                    format!("the broker did not delete {name}: {code}"),
                ),
            }
        }
        Ok(true)
    }

    /// Step 7: the manifests directory holds what the spec (without the lane) generates.
    pub(super) fn check_manifests(&mut self) -> Result<bool, Fail> {
        let Some(dir) = self.args.manifests.clone() else {
            self.add("manifests", Outcome::Skipped, "no --manifests");
            return Ok(true);
        };
        if self.args.dry_run {
            self.add(
                "manifests",
                Outcome::Skipped,
                format!(
                    "would check {} against the spec without the lane",
                    dir.display()
                ),
            );
            return Ok(true);
        }
        let spec = crate::commands::load(&self.args.spec)?;
        let rendered = graylane_mesh::generate(&spec).render();
        let drift = crate::manifest_dir::drift(&dir, &rendered)?;
        if drift.is_empty() {
            self.add(
                "manifests",
                Outcome::Nothing,
                format!("{} holds nothing of the lane", dir.display()),
            );
        } else {
            self.add("manifests", Outcome::Remains, drift.join("; "));
        }
        Ok(true)
    }
}

/// Unlinks every key that starts with `prefix` (only counts them when `dry_run`); how many.
async fn unlink_prefix(url: &str, prefix: &str, dry_run: bool) -> Result<u64, Fail> {
    if prefix.is_empty() {
        return Err(bad_input(
            "the lane's Redis prefix is empty: that is every key",
        ));
    }
    let redis_err = |e: redis::RedisError| bad_input(format!("{url}: {e}"));
    let mut conn = connect_redis(url).await?;
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    let mut count = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        // What MATCH returned, checked again: never a key outside the prefix.
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| k.starts_with(prefix.as_bytes()))
            .collect();
        if !keys.is_empty() && !dry_run {
            let _: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
        }
        count += keys.len() as u64;
        if next == 0 {
            return Ok(count);
        }
        cursor = next;
    }
}

/// Whether the first bootstrap broker offers the DeleteGroups API, by its ApiVersions answer;
/// `None` when it cannot be asked in plain text (a TLS listener, say). librdkafka aborts the
/// process when a broker lacks an admin API it calls (librdkafka #3663), so it is asked first.
fn supports_delete_groups(bootstrap: &str) -> Option<bool> {
    use std::io::{Read, Write};
    const API_VERSIONS: i16 = 18;
    const DELETE_GROUPS: i16 = 42;
    // The first bootstrap server, as librdkafka reads one: an optional `SCHEME://`, the port
    // 9092 when none is given; every address it resolves to, in turn.
    let server = bootstrap.split(',').next()?.trim();
    let server = server.rsplit_once("://").map_or(server, |(_, s)| s);
    let server = if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_owned()
    } else {
        format!("{server}:9092")
    };
    let mut stream = std::net::ToSocketAddrs::to_socket_addrs(&server)
        .ok()?
        .find_map(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).ok())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    // Request header v1 (key, version 0, correlation id, client id), an empty v0 body.
    let client = b"graylane";
    let mut request = Vec::new();
    request.extend_from_slice(&API_VERSIONS.to_be_bytes());
    request.extend_from_slice(&0i16.to_be_bytes());
    request.extend_from_slice(&1i32.to_be_bytes());
    request.extend_from_slice(&(client.len() as i16).to_be_bytes());
    request.extend_from_slice(client);
    stream
        .write_all(&(request.len() as i32).to_be_bytes())
        .ok()?;
    stream.write_all(&request).ok()?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let size = usize::try_from(i32::from_be_bytes(size)).ok()?;
    if size > 1 << 20 {
        return None;
    }
    let mut answer = vec![0u8; size];
    stream.read_exact(&mut answer).ok()?;
    // Correlation id (4), error code (2), then [key min max] as int16s.
    let error = i16::from_be_bytes(answer.get(4..6)?.try_into().ok()?);
    if error != 0 {
        return None;
    }
    let count = usize::try_from(i32::from_be_bytes(answer.get(6..10)?.try_into().ok()?)).ok()?;
    let keys = answer.get(10..10 + count.checked_mul(6)?)?;
    Some(
        keys.chunks_exact(6)
            .any(|k| i16::from_be_bytes([k[0], k[1]]) == DELETE_GROUPS),
    )
}

/// A group name, and whether the broker deleted it.
type Deleted = (String, Result<(), rdkafka::types::RDKafkaErrorCode>);

/// Deletes `names` on the broker; each name with `Ok`, or the broker's error code.
fn delete_groups(config: ClientConfig, names: &[String]) -> Result<Vec<Deleted>, Fail> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;

    let kafka_err = |e: rdkafka::error::KafkaError| bad_input(format!("kafka: {e}"));
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(kafka_err)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(15)));
    let results = runtime()?.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            admin.delete_groups(&refs, &options),
        )
        .await
    });
    let results = results
        .map_err(|_| bad_input("kafka: DeleteGroups was not answered within 20 s"))?
        .map_err(kafka_err)?;
    Ok(results
        .into_iter()
        .map(|r| match r {
            Ok(name) => (name, Ok(())),
            Err((name, code)) => (name, Err(code)),
        })
        .collect())
}
