//! The demo's traffic: a [`Customer`] of the public gateway, and the mix [`drive`] sends —
//! ordinary users, a beta group, testers with a signed token, clients forging the lane
//! header — while the gray `fulfillment` consumer is stopped and restarted.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use graylane::Lane;
use graylane::http::{BoxError, RESPONSE_LANE_HEADER};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::app::HttpClient;
use crate::topology::Shop;

/// A client of the shop's public gateway: what the demo's traffic and the tests send.
#[derive(Clone, Debug)]
pub struct Customer {
    client: HttpClient,
    gateway: String,
}

/// What the gateway answered a checkout.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The lane the edge gave the request (its `x-gray-lane` mark on the answer).
    pub lane: String,
    /// The body: on success, the path the request took, hop by hop, and the shipping; else
    /// what was wrong.
    pub path: String,
    /// The request id the gateway used (`x-request-id` of the answer): the client's, or one
    /// it made.
    pub request_id: Option<String>,
}

impl Customer {
    /// A client of the gateway at `gateway` (`host:port`).
    pub fn new(gateway: impl std::fmt::Display) -> Customer {
        Customer {
            client: Client::builder(TokioExecutor::new()).build_http(),
            gateway: gateway.to_string(),
        }
    }

    /// `POST /checkout` of a book, as `user_id`, with `extra` headers (a beta group, a token,
    /// a forged lane ...).
    pub async fn checkout(
        &self,
        request_id: &str,
        user_id: &str,
        extra: &[(&str, &str)],
    ) -> Result<Checkout, BoxError> {
        let mut headers = vec![("x-request-id", request_id), ("x-user-id", user_id)];
        headers.extend_from_slice(extra);
        self.post(&headers, "book").await
    }

    /// `POST /quote` of a book: the gateway's JSON answer.
    pub async fn quote(&self, request_id: &str) -> Result<serde_json::Value, BoxError> {
        let req = http::Request::post(format!("http://{}/quote", self.gateway))
            .header("x-request-id", request_id)
            .body(Full::new(Bytes::from_static(b"book")))?;
        let res = self.client.request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!(
                "quote {request_id}: {status} {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// `GET /graylane/mirror`: what the gateway's mirror comparison has seen, as JSON.
    pub async fn mirror_report(&self) -> Result<serde_json::Value, BoxError> {
        Ok(serde_json::from_str(&self.get("/graylane/mirror").await?)?)
    }

    /// `GET path` of the gateway (`/metrics`, say): the body, as text.
    pub async fn get(&self, path: &str) -> Result<String, BoxError> {
        let req = http::Request::get(format!("http://{}{path}", self.gateway))
            .body(Full::new(Bytes::new()))?;
        let res = self.client.request(req).await?;
        let body = res.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8(body.to_vec())?)
    }

    /// `POST /checkout` with exactly these `headers` and `body` (the item).
    pub async fn post(&self, headers: &[(&str, &str)], body: &str) -> Result<Checkout, BoxError> {
        let mut req = http::Request::post(format!("http://{}/checkout", self.gateway));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .client
            .request(req.body(Full::new(Bytes::copy_from_slice(body.as_bytes())))?)
            .await?;
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, lane) = (res.status(), header(RESPONSE_LANE_HEADER));
        let request_id = header("x-request-id");
        let path = String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?;
        Ok(Checkout {
            status,
            lane: lane.unwrap_or_else(|| "?".into()),
            path,
            request_id,
        })
    }
}

/// Who sends a request of the demo's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// No lane asked for: base, or gray for the sticky 10% of users.
    Ordinary,
    /// `x-user-group: beta`: gray by a coloring rule.
    Beta,
    /// A signed lane token: gray.
    Tester,
    /// `x-gray-lane: gray` from outside: stripped at the edge.
    Forger,
}

impl Kind {
    /// Request `i` of the mix: 60% ordinary, 20% beta, 10% testers, 10% forgers.
    fn of(i: usize) -> Kind {
        match i % 10 {
            0..=5 => Kind::Ordinary,
            6 | 7 => Kind::Beta,
            8 => Kind::Tester,
            _ => Kind::Forger,
        }
    }
}

/// A request the demo sent, and what came of it.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub(crate) request_id: String,
    pub(crate) user_id: String,
    pub(crate) kind: Kind,
    /// The lane the edge gave it.
    pub(crate) lane: String,
    /// Whether the checkout succeeded.
    pub(crate) ok: bool,
    /// Whether the gray fulfillment consumer was running, with its partitions granted, when
    /// the request was sent.
    pub(crate) gray_consumer: bool,
}

/// Sends `n` checkouts with ids `{run}-{i}`, eight at a time, stopping the gray fulfillment
/// consumer at 40% and bringing it back at 70%: base takes its messages over in between, in
/// the gray lane, and hands them back, exactly.
pub(crate) async fn drive(shop: &mut Shop, run: &str, n: usize) -> Result<Vec<Sent>, BoxError> {
    let token = shop
        .spec()
        .trust
        .token
        .as_ref()
        .ok_or("the spec has no token settings")?
        .load_key()?
        .mint(
            Lane::new("gray")?,
            SystemTime::now() + Duration::from_secs(600),
        );
    let customer = Customer::new(shop.gateway());
    let mut sent = Vec::with_capacity(n);
    let started = Instant::now();
    let mut gray_consumer = true;
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        if chunk.contains(&(n * 4 / 10)) {
            shop.stop_gray_fulfillment().await?;
            gray_consumer = false;
            eprintln!(
                "  gray fulfillment stopped after {} messages",
                shop.gray_before
            );
        }
        if chunk.contains(&(n * 7 / 10)) {
            shop.start_gray_fulfillment().await?;
            shop.fulfillment_ready().await?;
            gray_consumer = true;
            eprintln!("  gray fulfillment restarted");
        }
        let calls = chunk.iter().map(|&i| {
            let kind = Kind::of(i);
            let request_id = format!("{run}-{i}");
            let user_id = format!("user-{}", i % 97);
            let extra = match kind {
                Kind::Ordinary => None,
                Kind::Beta => Some(("x-user-group", "beta".to_owned())),
                Kind::Tester => Some(("x-gray-lane-token", token.clone())),
                Kind::Forger => Some(("x-gray-lane", "gray".to_owned())),
            };
            let customer = customer.clone();
            async move {
                let extra: Vec<(&str, &str)> =
                    extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = customer.checkout(&request_id, &user_id, &extra).await?;
                Ok::<_, BoxError>(Sent {
                    request_id,
                    user_id,
                    kind,
                    lane: r.lane,
                    ok: r.status.is_success(),
                    gray_consumer,
                })
            }
        });
        for s in join_all(calls).await {
            sent.push(s?);
        }
        progress(sent.len(), chunk.len(), n);
    }
    eprintln!("  traffic done in {:.1?}", started.elapsed());
    Ok(sent)
}

/// Sends `n` quotes with ids `{run}-q{i}`, eight at a time: they store nothing, and a share of
/// them is mirrored and compared. Returns how many were answered.
pub(crate) async fn quotes(shop: &Shop, run: &str, n: usize) -> Result<usize, BoxError> {
    let customer = Customer::new(shop.gateway());
    let mut answered = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let calls = chunk.iter().map(|&i| {
            let (customer, id) = (customer.clone(), format!("{run}-q{i}"));
            async move { customer.quote(&id).await }
        });
        for answer in join_all(calls).await {
            answer?;
            answered += 1;
        }
    }
    Ok(answered)
}

/// A progress bar on a terminal; in logs, a line per quarter rather than a wall of carriage
/// returns.
fn progress(done: usize, last: usize, n: usize) {
    let width = 30;
    let filled = done * width / n;
    let bar = format!(
        "  traffic [{}{}] {done}/{n}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprint!("\r{bar}");
        if done == n {
            eprintln!();
        }
    } else if (done - last) * 4 / n != done * 4 / n {
        eprintln!("{bar}");
    }
}

/// Runs futures concurrently and collects their outputs in order. (A plain `tokio::spawn`:
/// the customer is outside the shop, with no lane to keep.)
async fn join_all<F: Future + Send + 'static>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("request task panicked"));
    }
    out
}
