//! Where the view reads the metrics: the services' `/metrics` pages directly, or a Prometheus
//! server that scrapes them.

use std::time::Duration;

use crate::exposition::{Sample, samples};
use crate::model::Totals;

/// Where the metrics come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The services' exposition pages (`http://host:port/metrics`), read at every poll.
    Scrape(Vec<String>),
    /// A Prometheus server's HTTP API (`http://host:9090`): its latest value of every
    /// `graylane_*` series, read at every poll. Poll it no faster than it scrapes.
    Prometheus(String),
}

/// A poll that could not be read.
#[derive(Debug)]
pub struct SourceError(String);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

impl Source {
    /// Reads every target once and sums their series. A target that does not answer fails
    /// the poll (the page says so, and keeps what it showed).
    pub async fn poll(&self, client: &reqwest::Client) -> Result<Totals, SourceError> {
        let mut totals = Totals::default();
        match self {
            Source::Scrape(targets) => {
                for url in targets {
                    totals.add(samples(&get(client, url).await?));
                }
            }
            Source::Prometheus(base) => {
                let url = reqwest::Url::parse_with_params(
                    &format!("{}/api/v1/query", base.trim_end_matches('/')),
                    &[("query", r#"{__name__=~"graylane_.+"}"#)],
                )
                .map_err(|e| SourceError(format!("--prometheus {base}: {e}")))?;
                let text = get(client, url.as_str()).await?;
                let series = vector(&text)
                    .ok_or_else(|| SourceError(format!("{base} answered no vector: {text}")))?;
                totals.add(series.iter().map(|(name, labels, value)| Sample {
                    name,
                    labels: labels.clone(),
                    value: *value,
                }));
            }
        }
        Ok(totals)
    }
}

/// The client the view polls with: loopback and cluster addresses, short timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a plain HTTP client builds")
}

async fn get(client: &reqwest::Client, url: &str) -> Result<String, SourceError> {
    let fail = |e: &dyn std::fmt::Display| SourceError(format!("GET {url}: {e}"));
    let res = client.get(url).send().await.map_err(|e| fail(&e))?;
    if !res.status().is_success() {
        return Err(fail(&res.status()));
    }
    res.text().await.map_err(|e| fail(&e))
}

/// An instant query's vector answer: each series' name, labels and value.
type Series = Vec<(String, Vec<(String, String)>, f64)>;

fn vector(text: &str) -> Option<Series> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    if json["status"] != "success" {
        return None;
    }
    let mut out = Vec::new();
    for series in json["data"]["result"].as_array()? {
        let metric = series["metric"].as_object()?;
        let name = metric.get("__name__")?.as_str()?.to_owned();
        let labels = metric
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        let value = match series["value"][1].as_str()? {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().ok()?,
        };
        out.push((name, labels, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prometheus_vector_reads_as_samples() {
        let text = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"graylane_lane_headers_stripped_total","graylane_service":"gateway","instance":"a:1"},"value":[1.5,"4"]},
            {"metric":{"__name__":"graylane_lane_headers_stripped_total","graylane_service":"gateway","instance":"b:1"},"value":[1.5,"3"]}]}}"#;
        let series = vector(text).unwrap();
        assert_eq!(series.len(), 2);
        let mut totals = Totals::default();
        totals.add(series.iter().map(|(name, labels, value)| Sample {
            name,
            labels: labels.clone(),
            value: *value,
        }));
        assert_eq!(totals.stripped, 7.0);
        assert!(vector(r#"{"status":"error"}"#).is_none());
    }
}
