//! What no schema checks: that the manifests fit together.
//!
//! - every route and mirror destination names a `Service`, and its subset exists in a
//!   `DestinationRule` for that host;
//! - every subset's labels select the pods of some `Deployment`;
//! - every route's weights sum to 100, and every `mirrorPercentage` is within 0..=100;
//! - every mirror destination's pods run pinned to their lane (`GRAYLANE_PINNED_LANE`): Envoy's
//!   copy carries no lane header, and an unpinned deployment would write it into production;
//! - every mesh `VirtualService` host is a `Service`; every gateway route names a `Gateway`;
//! - every `Deployment`'s selector matches its pod labels, and every `Service` selects pods.

use std::fmt;

use crate::model::{
    Deployment, DestinationRule, HttpRoute, Labels, Resource, Service, VirtualService,
};

/// One problem found in a set of manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `Kind/name` of the resource at fault.
    pub resource: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.resource, self.message)
    }
}

fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// What the checks look things up in.
struct Index<'a> {
    services: Vec<&'a Service>,
    deployments: Vec<&'a Deployment>,
    rules: Vec<&'a DestinationRule>,
    gateways: Vec<&'a str>,
}

impl<'a> Index<'a> {
    fn new(resources: &'a [Resource]) -> Index<'a> {
        let mut index = Index {
            services: Vec::new(),
            deployments: Vec::new(),
            rules: Vec::new(),
            gateways: Vec::new(),
        };
        for r in resources {
            match r {
                Resource::Service(s) => index.services.push(s),
                Resource::Deployment(d) => index.deployments.push(d),
                Resource::DestinationRule(d) => index.rules.push(d),
                Resource::Gateway(g) => index.gateways.push(g.metadata.name.as_str()),
                Resource::VirtualService(_) => {}
            }
        }
        index
    }

    fn is_service(&self, host: &str) -> bool {
        self.services.iter().any(|s| s.metadata.name == host)
    }

    fn has_pods(&self, app_labels: &Labels) -> bool {
        self.deployments
            .iter()
            .any(|d| selects(app_labels, &d.spec.template.metadata.labels))
    }

    /// The Deployments whose pods `host`'s subset `subset` selects.
    fn subset_deployments(&self, host: &str, subset: &str) -> Vec<&'a Deployment> {
        self.rules
            .iter()
            .filter(|dr| dr.spec.host == host)
            .flat_map(|dr| dr.spec.subsets.iter())
            .filter(|s| s.name == subset)
            .flat_map(|s| {
                self.deployments
                    .iter()
                    .filter(|d| selects(&s.labels, &d.spec.template.metadata.labels))
                    .copied()
            })
            .collect()
    }

    fn has_subset(&self, host: &str, subset: &str) -> bool {
        self.rules
            .iter()
            .filter(|dr| dr.spec.host == host)
            .flat_map(|dr| dr.spec.subsets.iter())
            .any(|s| s.name == subset)
    }
}

/// Cross-checks `resources`; an empty result means they fit together.
pub fn check(resources: &[Resource]) -> Vec<Finding> {
    let index = Index::new(resources);
    let mut findings = Vec::new();
    for r in resources {
        let messages = match r {
            Resource::VirtualService(vs) => virtual_service(&index, vs),
            Resource::DestinationRule(dr) => dr
                .spec
                .subsets
                .iter()
                .filter(|subset| !index.has_pods(&subset.labels))
                .map(|subset| format!("subset {} selects no Deployment's pods", subset.name))
                .collect(),
            Resource::Deployment(d) => {
                let selector = &d.spec.selector.match_labels;
                (!selects(selector, &d.spec.template.metadata.labels))
                    .then(|| "the selector does not match the pod labels".to_owned())
                    .into_iter()
                    .collect()
            }
            Resource::Service(s) => (!index.has_pods(&s.spec.selector))
                .then(|| "the selector matches no Deployment's pods".to_owned())
                .into_iter()
                .collect(),
            Resource::Gateway(_) => Vec::new(),
        };
        findings.extend(messages.into_iter().map(|message| Finding {
            resource: format!("{}/{}", r.kind(), r.name()),
            message,
        }));
    }
    findings
}

/// A `VirtualService`'s hosts and gateways, then each route.
fn virtual_service(index: &Index<'_>, vs: &VirtualService) -> Vec<String> {
    let mut found = Vec::new();
    if vs.spec.gateways.is_empty() {
        for host in &vs.spec.hosts {
            if !index.is_service(host) {
                found.push(format!("host {host} is not a Service"));
            }
        }
    }
    for g in &vs.spec.gateways {
        if !index.gateways.contains(&g.as_str()) {
            found.push(format!("gateway {g} is not defined"));
        }
    }
    for route in &vs.spec.http {
        route_findings(index, route, &mut found);
    }
    found
}

/// A route's weights, mirror percentage, and that each destination (the mirror's too) names
/// a Service and a subset some DestinationRule defines.
fn route_findings(index: &Index<'_>, route: &HttpRoute, found: &mut Vec<String>) {
    let name = &route.name;
    let weights: Vec<i32> = route.route.iter().filter_map(|d| d.weight).collect();
    if route.route.is_empty() {
        found.push(format!("route {name} has no destination"));
    } else if !(weights.is_empty() && route.route.len() == 1) {
        let sum: i32 = weights.iter().sum();
        if weights.len() != route.route.len() || sum != 100 {
            found.push(format!("route {name}: weights sum to {sum}, not 100"));
        }
    }
    if let Some(p) = &route.mirror_percentage
        && !(0.0..=100.0).contains(&p.value)
    {
        found.push(format!(
            "route {name}: mirrorPercentage {} is outside 0..=100",
            p.value
        ));
    }
    if let Some(m) = &route.mirror
        && let Some(subset) = &m.subset
    {
        for d in index.subset_deployments(&m.host, subset) {
            let pinned = d.spec.template.spec.containers.iter().all(|c| {
                c.env
                    .iter()
                    .any(|e| e.name == crate::PINNED_ENV && e.value == *subset)
            });
            if !pinned {
                found.push(format!(
                    "route {name}: mirror subset {subset} of {} selects Deployment {}, whose pods are not pinned to lane {subset} ({}): Envoy's copies carry no lane, and would write into production",
                    m.host,
                    d.metadata.name,
                    crate::PINNED_ENV
                ));
            }
        }
    }
    let destinations = route
        .route
        .iter()
        .map(|d| &d.destination)
        .chain(route.mirror.as_ref());
    for d in destinations {
        if !index.is_service(&d.host) {
            found.push(format!("route {name}: host {} is not a Service", d.host));
        }
        if let Some(subset) = &d.subset
            && !index.has_subset(&d.host, subset)
        {
            found.push(format!(
                "route {name}: subset {subset} of {} is in no DestinationRule",
                d.host
            ));
        }
    }
}
