//! gateway v1 (HTTP, the edge): every request from outside enters here and gets its lane
//! (signed tokens, coloring rules; forged lane marks are stripped), a share of them is
//! mirrored to the gray lane, and the checkout is placed with orders over gRPC.
//!
//! `POST /checkout`: the body names the item (`book` when empty), `x-user-id` says who buys,
//! `x-request-id` identifies the request (one is made when absent; the answer carries it
//! back). A success is `200` with the shipping; bad input is a `4xx` with a one-line message
//! that says what to send instead; orders' gRPC status becomes the HTTP status
//! ([`http_status`]). `POST /quote`: the same body, answered with a JSON quote
//! (`{item, price, shipping, quote_id, quoted_at}`) and nothing stored.
//!
//! `GET /metrics`: the lane metrics, as Prometheus text; `GET /graylane/mirror`: what the
//! mirror's comparison has seen, as JSON (see `docs/mirroring.md`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use graylane::Lane;
use graylane::http::{BoxError, CompareConfig, LaneLayer, MirrorConfig, MirrorLayer};
use graylane::otel::LaneTraceLayer;
use http::{HeaderMap, HeaderName, StatusCode};
use tonic::Code;
use tower::ServiceBuilder;

use super::orders::{self, Order, OrdersClient, REQUEST_ID_RULE};
use super::quoted;
use crate::app::{App, HttpClient};
use crate::demo::hops::HopLayer;

/// The request id header, in both directions.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a checkout without a body buys.
const DEFAULT_ITEM: &str = "book";

/// The public gateway, the edge: the lane layer that decides lanes, spans and metrics, the
/// `mirror`, the demo's `hops`, and `GET /metrics`.
pub(crate) fn public(app: &Arc<App>, hops: HopLayer, mirror: MirrorLayer<HttpClient>) -> Router {
    // The edge's counters (stripped marks, refused tokens) and the mirror's copies, in the
    // gateway's metrics.
    let metrics = app.metrics("gateway");
    let (copies, compared, report) = (mirror.clone(), mirror.clone(), mirror.clone());
    metrics
        .observe_propagator(&app.propagator)
        .observe_spec(&app.live)
        .observe_mirror(move || {
            let s = copies.stats();
            (s.sent, s.failed, s.skipped_busy + s.skipped_body)
        })
        .observe_mirror_comparison(move || {
            let report = compared.report();
            let counts = report.routes.iter().flat_map(|r| {
                r.results()
                    .into_iter()
                    .map(|(result, n)| (r.route.clone(), result, n))
            });
            counts.collect()
        });
    routes(app)
        .layer(hops)
        .layer(
            ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |e: BoxError| async move { (StatusCode::BAD_GATEWAY, e.to_string()) },
                ))
                .layer(mirror),
        )
        .layer(LaneTraceLayer::server("gateway", app.propagator.clone()).metrics(metrics))
        .layer(LaneLayer::live_edge(app.live.clone()))
        .merge(super::metrics_router(app))
        .route(
            "/graylane/mirror",
            get(move || async move {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    report.report().to_json(),
                )
            }),
        )
}

/// The gateway's internal listener, inside the mesh (the lane on the wire is trusted): where
/// the mirror copies go.
pub(crate) fn internal(app: &Arc<App>, hops: HopLayer) -> Router {
    routes(app).layer(hops).layer(app.mesh(Lane::BASE))
}

/// Mirrors `percent` of the public traffic to the gray lane, at the internal listener, and
/// compares the answers as the spec's `compare` of the gateway says (if it has one).
pub(crate) fn mirror(
    app: &App,
    internal: SocketAddr,
    percent: f64,
) -> Result<MirrorLayer<HttpClient>, BoxError> {
    let mut config = MirrorConfig::new(format!("http://{internal}").parse()?, Lane::new("gray")?)
        .percent(percent);
    let compare = app.spec.services.iter().find(|s| s.name == "gateway");
    if let Some(compare) = compare.and_then(|s| s.compare.as_ref()) {
        config = config.compare(CompareConfig::from_spec(compare)?);
    }
    Ok(MirrorLayer::new(
        app.http.clone(),
        app.propagator.clone(),
        config,
    ))
}

fn routes(app: &Arc<App>) -> Router {
    Router::new()
        .route("/checkout", post(checkout))
        .route("/quote", post(quote))
        .with_state(app.clone())
}

/// `POST /quote`: orders' quote of the item, as JSON.
async fn quote(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: String,
) -> Result<impl IntoResponse, Refusal> {
    let request_id = request_id(&headers)?;
    let q = OrdersClient::new(app.orders.clone())
        .quote(item(&body))
        .await?;
    let json = serde_json::json!({
        "item": q.item,
        "price": format!("{}.{:02}", q.price_cents / 100, q.price_cents % 100),
        "shipping": q.shipping,
        "quote_id": q.quote_id,
        "quoted_at": q.quoted_at,
    });
    Ok((
        [
            (REQUEST_ID, request_id),
            (http::header::CONTENT_TYPE, "application/json".to_owned()),
        ],
        json.to_string(),
    ))
}

async fn checkout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: String,
) -> Result<impl IntoResponse, Refusal> {
    let request_id = request_id(&headers)?;
    let order = Order {
        request_id: request_id.clone(),
        user_id: headers
            .get("x-user-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        item: item(&body),
    };
    let receipt = OrdersClient::new(app.orders.clone()).place(order).await?;
    Ok((
        [(REQUEST_ID, request_id)],
        format!("shipping: {}\n", receipt.shipping),
    ))
}

/// The item a body names: [`DEFAULT_ITEM`] when it names none.
fn item(body: &str) -> String {
    match body.trim() {
        "" => DEFAULT_ITEM.to_owned(),
        item => item.to_owned(),
    }
}

/// The client's `x-request-id`, or a new one when it sent none.
fn request_id(headers: &HeaderMap) -> Result<String, Refusal> {
    let Some(value) = headers.get(REQUEST_ID) else {
        return Ok(format!("{:016x}", fastrand::u64(..)));
    };
    match value.to_str() {
        Ok(id) if orders::is_request_id(id) => Ok(id.to_owned()),
        _ => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "x-request-id: expected {REQUEST_ID_RULE} (or no header, for one to be made), got {}",
                quoted(&String::from_utf8_lossy(value.as_bytes()))
            ),
        }),
    }
}

/// The HTTP status for a gRPC status of orders. The client's mistakes keep their 4xx;
/// orders failing is the gateway's upstream failing: `502 Bad Gateway`, or `503` / `504`
/// where gRPC says unavailable / too slow.
pub(crate) fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss => {
            StatusCode::BAD_GATEWAY
        }
    }
}

/// A checkout that did not happen: its status and a one-line message.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl From<tonic::Status> for Refusal {
    fn from(status: tonic::Status) -> Refusal {
        let code = http_status(status.code());
        let message = status.message().replace(['\r', '\n'], " ");
        Refusal {
            status: code,
            message: if code.is_client_error() {
                message
            } else {
                format!("checkout failed: {message}")
            },
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, format!("{}\n", self.message)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_statuses_become_http_statuses() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 502),
            (Code::Unknown, 502),
        ];
        for (code, http) in cases {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn a_refusal_is_one_line_and_says_whose_fault() {
        let refusal = Refusal::from(tonic::Status::not_found("unknown item \"chair\""));
        assert_eq!(refusal.status, StatusCode::NOT_FOUND);
        assert_eq!(refusal.message, "unknown item \"chair\"");
        let refusal = Refusal::from(tonic::Status::internal("orders v1: could\nnot store"));
        assert_eq!(refusal.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            refusal.message,
            "checkout failed: orders v1: could not store"
        );
    }

    #[test]
    fn a_missing_request_id_is_made_and_a_bad_one_refused() {
        let made = request_id(&HeaderMap::new()).unwrap();
        assert!(orders::is_request_id(&made), "{made}");
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, "demo-1".parse().unwrap());
        assert_eq!(request_id(&headers).unwrap(), "demo-1");
        headers.insert(REQUEST_ID, "demo 1".parse().unwrap());
        let refusal = request_id(&headers).unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        assert!(
            refusal
                .message
                .starts_with("x-request-id: expected 1 to 64"),
            "{}",
            refusal.message
        );
        assert!(
            refusal.message.ends_with(r#"got "demo 1""#),
            "{}",
            refusal.message
        );
    }
}
