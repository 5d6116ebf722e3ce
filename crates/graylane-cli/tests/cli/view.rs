//! `graylane view`: the page served from the command line, and its refusals.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{SPEC, graylane, text, workspace};

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn the_view_serves_its_page_and_says_when_a_target_does_not_answer() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    // Nothing listens on port 9 of loopback: every poll fails, and the page says so.
    let mut child = Command::new(env!("CARGO_BIN_EXE_graylane"))
        .args([
            "view",
            "--scrape",
            "http://127.0.0.1:9/metrics",
            "--spec",
            SPEC,
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let panels = loop {
        if let Some(answer) = get(port, "/lanes/panels.json")
            && answer.contains("last poll failed")
        {
            break answer;
        }
        assert!(Instant::now() < deadline, "no failed poll shown in 20 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(panels.starts_with("HTTP/1.1 200"), "{panels}");
    let page = get(port, "/lanes/").unwrap();
    assert!(page.contains("<title>graylane — lanes</title>"), "{page}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_view_needs_a_source_and_one_only() {
    let (code, _, err) = text(&graylane(&["view"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = text(&graylane(&[
        "view",
        "--prometheus",
        "http://127.0.0.1:9090",
        "--scrape",
        "http://127.0.0.1:9464/metrics",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}
