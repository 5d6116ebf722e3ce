//! The local services graylane's tests run against, and names that keep tests apart.
//!
//! `scripts/services up` (in graylane's repository) installs and starts them on a Debian
//! machine: PostgreSQL on 127.0.0.1:5432 (trust, database `test`), MariaDB on 3306 (root, no
//! password), Redis on 6379. Each URL can be overridden from the environment.

use std::sync::atomic::{AtomicU64, Ordering};

/// PostgreSQL: `DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_url() -> String {
    from_env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// MariaDB / MySQL: `MYSQL_URL`, or `mysql://root@127.0.0.1:3306`.
pub fn mysql_url() -> String {
    from_env("MYSQL_URL", "mysql://root@127.0.0.1:3306")
}

/// Redis: `REDIS_URL`, or `redis://127.0.0.1:6379/`.
pub fn redis_url() -> String {
    from_env("REDIS_URL", "redis://127.0.0.1:6379/")
}

fn from_env(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A name no other test (in this process or another) uses at the same time:
/// `gltest_{what}_{pid}_{n}_{nanos}`. Given a `what` of lowercase ASCII letters, digits and `_`,
/// it is made of those alone, so it is a valid SQL identifier part, Redis key part and Kafka
/// topic or group name.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "gltest_{what}_{}_{}_{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_identifiers() {
        let (a, b) = (unique("x"), unique("x"));
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.starts_with("gltest_x_"), "{name}");
            assert!(
                name.bytes()
                    .all(|c| c == b'_' || c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{name}"
            );
        }
    }
}
