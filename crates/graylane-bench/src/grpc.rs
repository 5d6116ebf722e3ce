//! `grpc`: the same tonic unary method over a real channel on loopback, without graylane and
//! with the graylane server layer (mesh) and client layer, gray traffic.

use std::convert::Infallible;
use std::net::SocketAddr;

use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_grpc::unary::{ServiceName, unary_fn};
use graylane_http::{LaneLayer, PropagateLaneLayer};
use graylane_testkit::grpc::Text;
use tower::ServiceBuilder;

use crate::Args;
use crate::load::{Comparison, WITHOUT_WITH, side_by_side};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `bench.Echo/Ping` (no protoc needed): the name of [`echo`]'s service.
struct Echo;

impl ServiceName for Echo {
    const NAME: &'static str = "bench.Echo";
}

/// `bench.Echo/Ping`: answers with the request.
fn echo() -> impl tonic::server::NamedService
+ tower::Service<
    http::Request<tonic::body::Body>,
    Response = http::Response<tonic::body::Body>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ Sync
+ 'static {
    unary_fn::<Echo, Text, Text, _, _>(|req: tonic::Request<Text>| async move {
        Ok(tonic::Response::new(req.into_inner()))
    })
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
                .add_service(echo())
                .serve_with_incoming(incoming);
            tokio::spawn(server);
        }
        None => {
            let server = tonic::transport::Server::builder()
                .add_service(echo())
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
    let codec = tonic_prost::ProstCodec::<Text, Text>::default();
    grpc.unary(tonic::Request::new(Text::new("x")), path, codec)
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
        WITHOUT_WITH,
        args.rounds,
        args.requests,
        args.concurrency,
        move || ping(plain.clone()),
        move || ping(laned.clone()).with_lane(ctx),
    )
    .await
}
