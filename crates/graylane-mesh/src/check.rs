//! What no schema checks: that the manifests fit together.
//!
//! - every route and mirror destination names a `Service`, and its subset exists in a
//!   `DestinationRule` for that host;
//! - every subset's labels select the pods of some `Deployment`;
//! - every route's weights sum to 100, and every `mirrorPercentage` is within 0..=100;
//! - every mesh `VirtualService` host is a `Service`; every gateway route names a `Gateway`;
//! - every `Deployment`'s selector matches its pod labels, and every `Service` selects pods.

use std::fmt;

use crate::model::{Labels, Resource};

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

/// Cross-checks `resources`; an empty result means they fit together.
pub fn check(resources: &[Resource]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut find = |r: &Resource, message: String| {
        findings.push(Finding {
            resource: format!("{}/{}", r.kind(), r.name()),
            message,
        })
    };
    let services: Vec<_> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Service(s) => Some(s),
            _ => None,
        })
        .collect();
    let deployments: Vec<_> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Deployment(d) => Some(d),
            _ => None,
        })
        .collect();
    let rules: Vec<_> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::DestinationRule(d) => Some(d),
            _ => None,
        })
        .collect();
    let gateways: Vec<&str> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Gateway(g) => Some(g.metadata.name.as_str()),
            _ => None,
        })
        .collect();
    let pods_of = |app_labels: &Labels| {
        deployments
            .iter()
            .any(|d| selects(app_labels, &d.spec.template.metadata.labels))
    };

    for r in resources {
        match r {
            Resource::VirtualService(vs) => {
                if vs.spec.gateways.is_empty() {
                    for host in &vs.spec.hosts {
                        if !services.iter().any(|s| s.metadata.name == *host) {
                            find(r, format!("host {host} is not a Service"));
                        }
                    }
                }
                for g in &vs.spec.gateways {
                    if !gateways.contains(&g.as_str()) {
                        find(r, format!("gateway {g} is not defined"));
                    }
                }
                for route in &vs.spec.http {
                    let weights: Vec<i32> = route.route.iter().filter_map(|d| d.weight).collect();
                    if route.route.is_empty() {
                        find(r, format!("route {} has no destination", route.name));
                    } else if !(weights.is_empty() && route.route.len() == 1) {
                        let sum: i32 = weights.iter().sum();
                        if weights.len() != route.route.len() || sum != 100 {
                            find(
                                r,
                                format!("route {}: weights sum to {sum}, not 100", route.name),
                            );
                        }
                    }
                    if let Some(p) = &route.mirror_percentage
                        && !(0.0..=100.0).contains(&p.value)
                    {
                        find(
                            r,
                            format!(
                                "route {}: mirrorPercentage {} is outside 0..=100",
                                route.name, p.value
                            ),
                        );
                    }
                    let dests = route
                        .route
                        .iter()
                        .map(|d| &d.destination)
                        .chain(route.mirror.as_ref());
                    for d in dests {
                        if !services.iter().any(|s| s.metadata.name == d.host) {
                            find(
                                r,
                                format!("route {}: host {} is not a Service", route.name, d.host),
                            );
                        }
                        if let Some(subset) = &d.subset {
                            let defined = rules
                                .iter()
                                .filter(|dr| dr.spec.host == d.host)
                                .flat_map(|dr| dr.spec.subsets.iter())
                                .any(|s| s.name == *subset);
                            if !defined {
                                find(
                                    r,
                                    format!(
                                        "route {}: subset {subset} of {} is in no DestinationRule",
                                        route.name, d.host
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            Resource::DestinationRule(dr) => {
                for subset in &dr.spec.subsets {
                    if !pods_of(&subset.labels) {
                        find(
                            r,
                            format!("subset {} selects no Deployment's pods", subset.name),
                        );
                    }
                }
            }
            Resource::Deployment(d) => {
                if !selects(
                    &d.spec.selector.match_labels,
                    &d.spec.template.metadata.labels,
                ) {
                    find(r, "the selector does not match the pod labels".into());
                }
            }
            Resource::Service(s) => {
                if !pods_of(&s.spec.selector) {
                    find(r, "the selector matches no Deployment's pods".into());
                }
            }
            Resource::Gateway(_) => {}
        }
    }
    findings
}
