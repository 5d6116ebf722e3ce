//! The view's HTTP side: the page, its script, and the panels pushed by server-sent events,
//! from one poller that reads the source on an interval.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use graylane_core::spec::LaneSpec;
use tokio::sync::watch;

use crate::history::History;
use crate::render::panels;
use crate::source::{Source, client};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("view.js");

/// How the view polls and what it keeps.
#[derive(Clone, Debug)]
pub struct ViewConfig {
    source: Source,
    interval: Duration,
    keep: Duration,
    spec: Option<Arc<LaneSpec>>,
    spec_file: Option<std::path::PathBuf>,
    token: Option<String>,
}

impl ViewConfig {
    /// Polls `source` every second and keeps five minutes.
    pub fn new(source: Source) -> ViewConfig {
        ViewConfig {
            source,
            interval: Duration::from_secs(1),
            keep: Duration::from_secs(300),
            spec: None,
            spec_file: None,
            token: None,
        }
    }

    /// How often the source is read (through Prometheus: its scrape interval).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> ViewConfig {
        self.interval = interval.max(Duration::from_millis(100));
        self
    }

    /// The lane spec, which names the versions (`orders v2`, not `orders (gray)`) and says
    /// which version serves a lane when no request has shown it yet.
    #[must_use]
    pub fn spec(mut self, spec: LaneSpec) -> ViewConfig {
        self.spec = Some(Arc::new(spec));
        self
    }

    /// The lane spec in the file `path`, read again at every poll: the page follows a
    /// release's steps (`graylane release` edits that file). A read that fails keeps the last
    /// good spec, and the page says why.
    #[must_use]
    pub fn spec_file(mut self, path: impl Into<std::path::PathBuf>) -> ViewConfig {
        self.spec_file = Some(path.into());
        self
    }

    /// A bearer token every request must carry (`Authorization: Bearer …`, or `?token=` for
    /// a browser's first load; the page passes it on to its event stream).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> ViewConfig {
        self.token = Some(token.into());
        self
    }
}

/// The rendered panels, as the latest poll left them.
#[derive(Clone, Debug, Default)]
struct Rendered {
    /// `(panel id, html)`.
    panels: Vec<(&'static str, String)>,
    /// The same as one JSON object, what an event carries.
    json: String,
}

#[derive(Clone)]
struct Shared {
    rendered: watch::Receiver<Arc<Rendered>>,
    token: Option<String>,
}

/// The lane view: [`router`](View::router) serves it under `/lanes/`; dropping the view
/// stops its poller.
#[derive(Debug)]
pub struct View {
    router: Router,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for View {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl View {
    /// Starts polling per `config`.
    pub fn start(config: ViewConfig) -> View {
        let (tx, rx) = watch::channel(Arc::new(Rendered::default()));
        let poller = tokio::spawn(poll(config.clone(), tx));
        let shared = Shared {
            rendered: rx,
            token: config.token,
        };
        let router = Router::new()
            .route("/lanes/", get(page))
            .route("/lanes/events", get(events))
            .route("/lanes/panels.json", get(panels_json))
            // The routes above ask for the token, when there is one; the script and the
            // redirect show nothing.
            .route_layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
            .route(
                "/lanes",
                get(|| async { axum::response::Redirect::permanent("/lanes/") }),
            )
            .route("/lanes/view.js", get(script))
            .with_state(shared);
        View { router, poller }
    }

    /// The routes: `GET /lanes/` (the page), `/lanes/events` (its panels, pushed),
    /// `/lanes/panels.json` (the same, once), `/lanes/view.js`.
    pub fn router(&self) -> Router {
        self.router.clone()
    }
}

async fn poll(config: ViewConfig, tx: watch::Sender<Arc<Rendered>>) {
    let client = client();
    let mut history = History::new(config.keep);
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut spec = config.spec.clone();
    loop {
        tick.tick().await;
        let mut error = match config.source.poll(&client).await {
            Ok(totals) => {
                history.push(Instant::now(), totals);
                None
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(path) = &config.spec_file {
            match LaneSpec::from_path(path) {
                Ok(s) => spec = Some(Arc::new(s)),
                Err(e) => error = Some(format!("{}: {e}", path.display())),
            }
        }
        let panels = panels(&history, spec.as_deref(), error.as_deref());
        let json = serde_json::Value::Object(
            panels
                .iter()
                .map(|(id, html)| ((*id).to_owned(), serde_json::Value::from(html.as_str())))
                .collect(),
        )
        .to_string();
        if tx.send(Arc::new(Rendered { panels, json })).is_err() {
            return;
        }
    }
}

/// Whether the request carries the token, when one is required.
fn allowed(shared: &Shared, headers: &HeaderMap, query: Option<&str>) -> bool {
    let Some(token) = &shared.token else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Percent-decoded, as a browser writes a token with `+`, `/` or `=` into a link.
    let in_query = query.and_then(|q| graylane_core::coloring::find_query_param(q, "token"));
    // Compared in constant time: the token guards production traffic figures.
    let same = |given: &str| {
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    bearer.is_some_and(same) || in_query.is_some_and(|t| same(&t))
}

fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token is required\n",
    )
        .into_response()
}

async fn guard(
    State(shared): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if allowed(&shared, req.headers(), req.uri().query()) {
        next.run(req).await
    } else {
        refused()
    }
}

async fn page(State(shared): State<Shared>) -> Response {
    let rendered = shared.rendered.borrow().clone();
    // The first paint carries the panels as they are; the script takes over from there.
    let mut page = PAGE.to_owned();
    for (id, html) in &rendered.panels {
        page = page.replace(&format!("<!--{id}-->"), html);
    }
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn panels_json(State(shared): State<Shared>) -> Response {
    let json = shared.rendered.borrow().json.clone();
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

async fn events(State(shared): State<Shared>) -> Response {
    let rx = shared.rendered.clone();
    // The current panels at once, then at each new render the panels that changed since what
    // this page was sent (a 50-service topology is ~200 KB; a chart moves every poll, the
    // rest rarely).
    let stream = futures_util::stream::unfold((rx, None), |(mut rx, sent)| async move {
        let sent: Option<Arc<Rendered>> = sent;
        loop {
            if sent.is_some() && rx.changed().await.is_err() {
                return None;
            }
            let now = rx.borrow_and_update().clone();
            let json = match &sent {
                None => now.json.clone(),
                Some(before) => match changed(before, &now) {
                    Some(json) => json,
                    None => continue,
                },
            };
            let event: Result<Event, Infallible> = Ok(Event::default().event("panels").data(json));
            return Some((event, (rx, Some(now))));
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The panels of `now` that differ from `before`, as one JSON object; `None` if none does.
fn changed(before: &Rendered, now: &Rendered) -> Option<String> {
    let diff: serde_json::Map<String, serde_json::Value> = now
        .panels
        .iter()
        .filter(|(id, html)| !before.panels.iter().any(|(i, h)| i == id && h == html))
        .map(|(id, html)| ((*id).to_owned(), serde_json::Value::from(html.as_str())))
        .collect();
    (!diff.is_empty()).then(|| serde_json::Value::Object(diff).to_string())
}
