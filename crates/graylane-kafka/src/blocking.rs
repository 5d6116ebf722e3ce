//! librdkafka calls that wait for the broker (a seek, a synchronous commit, an offset or
//! metadata fetch, creating a client) block their thread for up to their timeout. On a runtime
//! worker that stalls every task scheduled there — on a current-thread runtime, the whole
//! service — so the consumers make them on Tokio's blocking pool instead.

use rdkafka::error::{KafkaError, KafkaResult};

/// Runs `call` on Tokio's blocking pool and waits for it without holding a worker.
pub(crate) async fn off_runtime<T, F>(call: F) -> KafkaResult<T>
where
    F: FnOnce() -> KafkaResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|_| KafkaError::Canceled)?
}
