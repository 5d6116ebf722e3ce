//! inventory v1 (HTTP): reserves stock in the lane's schema. It has no gray version: gray
//! requests fall back to v1 and keep their lane there, so their reservations land in the
//! gray shadow schema.
//!
//! `POST /reserve` (for an order) and `POST /pick` (for its shipment) take
//! `purpose request_id item` and answer `204 No Content`; an unknown item is a `404`.
//! [`InventoryClient`] is how orders and fulfillment call it.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use graylane::Lane;
use graylane::http::{BoxError, RequestLane};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};

use super::{hidden, is_unknown_item, quoted};
use crate::app::App;
use crate::demo::hops::HopLayer;

/// inventory's routes with their layers: the mesh lane layer (the lane on the wire is
/// trusted), spans and metrics, and the demo's `hops`.
pub(crate) fn router(app: &Arc<App>, hops: HopLayer) -> Router {
    Router::new()
        .route("/reserve", post(reserve))
        .route("/pick", post(reserve))
        .with_state(app.clone())
        .layer(hops)
        .layer(app.traced("inventory"))
        .layer(app.mesh(Lane::BASE))
}

async fn reserve(
    State(app): State<Arc<App>>,
    RequestLane(ctx): RequestLane,
    body: String,
) -> Result<StatusCode, (StatusCode, String)> {
    let mut words = body.split_whitespace();
    let (Some(purpose), Some(request_id), Some(item), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err((
            StatusCode::BAD_REQUEST,
            "expected: purpose request_id item\n".into(),
        ));
    };
    let failed = |e: &dyn std::fmt::Display| {
        let message = hidden("inventory", "could not reserve stock", e);
        (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n"))
    };
    // The pool of the request's lane: the base schema, or the lane's shadow.
    let pool = app.pools.current().map_err(|e| failed(&e))?;
    let reserved = async {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE stock SET quantity = quantity - 1 WHERE item = $1")
            .bind(item)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO reservations (request_id, item, purpose, mirror) VALUES ($1, $2, $3, $4)",
        )
        .bind(request_id)
        .bind(item)
        .bind(purpose)
        .bind(ctx.is_mirror())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    };
    match reserved.await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) if is_unknown_item(&e) => Err((
            StatusCode::NOT_FOUND,
            format!("unknown item {}\n", quoted(item)),
        )),
        Err(e) => Err(failed(&e)),
    }
}

/// Why stock is reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// For an order (`POST /reserve`).
    Order,
    /// For picking an order's shipment (`POST /pick`).
    Pick,
}

/// A client of inventory over `S`, an HTTP client service that carries the lane and routes to
/// inventory's address (the [`App::inventory`] stack). Cheap to make: wrap the transport
/// where you call.
#[derive(Clone, Debug)]
pub(crate) struct InventoryClient<S> {
    inner: S,
}

impl<S> InventoryClient<S> {
    /// A client over `inner`.
    pub(crate) fn new(inner: S) -> InventoryClient<S> {
        InventoryClient { inner }
    }
}

impl<S, B> InventoryClient<S>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    /// Reserves one `item` for `request_id`, in the current lane.
    pub(crate) async fn reserve(
        self,
        purpose: Purpose,
        request_id: &str,
        item: &str,
    ) -> Result<(), BoxError> {
        let (path, word) = match purpose {
            Purpose::Order => ("/reserve", "order"),
            Purpose::Pick => ("/pick", "pick"),
        };
        // The authority is the router's to fill in: inventory's address for every lane.
        let req = http::Request::post(format!("http://inventory{path}")).body(Full::new(
            Bytes::from(format!("{word} {request_id} {item}")),
        ))?;
        let res = self.inner.oneshot(req).await.map_err(Into::into)?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let body = res.into_body().collect().await.map_err(Into::into)?;
        let body = String::from_utf8_lossy(&body.to_bytes()).trim().to_owned();
        Err(format!("inventory answered {status}: {body}").into())
    }
}
