//! What a running process can change of its spec, and what needs a restart.
//!
//! Live: coloring, trust, the mesh section, each service's routing (Envoy's part), a lane's
//! description, removing lanes, and bringing back a lane the process started with. Everything else was built into the process when it
//! started — wire names into its propagator, services into its routers, each lane's services
//! into its fallback tables, the data names into its pools, namespaces and consumer groups —
//! so a change there is refused, naming what changed.

use crate::spec::{LaneSpec, ServiceSpec};

/// `Ok` when `new` can replace `old` while the process runs; else what it changes that
/// needs a restart. `first` is the spec the process started with: a lane it declared may come
/// back after a revision removed it (the process still knows its names), with the definition
/// it had.
pub(super) fn live_change(first: &LaneSpec, old: &LaneSpec, new: &LaneSpec) -> Result<(), String> {
    if old.wire != new.wire {
        return Err("changes the wire names (`wire`)".into());
    }
    if old.data != new.data {
        return Err("changes the data naming (`data`)".into());
    }
    for service in &new.services {
        match old.services.iter().find(|s| s.name == service.name) {
            None => return Err(format!("adds service {:?}", service.name)),
            Some(before) if !same_deployment(before, service) => {
                return Err(format!(
                    "changes how service {:?} is deployed (version, port or protocol)",
                    service.name
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(gone) = old
        .services
        .iter()
        .find(|s| !new.services.iter().any(|n| n.name == s.name))
    {
        return Err(format!("removes service {:?}", gone.name));
    }
    for lane in &new.lanes {
        let Some(declared) = first.lanes.iter().find(|l| l.name == lane.name) else {
            return Err(format!("adds lane {:?}", lane.name.as_str()));
        };
        if !same_services(&declared.services, &lane.services) {
            return Err(format!(
                "changes the services of lane {:?}",
                lane.name.as_str()
            ));
        }
        if declared.version() != lane.version()
            || declared.data != lane.data
            || declared.mirror != lane.mirror
        {
            return Err(format!(
                "changes the version, data or mirror flag of lane {:?}",
                lane.name.as_str()
            ));
        }
    }
    Ok(())
}

/// Everything of a service but its routing, which Envoy applies.
fn same_deployment(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    a.version == b.version && a.port == b.port && a.protocol == b.protocol
}

/// The same services, in any order.
fn same_services(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|s| b.contains(s))
}
