//! Gray-release lanes for tonic.
//!
//! tonic services and channels are tower services over `http::Request`, so the
//! [`graylane_http`] layers work unchanged at the gRPC level — one `HeaderMap` carrier for HTTP
//! and gRPC alike:
//!
//! - server: `Server::builder().layer(LaneLayer::mesh(propagator).serving(lane))` extracts the
//!   lane from the request metadata and runs the handler in it; the handler reads the context
//!   with [`LaneRequestExt::lane_context`] or [`graylane_core::current_lane`];
//! - client: wrap the `Channel` with [`PropagateLaneLayer`](graylane_http::PropagateLaneLayer), or, for generated clients, use
//!   [`LaneInterceptor`] with `with_interceptor`;
//! - lane routing without a mesh: a [`LaneSwitch`](graylane_http::LaneSwitch) over one `Channel` per lane's version, with
//!   fallback to base; map its strict-mode refusal to a `Status` with [`status_from_error`].
//!
//! ```
//! use graylane_core::{Lane, LaneContext, LaneSet, Propagator};
//! use graylane_grpc::LaneInterceptor;
//! use tonic::service::Interceptor;
//!
//! let gray = Lane::new("gray")?;
//! let mut interceptor = LaneInterceptor::new(Propagator::new(LaneSet::new([gray])));
//! let req = LaneContext::new(gray)
//!     .scope(|| interceptor.call(tonic::Request::new(())))?;
//! assert_eq!(req.metadata().get("x-gray-lane").unwrap(), "gray");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "unary")]
#[cfg_attr(docsrs, doc(cfg(feature = "unary")))]
pub mod unary;

// The HTTP layers serve gRPC as they are; their one path is `graylane_http` (`graylane::http`).
// These aliases keep the paths this crate used to re-export them at working for one release.

/// Renamed: the layer lives in `graylane_http`.
#[deprecated(note = "use `graylane_http::LaneLayer` (`graylane::http::LaneLayer`)")]
pub type LaneLayer = graylane_http::LaneLayer;
/// Renamed: the layer lives in `graylane_http`.
#[deprecated(note = "use `graylane_http::LaneRouterLayer` (`graylane::http::LaneRouterLayer`)")]
pub type LaneRouterLayer = graylane_http::LaneRouterLayer;
/// Renamed: the service lives in `graylane_http`.
#[deprecated(note = "use `graylane_http::LaneSwitch` (`graylane::http::LaneSwitch`)")]
pub type LaneSwitch<S> = graylane_http::LaneSwitch<S>;
/// Renamed: the layer lives in `graylane_http`.
#[deprecated(
    note = "use `graylane_http::PropagateLaneLayer` (`graylane::http::PropagateLaneLayer`)"
)]
pub type PropagateLaneLayer = graylane_http::PropagateLaneLayer;
/// Renamed: the type lives in `graylane_http`.
#[deprecated(note = "use `graylane_http::Routed` (`graylane::http::Routed`)")]
pub type Routed = graylane_http::Routed;
/// Renamed: the type lives in `graylane_http`.
#[deprecated(note = "use `graylane_http::NoLaneVersion` (`graylane::http::NoLaneVersion`)")]
pub type NoLaneVersion = graylane_http::NoLaneVersion;
/// Renamed: the type lives in `graylane_http`.
#[deprecated(note = "use `graylane_http::BoxError` (`graylane::http::BoxError`)")]
pub type BoxError = graylane_http::BoxError;

use std::borrow::Cow;

use graylane_core::wire::join_values;
use graylane_core::{Extractor, Injector, Key, LaneContext, Propagator};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

/// A read-only view of tonic metadata as a lane carrier.
#[derive(Debug)]
pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        // Binary (`-bin`) keys never carry a lane; ASCII values are the wire format.
        self.0.get(key).map(|v| v.as_bytes())
    }
    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        all_values(self.0, key)
    }
}

/// Every value under `key`, joined as HTTP/2 header lines are (gRPC metadata is headers).
fn all_values<'a>(md: &'a MetadataMap, key: &Key) -> Option<Cow<'a, [u8]>> {
    join_values(md.get_all(key.as_str()).iter().map(|v| v.as_bytes()))
}

/// A mutable view of tonic metadata as a lane carrier.
#[derive(Debug)]
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

impl Extractor for MetadataInjector<'_> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(|v| v.as_bytes())
    }
    fn get_list(&self, key: &Key) -> Option<Cow<'_, [u8]>> {
        all_values(self.0, key)
    }
}

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        let value = match value {
            Cow::Borrowed(v) => MetadataValue::try_from(v),
            Cow::Owned(v) => MetadataValue::try_from(v),
        };
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), value) {
            self.0.insert(key, value);
        }
    }

    fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// A tonic interceptor that writes the current lane into every outbound request's metadata.
///
/// For generated clients: `OrdersClient::with_interceptor(channel, LaneInterceptor::new(p))`.
/// Interceptors run when the call is made, in the caller's task, where its lane is current.
#[derive(Clone, Debug)]
pub struct LaneInterceptor {
    propagator: Propagator,
}

impl LaneInterceptor {
    /// Writes lanes with `propagator`'s wire names.
    pub fn new(propagator: Propagator) -> LaneInterceptor {
        LaneInterceptor { propagator }
    }
}

impl tonic::service::Interceptor for LaneInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let ctx = LaneContext::current();
        self.propagator
            .inject(&ctx, &mut MetadataInjector(req.metadata_mut()));
        Ok(req)
    }
}

/// The lane of a tonic request.
pub trait LaneRequestExt {
    /// The context [`LaneLayer`](graylane_http::LaneLayer) attached to the request, or base without one.
    fn lane_context(&self) -> LaneContext;
}

impl<T> LaneRequestExt for tonic::Request<T> {
    fn lane_context(&self) -> LaneContext {
        self.extensions()
            .get::<LaneContext>()
            .copied()
            .unwrap_or_else(LaneContext::base)
    }
}

/// A `Status` for an error from a lane router: strict-mode refusals become `UNAVAILABLE` with
/// the reason; a `Status` inside is returned as it is; anything else is `UNKNOWN`.
pub fn status_from_error(error: graylane_http::BoxError) -> tonic::Status {
    if let Some(refused) = error.downcast_ref::<graylane_http::NoLaneVersion>() {
        return tonic::Status::unavailable(refused.to_string());
    }
    match error.downcast::<tonic::Status>() {
        Ok(status) => *status,
        Err(other) => tonic::Status::unknown(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graylane_core::{Lane, LaneSet};
    use tonic::service::Interceptor;

    fn gray() -> Lane {
        Lane::new("gray").unwrap()
    }

    #[test]
    fn metadata_round_trip() {
        let p = Propagator::new(LaneSet::new([gray()]));
        let mut md = MetadataMap::new();
        md.insert("baggage", "k=v".parse().unwrap());
        p.inject(
            &LaneContext::new(gray()).with_mirror(true),
            &mut MetadataInjector(&mut md),
        );
        assert_eq!(md.get("x-gray-lane").unwrap(), "gray");
        assert_eq!(
            md.get("baggage").unwrap(),
            "k=v,gray.lane=gray,gray.mirror=1"
        );
        let ctx = p.extract(&MetadataExtractor(&md));
        assert_eq!((ctx.lane(), ctx.is_mirror()), (gray(), true));
        assert!(p.strip(&mut MetadataInjector(&mut md)));
        assert_eq!(md.get("baggage").unwrap(), "k=v");
    }

    #[test]
    fn every_metadata_value_is_read_and_stripped() {
        let p = Propagator::new(LaneSet::new([gray()]));
        let mut md = MetadataMap::new();
        md.append("baggage", "k=v".parse().unwrap());
        md.append("baggage", "gray.lane=gray".parse().unwrap());
        assert_eq!(p.extract(&MetadataExtractor(&md)).lane(), gray());
        assert!(p.strip(&mut MetadataInjector(&mut md)));
        let left: Vec<_> = md.get_all("baggage").iter().collect();
        assert_eq!(left, ["k=v"]);
    }

    #[test]
    fn interceptor_injects_only_inside_a_lane() {
        let mut i = LaneInterceptor::new(Propagator::new(LaneSet::new([gray()])));
        let outside = i.call(tonic::Request::new(())).unwrap();
        assert!(outside.metadata().get("x-gray-lane").is_none());
        let inside = LaneContext::new(gray())
            .scope(|| i.call(tonic::Request::new(())))
            .unwrap();
        assert_eq!(inside.metadata().get("x-gray-lane").unwrap(), "gray");
    }

    #[test]
    fn request_ext_and_status_mapping() {
        use graylane_http::{BoxError, NoLaneVersion};

        let mut req = tonic::Request::new(());
        assert_eq!(req.lane_context(), LaneContext::base());
        req.extensions_mut().insert(LaneContext::new(gray()));
        assert_eq!(req.lane_context().lane(), gray());

        let refused: BoxError = Box::new(NoLaneVersion {
            service: "orders".into(),
            lane: gray(),
        });
        let status = status_from_error(refused);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("no version in lane gray"));
        let inner: BoxError = Box::new(tonic::Status::not_found("x"));
        assert_eq!(status_from_error(inner).code(), tonic::Code::NotFound);
    }
}
