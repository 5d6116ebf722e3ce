//! The lane as an OpenTelemetry `TextMapPropagator`, and the bridge between the OTel `Context`'s
//! baggage and graylane's [`LaneContext`].

use std::borrow::Cow;

use graylane_core::wire::join_values;
use graylane_core::{Extractor as LaneExtractor, LaneContext, Propagator};
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::{Context, Key};

/// The lane propagator: reads the lane from the lane header or the `gray.lane` baggage member
/// (configured lanes only, exactly as graylane's own [`Propagator`] does), and writes the lane
/// header. Put it *after* the baggage propagator in a composite, as [`composite`] does: the
/// baggage propagator replaces the context's baggage on extract, and this one then makes the
/// `gray.lane` member agree with what graylane accepted — an unknown or malformed lane a client
/// put in baggage is removed, not passed on.
///
/// ```
/// use graylane_core::{Lane, LaneSet, Propagator};
/// use graylane_otel::{composite, lane_context};
/// use opentelemetry::propagation::TextMapPropagator;
/// use std::collections::HashMap;
///
/// let lanes = Propagator::new(LaneSet::new([Lane::new("gray")?]));
/// let propagator = composite(lanes.clone());
/// // Baggage alone (no lane header) carries the lane.
/// let headers = HashMap::from([("baggage".to_owned(), "gray.lane=gray,team=checkout".to_owned())]);
/// let cx = propagator.extract(&headers);
/// assert_eq!(lane_context(&cx, &lanes).lane(), "gray");
///
/// let mut out = HashMap::new();
/// propagator.inject_context(&cx, &mut out);
/// assert_eq!(out["x-gray-lane"], "gray");
/// assert!(out["baggage"].contains("gray.lane=gray") && out["baggage"].contains("team=checkout"));
/// # Ok::<(), graylane_core::LaneError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LanePropagator {
    propagator: Propagator,
    fields: [String; 2],
}

impl LanePropagator {
    /// A propagator with `propagator`'s lanes and wire names.
    pub fn new(propagator: Propagator) -> LanePropagator {
        let fields = [
            propagator.wire().header.clone(),
            propagator.wire().mirror_header.clone(),
        ];
        LanePropagator { propagator, fields }
    }
}

/// OTel's read-only carrier as a graylane carrier.
struct Carrier<'a>(&'a dyn Extractor);

impl LaneExtractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(str::as_bytes)
    }

    /// Every value, through OTel's `get_all`: a carrier holding several lines of a header
    /// gives them all, so a lane on a second `baggage` line is seen.
    fn get_list(&self, key: &graylane_core::Key) -> Option<Cow<'_, [u8]>> {
        let all = self.0.get_all(key.as_str())?;
        join_values(all.into_iter().map(str::as_bytes))
    }
}

impl TextMapPropagator for LanePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let mut ctx = lane_context(cx, &self.propagator);
        if ctx.lane().is_base() && !ctx.is_mirror() {
            // Not in the OTel context: graylane's own (e.g. set by a graylane layer).
            ctx = LaneContext::current();
        }
        if !ctx.lane().is_base() {
            injector.set(&self.fields[0], ctx.lane().as_str().to_owned());
        }
        if ctx.is_mirror() {
            injector.set(&self.fields[1], "1".to_owned());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let ctx = self.propagator.extract(&Carrier(extractor));
        with_lane_context(cx, ctx, &self.propagator)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// W3C trace context, W3C baggage and the lane, in the order that makes them agree.
pub fn composite(propagator: Propagator) -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(opentelemetry_sdk::propagation::TraceContextPropagator::new()),
        Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
        Box::new(LanePropagator::new(propagator)),
    ])
}

/// The lane in `cx`'s baggage, validated against `propagator`'s lanes (anything else is base).
pub fn lane_context(cx: &Context, propagator: &Propagator) -> LaneContext {
    let wire = propagator.wire();
    let baggage = cx.baggage();
    let lane = baggage
        .get(wire.baggage_key.as_str())
        .and_then(|v| propagator.lanes().get(v.as_str().trim().as_bytes()));
    // The values graylane's propagator takes for a yes, so the two never disagree about a
    // mirror copy: one read as live traffic would take a live lane's side effects.
    let mirror = baggage
        .get(wire.baggage_mirror_key.as_str())
        .is_some_and(|v| matches!(v.as_str().trim(), "1" | "true"));
    match lane {
        Some(lane) => LaneContext::new(lane).with_mirror(mirror),
        None => LaneContext::base().with_mirror(mirror),
    }
}

/// `cx` with its baggage saying `ctx`'s lane (other members kept); base removes the member.
pub fn with_lane_context(cx: &Context, ctx: LaneContext, propagator: &Propagator) -> Context {
    let wire = propagator.wire();
    let (lane_key, mirror_key) = (wire.baggage_key.as_str(), wire.baggage_mirror_key.as_str());
    let current = cx.baggage();
    let wanted: Option<&'static str> = (!ctx.lane().is_base()).then(|| ctx.lane().as_str());
    let agrees = current.get(lane_key).map(|v| v.as_str()) == wanted
        && current.get(mirror_key).is_some() == ctx.is_mirror();
    if agrees {
        return cx.clone();
    }
    let mut baggage: Baggage = current
        .iter()
        .filter(|(k, _)| k.as_str() != lane_key && k.as_str() != mirror_key)
        .map(|(k, (v, m))| (k.clone(), (v.clone(), m.clone())))
        .collect();
    if let Some(lane) = wanted {
        let _ = baggage.insert(Key::new(lane_key.to_owned()), lane);
    }
    if ctx.is_mirror() {
        let _ = baggage.insert(Key::new(mirror_key.to_owned()), "1");
    }
    cx.with_baggage(baggage)
}

/// The current OTel context with graylane's current lane in its baggage: call before handing
/// work to OTel-instrumented code that propagates on its own.
pub fn current_context(propagator: &Propagator) -> Context {
    with_lane_context(&Context::current(), LaneContext::current(), propagator)
}
