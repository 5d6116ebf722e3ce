//! `grpc`: the same tonic unary method over a real channel on loopback, without graylane and
//! with the graylane server layer (mesh) and client layer, gray traffic.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_http::{LaneLayer, PropagateLaneLayer};
use tonic::server::NamedService;
use tower::ServiceBuilder;

use crate::Args;
use crate::load::{Comparison, side_by_side};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(string, tag = "1")]
    msg: String,
}

/// `bench.Echo/Ping`, written against tonic's generic server (no protoc needed).
#[derive(Clone, Default)]
struct Echo;

impl NamedService for Echo {
    const NAME: &'static str = "bench.Echo";
}

struct PingMethod;

impl tonic::server::UnaryService<Ping> for PingMethod {
    type Response = Ping;
    type Future = BoxFut<Result<tonic::Response<Ping>, tonic::Status>>;
    fn call(&mut self, req: tonic::Request<Ping>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(req.into_inner())) })
    }
}

impl<B> tower::Service<http::Request<B>> for Echo
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFut<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<Ping, Ping>::default();
            Ok(tonic::server::Grpc::new(codec).unary(PingMethod, req).await)
        })
    }
}

async fn serve(layer: Option<LaneLayer>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    // `serve_with_incoming` ignores the builder's TCP_NODELAY: set it on each connection, or
    // Nagle + delayed ACKs put ~40 ms on the tail of both variants.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |stream| {
            stream.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    match layer {
        Some(layer) => {
            let server = tonic::transport::Server::builder()
                .layer(layer)
                .add_service(Echo)
                .serve_with_incoming(incoming);
            tokio::spawn(server);
        }
        None => {
            let server = tonic::transport::Server::builder()
                .add_service(Echo)
                .serve_with_incoming(incoming);
            tokio::spawn(server);
        }
    }
    addr
}

async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect")
}

async fn ping<T>(svc: T) -> Result<(), String>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    let mut grpc = tonic::client::Grpc::new(svc);
    grpc.ready().await.map_err(|e| e.into().to_string())?;
    let path = http::uri::PathAndQuery::from_static("/bench.Echo/Ping");
    let codec = tonic_prost::ProstCodec::<Ping, Ping>::default();
    grpc.unary(tonic::Request::new(Ping { msg: "x".into() }), path, codec)
        .await
        .map_err(|s| s.to_string())?;
    Ok(())
}

pub(crate) async fn run(args: &Args) -> Comparison {
    let gray = Lane::from_static("gray");
    let propagator = Propagator::new(LaneSet::new([gray]));
    let plain = channel(serve(None).await).await;
    let laned = channel(serve(Some(LaneLayer::mesh(propagator.clone()))).await).await;
    let laned = ServiceBuilder::new()
        .layer(PropagateLaneLayer::new(propagator))
        .service(laned);
    let ctx = LaneContext::new(gray);
    side_by_side(
        "grpc",
        args.rounds,
        args.requests,
        args.concurrency,
        move || ping(plain.clone()),
        move || ping(laned.clone()).with_lane(ctx),
    )
    .await
}
