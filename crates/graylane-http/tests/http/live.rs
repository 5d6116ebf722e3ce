//! A live edge on a real server, its spec file swapped the way a Kubernetes ConfigMap volume
//! swaps it, 100 times, under concurrent requests: every response is decided by exactly one
//! revision, the one its handler sees.

use std::path::Path;

use graylane_core::live::{LiveSpec, Revision};

use super::*;

/// Odd revisions color the beta group gray, even ones blue.
fn spec_text(to: &str) -> String {
    format!(
        "services: [{{name: gateway}}]\n\
         lanes: [{{name: gray}}, {{name: blue}}]\n\
         coloring: {{rules: [{{lane: {to}, match: {{header: {{name: x-user-group, exact: beta}}}}}}]}}\n"
    )
}

/// Publishes `text` as a ConfigMap volume does: a new directory, and a `..data` symlink
/// renamed over the old one (`lanes.yaml -> ..data/lanes.yaml` never changes).
#[cfg(unix)]
fn publish(dir: &Path, n: u64, text: &str) {
    let version = dir.join(format!("..rev_{n}"));
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("lanes.yaml"), text).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_configmap_swaps_under_load_each_request_sees_one_revision() {
    let dir = std::env::temp_dir().join(format!("graylane-live-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    publish(&dir, 1, &spec_text("gray"));
    std::os::unix::fs::symlink("..data/lanes.yaml", dir.join("lanes.yaml")).unwrap();
    let path = dir.join("lanes.yaml");
    let live = LiveSpec::from_path(&path).unwrap();
    let _watcher = live.watch(&path, Duration::from_millis(2));

    // The handler answers with its context and with what the revision it was given says.
    let app = Router::new()
        .route(
            "/",
            get(|req: axum::extract::Request| async move {
                let ctx = *req.extensions().get::<LaneContext>().unwrap();
                let revision = req.extensions().get::<Arc<Revision>>().unwrap();
                let colored = revision.spec().coloring.rules[0].lane;
                format!(
                    "{} {} {} {}",
                    ctx.lane(),
                    ctx.revision(),
                    revision.number(),
                    colored
                )
            }),
        )
        .layer(LaneLayer::live_edge(live.clone()));
    let addr = serve(app).await;

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let done = done.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut answered = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let res = client
                        .get(format!("http://{addr}/"))
                        .header("x-user-group", "beta")
                        .send()
                        .await
                        .unwrap();
                    let marked = res.headers()["x-gray-lane"].to_str().unwrap().to_owned();
                    let body = res.text().await.unwrap();
                    answered.push((marked, body));
                }
                answered
            })
        })
        .collect();
    for n in 2..=101u64 {
        publish(
            &dir,
            n,
            &spec_text(if n % 2 == 0 { "blue" } else { "gray" }),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while live.current().number() != n {
            assert!(
                Instant::now() < deadline,
                "revision {n}: {:?}",
                live.stats()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    done.store(true, Ordering::Relaxed);
    let mut revisions = std::collections::BTreeSet::new();
    let mut requests = 0;
    for task in load {
        for (marked, body) in task.await.unwrap() {
            let parts: Vec<&str> = body.split(' ').collect();
            let [lane, in_context, handed, colored] = parts[..] else {
                panic!("{body}")
            };
            let want = if in_context.parse::<u64>().unwrap() % 2 == 1 {
                "gray"
            } else {
                "blue"
            };
            assert_eq!(
                (lane, handed, colored, marked.as_str()),
                (want, in_context, want, want),
                "one revision decided the lane, marked the response and reached the handler"
            );
            revisions.insert(in_context.to_owned());
            requests += 1;
        }
    }
    assert_eq!(live.stats().applied, 100);
    assert!(
        revisions.len() > 10,
        "the load ran across the swaps: {revisions:?}"
    );
    eprintln!("{requests} requests across {} revisions", revisions.len());
    let _ = std::fs::remove_dir_all(dir);
}
