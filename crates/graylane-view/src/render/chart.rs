//! The traffic chart: requests per second per lane at the entry services, poll by poll over
//! the history, drawn by `plotters` into SVG.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{View, lane_color};
use crate::model::Totals;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 240;

pub(super) fn svg(view: &View<'_>) -> String {
    let lanes = view.latest.lanes();
    let entries = view.latest.entry_services();
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (at, grew, took) in view.history.steps() {
        let seconds = took.as_secs_f64();
        if seconds <= 0.0 {
            continue;
        }
        let mut per_lane: BTreeMap<&str, f64> = lanes.iter().map(|l| (l.as_str(), 0.0)).collect();
        for (k, f) in &grew.hops {
            if Totals::is_entry(&entries, k) {
                *per_lane.entry(k.lane.as_str()).or_default() += f.requests;
            }
        }
        for (lane, n) in per_lane {
            series
                .entry(lane.to_owned())
                .or_default()
                .push((at, n / seconds));
        }
    }
    let since = series
        .values()
        .flatten()
        .map(|(t, _)| *t)
        .fold(-60.0_f64, f64::min);
    let top = series
        .values()
        .flatten()
        .map(|(_, r)| *r)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        // Drawing into a string fails only on a bad layout; the panel then shows nothing.
        let _ = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(40)
                .build_cartesian_2d(since..0.0, 0.0..top)?;
            chart
                .configure_mesh()
                .x_desc("seconds ago")
                .y_desc("requests/s")
                .x_labels(6)
                .y_labels(5)
                .draw()?;
            for (lane, points) in &series {
                let color = hex(lane_color(&lanes, lane));
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))?
                    .label(lane.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
            }
            if !series.is_empty() {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK.mix(0.3))
                    .draw()?;
            }
            root.present()?;
            Ok(())
        })();
    }
    // Scaled to its panel: plotters writes a fixed size.
    out.replacen(
        "<svg ",
        &format!(r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" style="max-width:100%;height:auto" "#),
        1,
    )
}

/// `#rrggbb` as a color.
fn hex(s: &str) -> RGBColor {
    let channel = |i: usize| u8::from_str_radix(s.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    RGBColor(channel(1), channel(3), channel(5))
}
