//! The shop's four services, each with its handlers, its layers and the client other services
//! call it with:
//!
//! | service | transport | versions | what it does |
//! |---|---|---|---|
//! | [`gateway`] | HTTP (axum), the edge | v1 | gives requests their lane, mirrors 10%, places checkouts |
//! | [`orders`] | gRPC (tonic) | v1, v2 | stores the order, caches its status, reserves stock, publishes it |
//! | [`inventory`] | HTTP (axum) | v1 | reserves stock in the lane's schema |
//! | [`fulfillment`] | Kafka | v1, v2 | picks the stock and writes the shipment |
//!
//! Handlers are ordinary application code: the lane is in scope, and the data handles of
//! [`App`](crate::app::App) put each lane's data in its own storage.

pub(crate) mod fulfillment;
pub(crate) mod gateway;
pub(crate) mod inventory;
pub(crate) mod orders;

/// `GET /metrics`: this process's lane metrics, as Prometheus text.
pub(crate) fn metrics_router(app: &std::sync::Arc<crate::app::App>) -> axum::Router {
    let exposition = app.exposition.clone();
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move {
            exposition
                .render()
                .unwrap_or_else(|e| format!("# metrics unavailable: {e}\n"))
        }),
    )
}

/// Logs `error` for whoever runs the service and returns what the caller is told instead: the
/// service and what failed, without the internals (a database error names tables and
/// constraints, and is no business of a client).
pub(crate) fn hidden(service: &str, what: &str, error: &dyn std::fmt::Display) -> String {
    eprintln!("{service}: {what}: {error}");
    format!("{service}: {what}")
}

/// Whether `error` is the database refusing an item the shop does not sell (the orders and
/// reservations tables reference `stock`).
pub(crate) fn is_unknown_item(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

/// The longest piece of client input an error message repeats.
const QUOTED_MAX: usize = 64;

/// `input` in quotes and escaped, shortened beyond [`QUOTED_MAX`] characters: fit for a
/// one-line error message whatever the client sent.
pub(crate) fn quoted(input: &str) -> String {
    match input.char_indices().nth(QUOTED_MAX) {
        Some((end, _)) => format!("{:?}...", &input[..end]),
        None => format!("{input:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_input_is_escaped_and_short() {
        assert_eq!(quoted("a b"), r#""a b""#);
        assert_eq!(quoted("a\nb"), r#""a\nb""#);
        let long = "x".repeat(200);
        assert_eq!(quoted(&long), format!("{:?}...", "x".repeat(QUOTED_MAX)));
    }
}
