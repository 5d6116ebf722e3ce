//! A lane whose shadow schema is not provisioned yet: against the real PostgreSQL
//! (127.0.0.1:5432, database `test`; `DATABASE_URL` overrides).

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt};
use graylane_sqlx::{LanePools, ShadowMissing};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[tokio::test]
async fn verify_names_the_lane_its_schema_and_the_fix() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let base: PgConnectOptions = url.parse().unwrap();
    let nonce = format!(
        "gltest_unprov_{}_{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let spec = LaneSpec::from_yaml_str(&format!(
        "services: [{{name: orders}}]\n\
         lanes: [{{name: gray, services: [orders]}}]\n\
         data: {{ pg_schema: '{nonce}_{{lane}}' }}\n"
    ))
    .unwrap();
    let pools = LanePools::connect_lazy(&spec, base, PgPoolOptions::new().max_connections(1));
    let gray = Lane::new("gray").unwrap();

    // Verifying names the lane, its schema and the fix.
    let refused = pools.verify().await.unwrap_err();
    let sqlx::Error::Configuration(inner) = &refused else {
        panic!("expected a configuration error, got {refused:?}");
    };
    let missing = inner
        .downcast_ref::<ShadowMissing>()
        .expect("ShadowMissing");
    assert_eq!(missing.lane, gray);
    assert_eq!(missing.schema, format!("{nonce}_gray"));
    let message = refused.to_string();
    for needle in [
        "lane gray",
        &format!("{nonce}_gray"),
        "graylane shadow provision",
    ] {
        assert!(message.contains(needle), "{message}");
    }

    // Once the schema exists, the pools verify, and the lane's pool works in it.
    let mut admin = pools.base().acquire().await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA \"{nonce}_gray\""))
        .execute(&mut *admin)
        .await
        .unwrap();
    drop(admin);
    let verified = pools.verify().await;
    let ok = async {
        sqlx::query_scalar::<_, String>("SELECT current_schema()::text")
            .fetch_one(pools.current().unwrap())
            .await
    }
    .with_lane(LaneContext::new(gray))
    .await;
    let mut admin = pools.base().acquire().await.unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{nonce}_gray\""))
        .execute(&mut *admin)
        .await
        .unwrap();
    verified.unwrap();
    assert_eq!(ok.unwrap(), format!("{nonce}_gray"));
}
