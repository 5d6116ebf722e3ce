//! A unary gRPC service from an async function, without code generation (feature `unary`).
//!
//! For examples, tests and small services whose messages are hand-written `prost` types: a
//! generated server is the usual way, and needs `protoc` at build time. Every method path
//! under the service's name reaches the one function.
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
