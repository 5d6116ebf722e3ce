//! The topology panel: services as nodes, one per version, in columns by call depth; an edge
//! per lane for each hop, dashed where base served a lane (a fallback). Drawn as SVG here,
//! from the metrics alone: client calls carry their peer (`graylane_peer`), servers and
//! consumers the lane they served.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{HopKey, Totals};

use super::{View, esc, lane_color, rate};

/// A node: a service's version, a topic, or the callers at the edge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Node {
    Clients,
    Topic(String),
    Version { service: String, version: String },
}

impl Node {
    fn label(&self) -> String {
        match self {
            Node::Clients => "clients".to_owned(),
            Node::Topic(t) => format!("topic {t}"),
            Node::Version { service, version } => format!("{service} {version}"),
        }
    }
}

/// One lane's traffic from one node to another.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Edge {
    pub(super) from: Node,
    pub(super) to: Node,
    pub(super) lane: String,
    pub(super) fallback: bool,
    pub(super) total: f64,
    pub(super) per_second: Option<f64>,
}

/// The edges of `totals`; `growth` gives the rates.
pub(super) fn edges(view: &View<'_>) -> Vec<Edge> {
    let totals = view.latest;
    let mut out: BTreeMap<(Node, Node, String, bool), (f64, f64)> = BTreeMap::new();
    let topics: BTreeSet<String> = totals.topics().into_iter().collect();
    let entries = totals.entry_services();
    let node = |service: &str, served: &str| Node::Version {
        service: service.to_owned(),
        version: view.version(service, served),
    };
    let grown = |key: &HopKey| view.growth.map_or(0.0, |(g, _)| hop_requests(g, key));
    let mut add = |from: Node, to: Node, lane: &str, fallback: bool, total: f64, grew: f64| {
        let e = out
            .entry((from, to, lane.to_owned(), fallback))
            .or_default();
        e.0 += total;
        e.1 += grew;
    };
    for (key, f) in &totals.hops {
        if key.mirror {
            continue;
        }
        let to = node(&key.service, &key.served);
        if key.kind == "consumer" && !key.peer.is_empty() {
            let from = Node::Topic(key.peer.clone());
            add(
                from,
                to,
                &key.lane,
                key.is_fallback(),
                f.requests,
                grown(key),
            );
        } else if Totals::is_entry(&entries, key) {
            // Nobody calls it: an entry service, its requests come from outside.
            add(
                Node::Clients,
                to,
                &key.lane,
                key.is_fallback(),
                f.requests,
                grown(key),
            );
        }
    }
    for (call, &n) in &totals.calls {
        let grew = view
            .growth
            .and_then(|(g, _)| g.calls.get(call).copied())
            .unwrap_or(0.0);
        let from = node(&call.service, &call.served);
        if topics.contains(&call.peer) {
            add(
                from,
                Node::Topic(call.peer.clone()),
                &call.lane,
                false,
                n,
                grew,
            );
            continue;
        }
        // Which of the peer's versions served the call: the peer's own count of the lane's
        // requests by served lane (its server side), in proportion.
        let served: Vec<(&HopKey, f64)> = totals
            .hops
            .iter()
            .filter(|(k, _)| {
                k.kind == "server" && !k.mirror && k.service == call.peer && k.lane == call.lane
            })
            .map(|(k, f)| (k, f.requests))
            .collect();
        let all: f64 = served.iter().map(|(_, n)| n).sum();
        if all <= 0.0 {
            let fallback = view.serving(&call.peer, &call.lane) != call.lane;
            let to = node(&call.peer, &view.serving(&call.peer, &call.lane));
            add(from, to, &call.lane, fallback, n, grew);
            continue;
        }
        for (k, count) in served {
            let share = count / all;
            let to = node(&k.service, &k.served);
            add(
                from.clone(),
                to,
                &k.lane,
                k.is_fallback(),
                n * share,
                grew * share,
            );
        }
    }
    let seconds = view.growth.map(|(_, d)| d.as_secs_f64());
    out.into_iter()
        .map(|((from, to, lane, fallback), (total, grew))| Edge {
            from,
            to,
            lane,
            fallback,
            total,
            per_second: seconds.filter(|s| *s > 0.0).map(|s| grew / s),
        })
        .collect()
}

fn hop_requests(totals: &Totals, key: &HopKey) -> f64 {
    totals.hops.get(key).map_or(0.0, |f| f.requests)
}

const NODE_W: f64 = 130.0;
const NODE_H: f64 = 40.0;
const COLUMN: f64 = 240.0;
const ROW: f64 = 64.0;
const MARGIN: f64 = 20.0;

/// The SVG of `edges`.
pub(super) fn svg(view: &View<'_>, edges: &[Edge]) -> String {
    // Columns by the longest path from the callers at the edge, so a service called at
    // several depths stands right of all its callers. Relaxed until nothing moves; a cycle
    // (two services calling each other) stops at the node count.
    let count = edges.len() + 1;
    let mut depth: BTreeMap<Node, usize> = BTreeMap::new();
    depth.insert(Node::Clients, 0);
    for _ in 0..count {
        let mut changed = false;
        for e in edges {
            if let Some(&d) = depth.get(&e.from) {
                let next = d + 1;
                if next <= count && depth.get(&e.to).is_none_or(|&old| old < next) {
                    depth.insert(e.to.clone(), next);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for e in edges {
        depth.entry(e.from.clone()).or_insert(1);
        depth.entry(e.to.clone()).or_insert(1);
    }
    let mut columns: BTreeMap<usize, Vec<Node>> = BTreeMap::new();
    for (n, d) in &depth {
        columns.entry(*d).or_default().push(n.clone());
    }
    // Rows: each column in the order of its callers' rows (their mean), column by column from
    // the edge, so that edges cross less; a node nobody placed calls it keeps its place.
    let mut row: BTreeMap<Node, f64> = BTreeMap::new();
    for nodes in columns.values_mut() {
        let key = |i: usize, n: &Node| {
            let callers: Vec<f64> = edges
                .iter()
                .filter(|e| e.to == *n)
                .filter_map(|e| row.get(&e.from).copied())
                .collect();
            if callers.is_empty() {
                i as f64
            } else {
                callers.iter().sum::<f64>() / callers.len() as f64
            }
        };
        let mut keyed: Vec<(f64, Node)> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (key(i, n), n.clone()))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        *nodes = keyed.into_iter().map(|(_, n)| n).collect();
        for (i, n) in nodes.iter().enumerate() {
            row.insert(n.clone(), i as f64);
        }
    }
    let mut at: BTreeMap<Node, (f64, f64)> = BTreeMap::new();
    for (d, nodes) in &columns {
        for (i, n) in nodes.iter().enumerate() {
            at.insert(
                n.clone(),
                (MARGIN + *d as f64 * COLUMN, MARGIN + i as f64 * ROW),
            );
        }
    }
    // Labels of the lanes sharing a pair of nodes stand one above the other.
    let mut pairs: BTreeMap<(&Node, &Node), (usize, usize)> = BTreeMap::new();
    for e in edges {
        pairs.entry((&e.from, &e.to)).or_default().0 += 1;
    }
    let last = columns.keys().next_back().copied().unwrap_or(0);
    let width = MARGIN * 2.0 + (last + 1) as f64 * COLUMN;
    let rows = columns.values().map(Vec::len).max().unwrap_or(1);
    let height = MARGIN * 2.0 + rows as f64 * ROW;
    let lanes = view.latest.lanes();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="{width}" height="{height}" style="max-width:100%;height:auto" viewBox="0 0 {width} {height}" role="img" aria-label="lane topology">"#
    );
    for e in edges {
        let (Some(&(x0, y0)), Some(&(x1, y1))) = (at.get(&e.from), at.get(&e.to)) else {
            continue;
        };
        let i = lanes.iter().position(|l| *l == e.lane).unwrap_or(0) as f64;
        let offset = (i - (lanes.len() as f64 - 1.0) / 2.0) * 7.0;
        let (ax, ay) = (x0 + NODE_W, y0 + NODE_H / 2.0 + offset);
        let (bx, by) = (x1, y1 + NODE_H / 2.0 + offset);
        let mid = (ax + bx) / 2.0;
        let color = lane_color(&lanes, &e.lane);
        let dash = if e.fallback {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let width = 1.5 + (e.per_second.unwrap_or(0.0)).log10().clamp(0.0, 3.0);
        let (k, j) = pairs.get_mut(&(&e.from, &e.to)).map_or((1, 0), |(k, j)| {
            *j += 1;
            (*k, *j - 1)
        });
        let stack = (j as f64 - (k as f64 - 1.0) / 2.0) * 12.0;
        let _ = write!(
            s,
            r##"<g class="edge" data-from="{from}" data-to="{to}" data-lane="{lane}" data-fallback="{fallback}" data-total="{total:.0}"><path d="M{ax:.1},{ay:.1} C{mid:.1},{ay:.1} {mid:.1},{by:.1} {bx:.1},{by:.1}" fill="none" stroke="{color}" stroke-width="{width:.1}"{dash}/><title>{lane}: {from} → {to}{kind}, {total:.0} in all, {rate}</title><text x="{tx:.1}" y="{ty:.1}" fill="{color}" font-size="10" text-anchor="middle" paint-order="stroke" stroke="#ffffff" stroke-width="3">{lane}{short} {rate}</text></g>"##,
            from = esc(&e.from.label()),
            to = esc(&e.to.label()),
            lane = esc(&e.lane),
            fallback = e.fallback,
            total = e.total,
            kind = if e.fallback {
                " (fallback to base)"
            } else {
                ""
            },
            short = if e.fallback { " fallback" } else { "" },
            rate = rate(e.per_second),
            tx = mid,
            ty = (ay + by) / 2.0 + 3.0 + stack,
        );
    }
    for (n, (x, y)) in &at {
        let _ = write!(
            s,
            r##"<g class="node" data-node="{label}"><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="#f8fafc" stroke="#334155"/><text x="{tx}" y="{ty}" font-size="13" text-anchor="middle">{label}</text></g>"##,
            label = esc(&n.label()),
            tx = x + NODE_W / 2.0,
            ty = y + NODE_H / 2.0 + 4.0,
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;

    fn version(service: &str) -> Node {
        Node::Version {
            service: service.into(),
            version: "v1".into(),
        }
    }

    fn edge(from: Node, to: Node, lane: &str) -> Edge {
        Edge {
            from,
            to,
            lane: lane.into(),
            fallback: false,
            total: 1.0,
            per_second: Some(1.0),
        }
    }

    fn drawn(edges: &[Edge]) -> String {
        let history = History::new(std::time::Duration::from_secs(60));
        let totals = Totals::default();
        let view = View {
            latest: &totals,
            growth: None,
            history: &history,
            spec: None,
        };
        svg(&view, edges)
    }

    /// The `y` of the node labelled `label`'s box.
    fn row_of(svg: &str, label: &str) -> f64 {
        let node = &svg[svg.find(&format!(r#"data-node="{label}""#)).unwrap()..];
        let y = &node[node.find(" y=\"").unwrap() + 4..];
        y[..y.find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn callees_stand_in_the_order_of_their_callers() {
        // In name order `y` would stand above `z`, and the two edges would cross.
        let edges = [
            edge(Node::Clients, version("a"), "base"),
            edge(Node::Clients, version("b"), "base"),
            edge(version("a"), version("z"), "base"),
            edge(version("b"), version("y"), "base"),
        ];
        let svg = drawn(&edges);
        assert!(row_of(&svg, "a v1") < row_of(&svg, "b v1"), "{svg}");
        assert!(row_of(&svg, "z v1") < row_of(&svg, "y v1"), "{svg}");
    }

    #[test]
    fn the_labels_of_lanes_sharing_a_hop_do_not_overlap() {
        let edges = [
            edge(Node::Clients, version("gateway"), "base"),
            edge(Node::Clients, version("gateway"), "gray"),
        ];
        let svg = drawn(&edges);
        let ys: Vec<f64> = svg
            .match_indices("<text x=")
            .filter_map(|(i, _)| {
                let t = &svg[i..];
                let y = &t[t.find(" y=\"")? + 4..];
                y[..y.find('"')?].parse().ok()
            })
            .collect();
        // Two edge labels (then the nodes' own): 12 px apart, more than their 10 px font.
        assert!((ys[0] - ys[1]).abs() >= 12.0, "{ys:?}");
    }
}
