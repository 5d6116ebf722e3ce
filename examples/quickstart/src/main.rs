//! A walk through graylane-core with the reference spec (`docs/examples/lane-spec.yaml`):
//! the edge colors requests, strips forged lane headers and honours signed tokens; the lane then
//! travels through an in-process chain of three "services", across spawned tasks, falling back
//! to base where a service has no gray version and re-entering the lane after it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use graylane::coloring::SimpleRequest;
use graylane::spec::LaneSpec;
use graylane::{LaneContext, LaneFutureExt, Propagator, Rejection, current_lane, task};

const SPEC: &str = include_str!("../../../docs/examples/lane-spec.yaml");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The spec reads its token key from GRAYLANE_TOKEN_KEY; give the walk-through one.
    let mut spec = LaneSpec::from_yaml_str(SPEC)?;
    if let Some(token) = spec.trust.token.as_mut() {
        token.key = Some("quickstart demo key, not a secret".into());
        token.key_env = "GRAYLANE_QUICKSTART_UNSET".into();
    }
    let edge = spec.edge()?;
    let key = spec
        .trust
        .token
        .as_ref()
        .ok_or("spec has no token")?
        .load_key()?;
    let gray = graylane::Lane::new("gray")?;
    let token = key.mint(gray, SystemTime::now() + Duration::from_secs(600));

    println!("edge decisions (rules from docs/examples/lane-spec.yaml):");
    let requests = [
        (
            "ordinary user",
            SimpleRequest::new("/shop").header("x-user-id", "u-1"),
        ),
        (
            "beta tester header",
            SimpleRequest::new("/shop").header("x-user-group", "beta"),
        ),
        (
            "forged lane header",
            SimpleRequest::new("/shop").header("x-gray-lane", "gray"),
        ),
        (
            "signed token",
            SimpleRequest::new("/shop").header("x-gray-lane-token", &token),
        ),
        (
            "forged token",
            SimpleRequest::new("/").header("x-gray-lane-token", &token.replace("gray", "base")),
        ),
        (
            "eu canary api",
            SimpleRequest::new("/api/orders").header("x-region", "eu-west-1"),
        ),
    ];
    for (who, mut req) in requests {
        let admitted = edge.admit(&mut req);
        println!(
            "  {who:<20} -> lane {:<6} ({:?}{})",
            admitted.context().lane(),
            admitted.context().origin(),
            admitted
                .rule()
                .map(|r| format!(", rule {r}"))
                .unwrap_or_default()
        );
    }
    let sticky = (0..10_000)
        .filter(|u| {
            let mut req = SimpleRequest::new("/").header("x-user-id", &format!("user-{u}"));
            !edge.admit(&mut req).context().lane().is_base()
        })
        .count();
    println!("  sticky 10% rule: {sticky} of 10000 users on gray");
    let stats = edge.stats();
    println!(
        "  refused: untrusted={} token_forged={}",
        stats.get(Rejection::Untrusted),
        stats.get(Rejection::TokenForged)
    );

    println!("\na gray request through gateway -> inventory -> orders:");
    let propagator = spec.propagator();
    let ctx = LaneContext::new(gray);
    let mut wire = HashMap::new();
    propagator.inject(&ctx, &mut wire);
    for service in ["gateway", "inventory", "orders"] {
        wire = hop(&spec, &propagator, service, wire).await?;
    }
    Ok(())
}

/// One service: extract the lane, decide which version serves it, do some async work (in a
/// spawned task) and inject the lane for the next hop.
async fn hop(
    spec: &LaneSpec,
    propagator: &Propagator,
    service: &str,
    inbound: HashMap<String, String>,
) -> Result<HashMap<String, String>, Box<dyn std::error::Error>> {
    let ctx = propagator.extract(&inbound);
    let served = spec.serving_lane(service, ctx.lane());
    let ctx = ctx.with_served(served);
    let version = spec.serving_version(service, ctx.lane()).unwrap_or("?");
    let data = spec.data_names(ctx.lane());
    let (seen, outbound) = async {
        let seen = task::spawn(async { current_lane() }).await?;
        let mut outbound = HashMap::new();
        propagator.inject(&LaneContext::current(), &mut outbound);
        Ok::<_, tokio::task::JoinError>((seen, outbound))
    }
    .with_lane(ctx)
    .await?;
    println!(
        "  {service:<10} version {version:<3} lane={} served={}{} spawned task saw {seen}; data in schema {} / redis prefix {:?}",
        ctx.lane(),
        ctx.served(),
        if ctx.is_fallback() { " (fallback)" } else { "" },
        data.pg_schema.as_deref().unwrap_or("(base)"),
        data.redis_prefix,
    );
    Ok(outbound)
}
