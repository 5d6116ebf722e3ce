//! `unary::UnaryClient` against a real tonic server on a loopback port: the lane travels, the
//! server's statuses come back as they are, and a lane router's refusal is `Unavailable`.

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_grpc::LaneRequestExt;
use graylane_grpc::unary::{ServiceName, UnaryClient, unary_fn};
use graylane_http::{LaneLayer, LaneSwitch, PropagateLaneLayer};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tower::ServiceBuilder;

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    text: String,
}

struct Echo;

impl ServiceName for Echo {
    const NAME: &'static str = "test.Echo";
}

fn gray() -> Lane {
    Lane::new("gray").unwrap()
}

async fn serve(propagator: Propagator) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = unary_fn::<Echo, Text, Text, _, _>(|req: Request<Text>| async move {
        let lane = req.lane_context().lane();
        match req.into_inner().text.as_str() {
            "missing" => Err(Status::not_found("no such thing")),
            text => Ok(Response::new(Text {
                text: format!("{text} in {lane}"),
            })),
        }
    });
    tokio::spawn(
        Server::builder()
            .layer(LaneLayer::mesh(propagator))
            .add_service(echo)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

#[tokio::test]
async fn calls_carry_the_lane_and_bring_statuses_back() {
    let propagator = Propagator::new(LaneSet::new([gray()]));
    let url = serve(propagator.clone()).await;
    let channel: Channel = Endpoint::from_shared(url).unwrap().connect_lazy();
    let transport = ServiceBuilder::new()
        .layer(PropagateLaneLayer::new(propagator))
        .service(channel);
    let mut client = UnaryClient::new(transport);

    let call = |client: &mut UnaryClient<_>, text: &str| {
        let request = Text { text: text.into() };
        let mut client = client.clone();
        async move { client.call::<Text, Text>("/test.Echo/Say", request).await }
    };
    let base = call(&mut client, "hello").await.unwrap();
    assert_eq!(base.into_inner().text, "hello in base");
    let in_gray = call(&mut client, "hello")
        .with_lane(LaneContext::new(gray()))
        .await
        .unwrap();
    assert_eq!(in_gray.into_inner().text, "hello in gray");
    let missing = call(&mut client, "missing").await.unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::NotFound, "no such thing")
    );
}

#[tokio::test]
async fn a_strict_switch_refusal_is_unavailable() {
    let spec = LaneSpec::from_yaml_str(
        "services: [{ name: echo }, { name: other }]\n\
         lanes: [{ name: gray, services: [other] }]\n",
    )
    .unwrap();
    let url = serve(spec.propagator()).await;
    let base: Channel = Endpoint::from_shared(url).unwrap().connect_lazy();
    // echo has no gray version: in strict mode a gray call is refused, not sent to base.
    let switch = LaneSwitch::builder(&spec, "echo")
        .base(base)
        .strict(true)
        .build()
        .unwrap();
    let mut client = UnaryClient::new(switch);
    let refused = client
        .call::<Text, Text>("/test.Echo/Say", Text { text: "hi".into() })
        .with_lane(LaneContext::new(gray()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
}
