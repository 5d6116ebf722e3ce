//! A unary gRPC service from an async function, and a typed unary client, without code
//! generation (feature `unary`).
//!
//! For examples, tests and small services whose messages are hand-written `prost` types: a
//! generated server and client are the usual way, and need `protoc` at build time. Every method
//! path under the service's name reaches the one function; [`UnaryClient::call`] calls one
//! method path over any transport, graylane's client layers included.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use graylane_grpc::unary::{ServiceName, unary_fn};
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Ping {
//!     #[prost(string, tag = "1")]
//!     text: String,
//! }
//!
//! struct Echo;
//! impl ServiceName for Echo {
//!     const NAME: &'static str = "demo.Echo";
//! }
//!
//! let service = unary_fn::<Echo, Ping, Ping, _, _>(|req: tonic::Request<Ping>| async move {
//!     Ok(tonic::Response::new(req.into_inner()))
//! });
//! // Ready for `tonic::transport::Server::builder().add_service(service)`.
//! assert_eq!(name_of(&service), "demo.Echo");
//! # fn name_of<S: tonic::server::NamedService>(_: &S) -> &'static str { S::NAME }
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Body;
use tonic::client::GrpcService;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tower_service::Service;

/// The gRPC service name (`package.Service`) of a [`unary_fn`] service: tonic's router needs
/// it as a constant of the service's type, hence a marker type.
pub trait ServiceName {
    /// `package.Service`.
    const NAME: &'static str;
}

/// The type parameters a [`UnaryFn`] only names (`fn` keeps it `Send` and `Sync`).
type Types<N, Req, Resp> = PhantomData<fn() -> (N, Req, Resp)>;

/// A unary gRPC service calling `F` with each request. Made by [`unary_fn`].
pub struct UnaryFn<N, Req, Resp, F> {
    f: F,
    _types: Types<N, Req, Resp>,
}

impl<N, Req, Resp, F: Clone> Clone for UnaryFn<N, Req, Resp, F> {
    fn clone(&self) -> Self {
        UnaryFn {
            f: self.f.clone(),
            _types: PhantomData,
        }
    }
}

impl<N, Req, Resp, F> std::fmt::Debug for UnaryFn<N, Req, Resp, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryFn").finish_non_exhaustive()
    }
}

/// A unary gRPC service named `N::NAME` that decodes `Req`, calls `f` and encodes its `Resp`
/// (protobuf, through `tonic-prost`).
pub fn unary_fn<N, Req, Resp, F, Fut>(f: F) -> UnaryFn<N, Req, Resp, F>
where
    N: ServiceName,
    F: Fn(Request<Req>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    UnaryFn {
        f,
        _types: PhantomData,
    }
}

impl<N: ServiceName, Req, Resp, F> NamedService for UnaryFn<N, Req, Resp, F> {
    const NAME: &'static str = N::NAME;
}

impl<N, Req, Resp, F, Fut, B> Service<http::Request<B>> for UnaryFn<N, Req, Resp, F>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Request<Req>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> <Self as Service<http::Request<B>>>::Future {
        let method = Method(self.f.clone());
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<Resp, Req>::default();
            Ok(Grpc::new(codec).unary(method, req).await)
        })
    }
}

struct Method<F>(F);

impl<Req, Resp, F, Fut> UnaryService<Req> for Method<F>
where
    F: Fn(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    type Response = Resp;
    type Future = Fut;

    fn call(&mut self, request: Request<Req>) -> Fut {
        (self.0)(request)
    }
}

/// A unary gRPC client over any transport `S`: a `tonic::transport::Channel`, or a stack of
/// graylane's `PropagateLaneLayer` over a `LaneSwitch` of one channel per version. The
/// counterpart of [`unary_fn`]; wrap it in a small typed client of your own so that no handler
/// holds a method path.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use graylane_grpc::unary::UnaryClient;
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Ping {
///     #[prost(string, tag = "1")]
///     text: String,
/// }
///
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let mut client = UnaryClient::new(channel);
/// let pong: tonic::Response<Ping> = client.call("/demo.Echo/Ping", Ping { text: "hi".into() }).await?;
/// # let _ = pong; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct UnaryClient<S> {
    grpc: tonic::client::Grpc<S>,
}

impl<S> UnaryClient<S> {
    /// A client over `transport`.
    pub fn new(transport: S) -> UnaryClient<S> {
        UnaryClient {
            grpc: tonic::client::Grpc::new(transport),
        }
    }
}

impl<S> UnaryClient<S>
where
    S: GrpcService<tonic::body::Body>,
    S::Error: Into<graylane_http::BoxError>,
    S::ResponseBody: Body<Data = bytes::Bytes> + Send + 'static,
    <S::ResponseBody as Body>::Error: Into<graylane_http::BoxError> + Send,
{
    /// Calls the method at `path` (`/package.Service/Method`) with `request`. A transport
    /// error becomes a `Status` through [`status_from_error`](crate::status_from_error), so a
    /// lane router's refusal in strict mode is `Unavailable`.
    ///
    /// # Panics
    ///
    /// If `path` is not a valid URI path.
    pub async fn call<Req, Resp>(
        &mut self,
        path: &'static str,
        request: impl tonic::IntoRequest<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| crate::status_from_error(e.into()))?;
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        let path = http::uri::PathAndQuery::from_static(path);
        // tonic reports a transport error as `Unknown` with the error as its source.
        self.grpc
            .unary(request.into_request(), path, codec)
            .await
            .map_err(|status| {
                let refused = std::error::Error::source(&status)
                    .and_then(|e| e.downcast_ref::<graylane_http::NoLaneVersion>());
                match refused {
                    Some(refused) => crate::status_from_error(Box::new(refused.clone())),
                    None => status,
                }
            })
    }
}
