//! What runs beside the primary: the copy's task, and with comparison the copy, its noise copy
//! and the comparison of their answers with the primary's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use graylane_core::{LaneContext, LaneFutureExt};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tower::ServiceExt;
use tower_service::Service;

use super::Shared;
use super::body::Primary;
use super::compare::{Captured, CompareConfig};
use crate::BoxError;

impl Shared {
    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The noise copy of `copy` (whose body is `body`): the same request on `lane`, a mirror
    /// copy too, to the noise target if there is one.
    fn noise_copy(
        &self,
        copy: &Request<Full<Bytes>>,
        body: Bytes,
        ctx: &LaneContext,
    ) -> Request<Full<Bytes>> {
        let mut noise = Request::new(Full::new(body));
        *noise.method_mut() = copy.method().clone();
        *noise.uri_mut() = match &self.noise_target {
            Some(target) => target.apply(copy.uri()),
            None => copy.uri().clone(),
        };
        *noise.version_mut() = copy.version();
        *noise.headers_mut() = copy.headers().clone();
        self.propagator.strip(noise.headers_mut());
        self.propagator.inject(ctx, noise.headers_mut());
        noise
    }
}

pub(super) async fn send_copy<M, B>(
    mirror: M,
    copy: Request<Full<Bytes>>,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
) where
    M: Service<Request<Full<Bytes>>, Response = Response<B>>,
    M::Error: Into<BoxError>,
{
    let outcome = tokio::time::timeout(shared.config.timeout, mirror.oneshot(copy)).await;
    let counter = match outcome {
        Ok(Ok(_response)) => &shared.counters.sent,
        Ok(Err(e)) => {
            tracing::debug!(error = %e.into(), "mirror copy failed");
            &shared.counters.failed
        }
        Err(_elapsed) => {
            tracing::debug!("mirror copy timed out");
            &shared.counters.failed
        }
    };
    shared.count(counter);
    drop(permit);
}

/// A copy to compare: the request, its body (for a noise copy), where the primary response
/// will come from, and the in-flight slot both hold.
pub(super) struct Job {
    pub(super) copy: Request<Full<Bytes>>,
    pub(super) body: Bytes,
    pub(super) primary: oneshot::Receiver<Primary>,
    pub(super) permit: OwnedSemaphorePermit,
}

/// How a copy's call ended, for comparing.
enum Fetched {
    Response(Captured),
    /// It answered, beyond the body cap.
    TooLarge,
    Failed,
}

/// Sends the job's copy (and a noise copy, when the route wants one), then compares their
/// responses with the primary's. One task and one deadline for all of it: the copies'
/// answers and the primary's capture all come in within the mirror's timeout, or the request
/// is not compared.
pub(super) async fn compare<M, B>(mirror: M, job: Job, shared: Arc<Shared>)
where
    M: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    M::Error: Into<BoxError>,
    M::Future: Send,
    B: Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let ledger = shared
        .ledger
        .as_ref()
        .expect("compare runs only with a ledger");
    let config = ledger.config();
    let Job {
        copy,
        body,
        primary,
        permit,
    } = job;
    let (route, noise_lane) = ledger.begin(copy.method(), copy.uri().path());
    let request_id = copy
        .headers()
        .get(&config.request_id)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The noise copy runs beside the copy, on its own lane.
    let noise = noise_lane.map(|lane| {
        let ctx = LaneContext::new(lane).with_mirror(true);
        let req = shared.noise_copy(&copy, body, &ctx);
        fetch(mirror.clone(), req, config).with_lane(ctx)
    });
    let mut answers = None;
    let primary = tokio::time::timeout(shared.config.timeout, async {
        let noised = async {
            match noise {
                Some(fetching) => Some(fetching.await),
                None => None,
            }
        };
        answers = Some(futures_util::future::join(fetch(mirror, copy, config), noised).await);
        primary.await.ok().flatten()
    })
    .await;
    let primary = primary.unwrap_or_else(|_elapsed| {
        tracing::debug!("mirror comparison timed out");
        None
    });
    // Timed out before the copies answered: both failed.
    let (mirrored, noised) =
        answers.unwrap_or_else(|| (Fetched::Failed, noise_lane.map(|_| Fetched::Failed)));

    let c = &shared.counters;
    shared.count(if matches!(mirrored, Fetched::Failed) {
        &c.failed
    } else {
        &c.sent
    });
    if let Some(n) = &noised {
        shared.count(if matches!(n, Fetched::Failed) {
            &c.failed
        } else {
            &c.noise_sent
        });
    }
    match (primary, mirrored) {
        (Some(primary), Fetched::Response(mirrored)) => {
            let noise = match noised {
                Some(Fetched::Response(n)) => Some(n),
                _ => None,
            };
            let request_id = request_id.or_else(|| primary.request_id.clone());
            ledger.record(&route, request_id, &primary, &mirrored, noise.as_ref());
        }
        _ => ledger.skip(&route),
    }
    drop(permit);
}

/// Calls `mirror` with `req` and reads the response within the comparison's body cap (the
/// caller bounds the time).
async fn fetch<M, B>(mirror: M, req: Request<Full<Bytes>>, config: &CompareConfig) -> Fetched
where
    M: Service<Request<Full<Bytes>>, Response = Response<B>>,
    M::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    let read = async {
        let res = mirror.oneshot(req).await.map_err(Into::into)?;
        let (parts, body) = res.into_parts();
        match Limited::new(body, config.max_body_bytes).collect().await {
            Ok(body) => Ok(Fetched::Response(Captured::of(
                parts.status,
                &parts.headers,
                config,
                body.to_bytes(),
            ))),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(Fetched::TooLarge),
            Err(e) => Err(e),
        }
    };
    read.await.unwrap_or_else(|e: BoxError| {
        tracing::debug!(error = %e, "mirror copy failed");
        Fetched::Failed
    })
}
