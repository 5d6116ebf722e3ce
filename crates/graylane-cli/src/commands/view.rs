//! `graylane view`: the live lane view (`graylane_view`) on a listener of its own, until
//! interrupted.

use std::time::Duration;

use graylane_view::{Source, View, ViewConfig};

use super::{load, runtime};
use crate::args::ViewArgs;
use crate::{Fail, bad_input};

/// Serves the view of `--prometheus` or `--scrape` on `--listen`.
pub(crate) fn run(args: &ViewArgs) -> Result<(), Fail> {
    let source = match &args.prometheus {
        Some(url) => Source::Prometheus(url.clone()),
        None => Source::Scrape(args.scrape.clone()),
    };
    if args.interval == 0 {
        return Err(bad_input("--interval must be at least 1 (second)"));
    }
    let mut config = ViewConfig::new(source).interval(Duration::from_secs(args.interval));
    if let Some(spec) = &args.spec {
        // Checked now, then read again at every poll: the page follows a release's steps.
        load(spec)?;
        config = config.spec_file(spec);
    }
    if let Some(token) = &args.token {
        config = config.token(token.clone());
    }
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        eprintln!(
            "graylane view: serving {} beyond loopback without --token: anyone who reaches it sees the lanes' traffic",
            args.listen
        );
    }
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| bad_input(format!("--listen {}: {e}", args.listen)))?;
        let view = View::start(config);
        println!("graylane view: http://{}/lanes/", args.listen);
        axum::serve(listener, view.router())
            .await
            .map_err(|e| bad_input(format!("serving the view: {e}")))
    })
}
