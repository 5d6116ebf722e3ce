//! A PgBouncer of a test's own, in front of the local PostgreSQL: the pooler users put there,
//! in the mode they run it.
//!
//! Debian's `pgbouncer` package (1.18; `scripts/services up` installs it). Each
//! [`PgBouncer`] is a process on an ephemeral 127.0.0.1 port, stopped on drop. Run as root (as
//! CI does), it switches to the `postgres` user, since PgBouncer refuses to run as root.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services::{postgres_url, unique};

/// PgBouncer's `pool_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client connection, for its lifetime.
    Session,
    /// A server connection per transaction: session state (`SET`) leaks between clients.
    Transaction,
}

/// A running PgBouncer for the local PostgreSQL's database `test`. Two server connections per
/// user and database, so that clients do share them.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PgBouncer {
    /// Starts one in `mode`, ignoring the `extra_float_digits` startup parameter (sqlx sends it,
    /// and PgBouncer refuses unknown parameters). `ignore_options`: ignore `options` too, the
    /// setting users add when a client sends it (PgBouncer refuses such clients otherwise): the
    /// parameter is then dropped, `-c search_path=...` included.
    ///
    /// # Panics
    ///
    /// When PgBouncer is not installed or does not come up within 10 s.
    pub fn start(mode: PoolMode, ignore_options: bool) -> PgBouncer {
        let dir = std::env::temp_dir().join(unique("pgbouncer"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let server = url_parts::parse(&postgres_url());
        let config = format!(
            "[databases]\n\
             test = host={host} port={pg_port} dbname=test\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = {mode}\n\
             default_pool_size = 2\n\
             {ignore}\
             logfile = {dir}/pgbouncer.log\n",
            host = server.host,
            pg_port = server.port,
            dir = dir.display(),
            mode = match mode {
                PoolMode::Session => "session",
                PoolMode::Transaction => "transaction",
            },
            // sqlx sends `extra_float_digits`, which PgBouncer refuses: every sqlx user behind
            // PgBouncer ignores it.
            ignore = if ignore_options {
                "ignore_startup_parameters = extra_float_digits, options\n"
            } else {
                "ignore_startup_parameters = extra_float_digits\n"
            },
        );
        write(&dir, "pgbouncer.ini", &config);
        write(&dir, "users.txt", "\"postgres\" \"\"\n\"root\" \"\"\n");
        let binary = ["/usr/sbin/pgbouncer", "pgbouncer"]
            .into_iter()
            .find(|b| !b.starts_with('/') || std::path::Path::new(b).exists())
            .unwrap();
        let mut cmd = Command::new(binary);
        if is_root() {
            // The postgres user reads the files and writes the log.
            let _ = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status();
            cmd.args(["-u", "postgres"]);
        }
        // What it says before its log file is open (a bad config, a port taken) goes here.
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = cmd
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("pgbouncer is installed (scripts/services up)");
        let mut bouncer = PgBouncer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Ours must be the one listening: one that exited (another process took the port
            // between `free_port` and its bind) is not up, whoever answers.
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                panic!("pgbouncer exited ({status}): {}", bouncer.log());
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return bouncer;
            }
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not listen on {port}: {}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URL of database `test` through this PgBouncer, as user `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
    }

    /// PgBouncer's log so far (and what it wrote to stderr).
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        read("stderr.log") + &read("pgbouncer.log")
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let mut f = std::fs::File::create(dir.join(name)).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The host and port of a `postgres://` URL (no URL crate for two fields).
mod url_parts {
    pub(super) struct Parts {
        pub(super) host: String,
        pub(super) port: u16,
    }

    pub(super) fn parse(url: &str) -> Parts {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = hostport
            .rsplit_once(':')
            .map_or((hostport, 5432), |(h, p)| (h, p.parse().unwrap_or(5432)));
        Parts {
            host: host.to_owned(),
            port,
        }
    }
}
