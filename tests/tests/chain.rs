//! Thousands of interleaved requests of different lanes go through an edge and a chain of three
//! in-process services (tasks joined by channels, headers as the wire), with spawned and blocking
//! work inside each hop. Every request must arrive at the last hop with its own lane, and the
//! hop without a gray version must serve it from base without dropping the lane.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use graylane::coloring::SimpleRequest;
use graylane::spec::LaneSpec;
use graylane::{Lane, LaneContext, LaneFutureExt, Propagator, Rejection, current_lane, task};
use graylane_e2e::reference_spec;
use tokio::sync::{mpsc, oneshot};

type Headers = HashMap<String, String>;

struct Call {
    id: usize,
    headers: Headers,
    trail: Vec<String>,
    reply: oneshot::Sender<(usize, Vec<String>)>,
}

/// A service: extracts the lane, records `service:served_lane:lane` and what a spawned task and
/// a blocking closure saw, then calls the next hop with the lane injected.
fn service(
    name: &'static str,
    spec: LaneSpec,
    propagator: Propagator,
    next: Option<mpsc::Sender<Call>>,
) -> mpsc::Sender<Call> {
    let (tx, mut rx) = mpsc::channel::<Call>(256);
    tokio::spawn(async move {
        while let Some(mut call) = rx.recv().await {
            let spec = spec.clone();
            let propagator = propagator.clone();
            let next = next.clone();
            let ctx = propagator.extract(&call.headers);
            let ctx = ctx.with_served(spec.serving_lane(name, ctx.lane()));
            // Each request is handled in its own task, so requests interleave freely.
            task::spawn(
                async move {
                    tokio::task::yield_now().await;
                    let spawned = task::spawn(async { current_lane() }).await.unwrap();
                    let blocking = task::spawn_blocking(current_lane).await.unwrap();
                    let here = LaneContext::current();
                    call.trail.push(format!(
                        "{name}:{}:{}:{spawned}:{blocking}",
                        here.served(),
                        here.lane()
                    ));
                    match next {
                        Some(next) => {
                            let mut headers = Headers::new();
                            propagator.inject(&here, &mut headers);
                            call.headers = headers;
                            next.send(call).await.ok();
                        }
                        None => {
                            call.reply.send((call.id, call.trail)).ok();
                        }
                    }
                }
                .with_lane(ctx),
            );
        }
    });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_lanes_never_mix_and_fall_back_with_reentry() {
    let spec = reference_spec();
    let edge = spec.edge().unwrap();
    let propagator = spec.propagator();
    let gray = Lane::new("gray").unwrap();
    let key = spec.trust.token.as_ref().unwrap().load_key().unwrap();
    let token = key.mint(gray, SystemTime::now() + Duration::from_secs(600));

    // gateway (no gray version) -> inventory (no gray version) -> orders (gray version).
    let orders = service("orders", spec.clone(), propagator.clone(), None);
    let inventory = service("inventory", spec.clone(), propagator.clone(), Some(orders));
    let gateway = service("gateway", spec.clone(), propagator.clone(), Some(inventory));

    let n = 3000;
    let mut expected = Vec::with_capacity(n);
    let mut replies = Vec::with_capacity(n);
    for id in 0..n {
        // Four kinds of client, interleaved.
        let mut req = match id % 4 {
            0 => SimpleRequest::new("/").header("x-user-group", "beta"),
            1 => SimpleRequest::new("/").header("x-gray-lane", "gray"), // forged
            2 => SimpleRequest::new("/").header("x-gray-lane-token", &token),
            _ => SimpleRequest::new("/"),
        };
        let lane = edge.admit(&mut req).context().lane();
        expected.push(if id % 4 == 0 || id % 4 == 2 {
            gray
        } else {
            Lane::BASE
        });
        let mut headers = Headers::new();
        propagator.inject(&LaneContext::new(lane), &mut headers);
        let (reply, rx) = oneshot::channel();
        gateway
            .send(Call {
                id,
                headers,
                trail: Vec::new(),
                reply,
            })
            .await
            .unwrap();
        replies.push(rx);
    }

    let mut gray_seen = 0;
    for rx in replies {
        let (id, trail) = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("every request is answered")
            .unwrap();
        let lane = expected[id];
        let want = if lane.is_base() {
            vec![
                "gateway:base:base:base:base".to_owned(),
                "inventory:base:base:base:base".to_owned(),
                "orders:base:base:base:base".to_owned(),
            ]
        } else {
            gray_seen += 1;
            vec![
                // Served by base, lane kept, and kept in spawned and blocking work.
                "gateway:base:gray:gray:gray".to_owned(),
                "inventory:base:gray:gray:gray".to_owned(),
                // Re-entry: the next service with a gray version serves it.
                "orders:gray:gray:gray:gray".to_owned(),
            ]
        };
        assert_eq!(trail, want, "request {id}");
    }
    assert_eq!(gray_seen, n / 2);
    assert_eq!(edge.stats().get(Rejection::Untrusted), (n / 4) as u64);
    assert_eq!(
        propagator.stats().total(),
        0,
        "nothing on the internal wire is refused"
    );
}
