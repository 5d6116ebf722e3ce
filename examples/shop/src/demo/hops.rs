//! The demo's bookkeeping, kept out of the handlers: which version of which service handled a
//! request, in which lane, and which lane's version served it.
//!
//! - [`HopLayer`], on every service, counts the requests the service answers and returns the
//!   path the request took from there on in the `x-shop-hops` response header:
//!   `orders v2 (lane gray, served gray) -> inventory v1 (lane gray, served base)`;
//! - [`Trail`], on every client, reads that header off the answers to the calls a handler
//!   makes, for the [`HopLayer`] around the handler to append;
//! - [`show`] writes the whole path into the body of the gateway's answers, where the person
//!   running the demo sees it;
//! - [`Hops::message`] counts the messages a Kafka handler handles.
//!
//! None of this is needed to keep a lane: it is how the demo shows that the lane was kept.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use graylane::LaneContext;
use http::{HeaderName, HeaderValue, Request, Response};
use tower::util::MapResponse;
use tower::util::future::MapResponseFuture;
use tower::{Layer, Service};

/// The response header that carries the path below a service.
pub(crate) const HEADER: HeaderName = HeaderName::from_static("x-shop-hops");

/// (service, version, requested lane, served lane).
pub(crate) type Hop = (&'static str, &'static str, String, String);

/// Requests handled per [`Hop`], for the report. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hops(Arc<Mutex<BTreeMap<Hop, u64>>>);

impl Hops {
    /// The layer that records the hops of `version` of `service`.
    pub(crate) fn layer(&self, service: &'static str, version: &'static str) -> HopLayer {
        HopLayer {
            hops: self.clone(),
            service,
            version,
            api: None,
        }
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> BTreeMap<Hop, u64> {
        self.0.lock().unwrap().clone()
    }

    /// How many requests or messages `service` has handled, in every version and lane.
    pub(crate) fn handled(&self, service: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(hop, _)| hop.0 == service)
            .map(|(_, n)| n)
            .sum()
    }

    /// `handling`, the future of a Kafka handler for one message, counted once it succeeds.
    /// Called where the handler is, in the message's lane.
    pub(crate) fn message<F, T, E>(
        &self,
        service: &'static str,
        version: &'static str,
        handling: F,
    ) -> impl Future<Output = Result<T, E>> + use<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let hop = hop(service, version, LaneContext::current());
        let hops = self.clone();
        async move {
            let result = handling.await;
            if result.is_ok() {
                hops.count(hop);
            }
            result
        }
    }

    fn count(&self, hop: Hop) {
        *self.0.lock().unwrap().entry(hop).or_default() += 1;
    }
}

fn hop(service: &'static str, version: &'static str, ctx: LaneContext) -> Hop {
    let mut lane = ctx.lane().to_string();
    if ctx.is_mirror() {
        lane.push_str(" (mirror)");
    }
    (service, version, lane, ctx.served().to_string())
}

/// `orders v2 (lane gray, served gray)`.
fn describe((service, version, lane, served): &Hop) -> String {
    format!("{service} {version} (lane {lane}, served {served})")
}

/// The paths below the request being handled, as its calls answer.
type Below = Arc<Mutex<Vec<String>>>;

tokio::task_local! {
    static BELOW: Below;
}

/// Records a service's hops: see the module docs. Goes inside the service's lane layer, whose
/// context it reads from the request.
#[derive(Clone, Debug)]
pub(crate) struct HopLayer {
    hops: Hops,
    service: &'static str,
    version: &'static str,
    /// Requests under this path prefix are counted as this service's (another API of the same
    /// deployment, such as orders' quotes, which place no order).
    api: Option<(&'static str, &'static str)>,
}

impl HopLayer {
    /// Counts the requests under `path_prefix` as `service`'s.
    pub(crate) fn api(mut self, path_prefix: &'static str, service: &'static str) -> HopLayer {
        self.api = Some((path_prefix, service));
        self
    }
}

impl<S> Layer<S> for HopLayer {
    type Service = HopService<S>;

    fn layer(&self, inner: S) -> HopService<S> {
        HopService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`HopLayer`].
#[derive(Clone, Debug)]
pub(crate) struct HopService<S> {
    inner: S,
    layer: HopLayer,
}

impl<S, B, R> Service<Request<B>> for HopService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    // Boxed: bookkeeping of a demo. A layer on a real hot path names its future instead
    // (graylane-http's server layer shows how).
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let ctx = req
            .extensions()
            .get::<LaneContext>()
            .copied()
            .unwrap_or_else(LaneContext::base);
        let service = match self.layer.api {
            Some((prefix, api)) if req.uri().path().starts_with(prefix) => api,
            _ => self.layer.service,
        };
        let hop = hop(service, self.layer.version, ctx);
        let below = Below::default();
        let answer = BELOW.scope(below.clone(), self.inner.call(req));
        let hops = self.layer.hops.clone();
        Box::pin(async move {
            let mut res = answer.await?;
            let mut path = vec![describe(&hop)];
            path.append(&mut below.lock().unwrap());
            if succeeded(&res) {
                hops.count(hop);
            }
            if let Ok(value) = HeaderValue::try_from(path.join(" -> ")) {
                res.headers_mut().insert(HEADER, value);
            }
            Ok(res)
        })
    }
}

/// A 2xx, and for gRPC no error status in the headers (a failed call's only frame).
fn succeeded<R>(res: &Response<R>) -> bool {
    res.status().is_success()
        && res
            .headers()
            .get("grpc-status")
            .is_none_or(|status| status == "0")
}

/// Collects the paths of a client's answers: see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TrailLayer;

impl<S> Layer<S> for TrailLayer {
    type Service = Trail<S>;

    fn layer(&self, inner: S) -> Trail<S> {
        Trail { inner }
    }
}

/// The service of [`TrailLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Trail<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for Trail<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = MapResponseFuture<S::Future, fn(Response<R>) -> Response<R>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The answer is read where it arrives: in the calling handler's task, inside the
        // `HopLayer` that collects it.
        MapResponse::new(&mut self.inner, collect as fn(Response<R>) -> Response<R>).call(req)
    }
}

fn collect<R>(res: Response<R>) -> Response<R> {
    if let Some(path) = res.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        // Outside a handler (a Kafka consumer's calls), there is no path to extend.
        let _ = BELOW.try_with(|below| below.lock().unwrap().push(path.to_owned()));
    }
    res
}

/// `router`, with the path of every successful answer written before its body:
/// `gateway v1 (lane base, served base) -> orders v1 ... | shipping: standard` (JSON answers
/// are left as they are).
pub(crate) fn show(router: Router) -> Router {
    router.layer(axum::middleware::map_response(write_path))
}

async fn write_path(res: Response<Body>) -> Response<Body> {
    let path = match res.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(path) if res.status().is_success() && !is_json(&res) => path.to_owned(),
        _ => return res,
    };
    let (mut parts, body) = res.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => return Response::new(Body::from(format!("reading the answer: {e}\n"))),
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let body = format!("{path} | {}", String::from_utf8_lossy(&body));
    Response::from_parts(parts, Body::from(body))
}

/// A JSON answer stays JSON: its path is in the header only.
fn is_json<B>(res: &Response<B>) -> bool {
    res.headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use graylane::Lane;
    use tower::{ServiceExt, service_fn};

    use super::*;

    fn gray() -> LaneContext {
        LaneContext::new(Lane::new("gray").unwrap())
    }

    #[tokio::test]
    async fn a_service_returns_its_hop_and_the_paths_of_its_calls() {
        let hops = Hops::default();
        let below = service_fn(|_: Request<()>| async {
            let mut res = Response::new(());
            res.headers_mut().insert(
                HEADER,
                HeaderValue::from_static("inventory v1 (lane gray, served base)"),
            );
            Ok::<_, Infallible>(res)
        });
        let client = TrailLayer.layer(below);
        let svc = hops
            .layer("orders", "v2")
            .layer(service_fn(move |_: Request<()>| {
                let client = client.clone();
                async move { client.oneshot(Request::new(())).await }
            }));
        let mut req = Request::new(());
        req.extensions_mut().insert(gray());
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(
            res.headers()[HEADER],
            "orders v2 (lane gray, served gray) -> inventory v1 (lane gray, served base)"
        );
        assert_eq!(hops.handled("orders"), 1);
        let hop = ("orders", "v2", "gray".to_owned(), "gray".to_owned());
        assert_eq!(hops.snapshot()[&hop], 1);
    }

    #[tokio::test]
    async fn failed_answers_are_not_counted() {
        let hops = Hops::default();
        let svc = hops
            .layer("orders", "v1")
            .layer(service_fn(|_: Request<()>| async {
                let mut res = Response::new(());
                res.headers_mut()
                    .insert("grpc-status", HeaderValue::from_static("5"));
                Ok::<_, Infallible>(res)
            }));
        let res = svc.oneshot(Request::new(())).await.unwrap();
        assert_eq!(res.headers()[HEADER], "orders v1 (lane base, served base)");
        assert_eq!(hops.handled("orders"), 0);
    }

    #[tokio::test]
    async fn a_message_is_counted_in_its_lane_once_handled() {
        let hops = Hops::default();
        // The handler is called in the message's lane, as the consumer calls it.
        let ctx = gray().with_served(Lane::BASE);
        ctx.scope(|| hops.message("fulfillment", "v1", async { Ok::<_, ()>(()) }))
            .await
            .unwrap();
        hops.message("fulfillment", "v1", async { Err::<(), _>(()) })
            .await
            .unwrap_err();
        let hop = ("fulfillment", "v1", "gray".to_owned(), "base".to_owned());
        assert_eq!(hops.snapshot()[&hop], 1);
        assert_eq!(hops.handled("fulfillment"), 1);
    }

    #[tokio::test]
    async fn the_edge_shows_the_path_before_the_body() {
        let mut res = Response::new(Body::from("shipping: standard\n"));
        res.headers_mut().insert(
            HEADER,
            HeaderValue::from_static("gateway v1 (lane base, served base)"),
        );
        let res = write_path(res).await;
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(
            body,
            "gateway v1 (lane base, served base) | shipping: standard\n"
        );
        let mut refused = Response::new(Body::from("no\n"));
        *refused.status_mut() = http::StatusCode::BAD_REQUEST;
        refused
            .headers_mut()
            .insert(HEADER, HeaderValue::from_static("gateway v1"));
        let refused = write_path(refused).await;
        let body = axum::body::to_bytes(refused.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body, "no\n");
    }
}
