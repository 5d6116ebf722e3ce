//! [`RequestLane`]: the request's lane context as an axum extractor.

use std::sync::atomic::{AtomicBool, Ordering};

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use graylane_core::LaneContext;
use http::StatusCode;

/// The request's [`LaneContext`], as an axum extractor (feature `axum`).
///
/// # Without a [`LaneLayer`](super::LaneLayer) in front
///
/// The extractor **rejects** the request with [`MissingLaneLayer`] (500, logged once): a
/// handler that asks for the lane and silently gets base would write gray data to base. The
/// usual cause is an axum `.route(..)` added *after* `.layer(LaneLayer::..)`, which the layer
/// does not cover: add routes first, layers last. A handler that also serves requests without
/// the layer takes `Option<RequestLane>`, which is `None` there.
///
/// ```
/// use graylane_http::RequestLane;
/// async fn handler(RequestLane(ctx): RequestLane) -> String {
///     format!("lane={} served={}", ctx.lane(), ctx.served())
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLane(pub LaneContext);

impl<S: Send + Sync> FromRequestParts<S> for RequestLane {
    type Rejection = MissingLaneLayer;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<LaneContext>() {
            Some(ctx) => Ok(RequestLane(*ctx)),
            None => {
                static LOGGED: AtomicBool = AtomicBool::new(false);
                if !LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        path = %parts.uri.path(),
                        "{MissingLaneLayer} (logged once)"
                    );
                }
                Err(MissingLaneLayer)
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestLane {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<LaneContext>()
            .copied()
            .map(RequestLane))
    }
}

/// [`RequestLane`]'s rejection: no [`LaneLayer`](super::LaneLayer) ran before the handler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingLaneLayer;

impl std::fmt::Display for MissingLaneLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "RequestLane needs graylane's LaneLayer in front of the handler \
             (a route added after `.layer(..)` is not covered: add routes first)",
        )
    }
}

impl std::error::Error for MissingLaneLayer {}

impl IntoResponse for MissingLaneLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
