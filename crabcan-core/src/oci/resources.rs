//! A live container's resources, behind `crabcan events` and `crabcan update`: its cgroup's
//! statistics as runc's `stats` events (once, or every interval until the container stops,
//! with an `oom` event whenever the OOM killer struck in between), and new limits written to
//! its cgroup from a runtime-spec `linux.resources` object.

use std::time::{Duration, Instant};

use crabcan_cgroups::{ContainerCgroup, MissingController, Stats};
use serde_json::{json, Value};

use super::bundle;
use super::runtime::must_exist;
use super::state::{ContainerState, StateStore, Status};
use super::OciError;

/// Options of `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsOptions {
    /// Report the container's resource use once and return (`--stats`).
    pub stats: bool,
    /// How often to report statistics when streaming (`--interval`, runc's default 5 s).
    pub interval: Duration,
}

impl Default for EventsOptions {
    fn default() -> EventsOptions {
        EventsOptions {
            stats: false,
            interval: Duration::from_secs(5),
        }
    }
}

/// Options of `update`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOptions {
    /// The new limits: a runtime-spec `linux.resources` object (`--resources FILE|-`, and the
    /// single-limit flags merged into it by the caller). Only the limits it sets change.
    pub resources: Value,
}

/// How often a stream checks whether the container stopped or saw an OOM kill, between two
/// statistics events.
const POLL: Duration = Duration::from_millis(200);

/// Reports the container's events (runc's `{"type": ..., "id": ..., "data": ...}` objects) to
/// `on_event`: one `stats` event with `options.stats`; otherwise a `stats` event every
/// `options.interval` and an `oom` event after each OOM kill, until the container stops.
pub fn events(
    store: &StateStore,
    id: &str,
    options: &EventsOptions,
    on_event: &mut dyn FnMut(&Value),
) -> Result<(), OciError> {
    must_exist(store, id)?;
    let state = store.load(id)?;
    if state.current_status() == Status::Stopped {
        return Err(OciError::NotRunning);
    }
    let cgroup = open_cgroup(&state, "report the events of")?;
    if options.stats {
        on_event(&stats_event(id, &cgroup.stats()));
        return Ok(());
    }
    let mut oom_kills = cgroup.stats().oom_kills;
    let mut next_stats = Instant::now();
    loop {
        let stats = cgroup.stats();
        if stats.oom_kills > oom_kills {
            oom_kills = stats.oom_kills;
            on_event(&json!({"type": "oom", "id": id}));
        }
        if Instant::now() >= next_stats {
            on_event(&stats_event(id, &stats));
            next_stats = Instant::now() + options.interval;
        }
        match store.load(id) {
            Ok(now) if now.current_status() != Status::Stopped => {}
            _ => return Ok(()),
        }
        std::thread::sleep(POLL.min(options.interval));
    }
}

/// runc's `stats` event for `stats`: the numbers crabcan-cgroups reads, under runc's keys
/// (`cpu.usage.total` in nanoseconds, `memory.usage.usage` and `.max` in bytes,
/// `pids.current`); a number the host does not give is left out.
fn stats_event(id: &str, stats: &Stats) -> Value {
    let mut data = json!({
        "cpu": {"usage": {}},
        "memory": {"usage": {}},
        "pids": {},
    });
    if let Some(total) = stats.cpu_usage_ns {
        data["cpu"]["usage"]["total"] = json!(total);
    }
    if let Some(usage) = stats.memory_current {
        data["memory"]["usage"]["usage"] = json!(usage);
    }
    if let Some(max) = stats.memory_peak {
        data["memory"]["usage"]["max"] = json!(max);
    }
    data["memory"]["oom_kill"] = json!(stats.oom_kills);
    if let Some(current) = stats.pids_current {
        data["pids"]["current"] = json!(current);
    }
    json!({"type": "stats", "id": id, "data": data})
}

/// Writes the limits of `options.resources` to the container's cgroup. A field crabcan does
/// not implement is refused by name before anything is written, as in a bundle; device rules
/// cannot change after create.
pub fn update(store: &StateStore, id: &str, options: &UpdateOptions) -> Result<(), OciError> {
    must_exist(store, id)?;
    let lock = store.lock(id)?;
    let state = lock.load()?;
    if state.current_status() == Status::Stopped {
        return Err(OciError::NotRunning);
    }
    let limits = update_limits(&options.resources)?;
    let cgroup = open_cgroup(&state, "update")?;
    cgroup.update(&limits, MissingController::Error)?;
    Ok(())
}

/// The limits of a `linux.resources` object given to `update`, checked as a bundle's are.
fn update_limits(resources: &Value) -> Result<crabcan_cgroups::Limits, OciError> {
    if !resources.is_object() {
        return Err(OciError::Unsupported {
            field: "linux.resources".into(),
            why: "update takes a JSON object of runtime-spec linux.resources".into(),
        });
    }
    if resources.get("devices").is_some_and(|rules| !rules.is_null()) {
        return Err(OciError::Unsupported {
            field: "linux.resources.devices".into(),
            why: "a container's device rules are fixed when it is created".into(),
        });
    }
    let as_config = json!({"linux": {"resources": resources}});
    bundle::check_supported(&as_config, "")?;
    bundle::limits(&as_config)
}

fn open_cgroup(state: &ContainerState, what: &'static str) -> Result<ContainerCgroup, OciError> {
    let path = state.crabcan.cgroup_path.as_ref().ok_or_else(|| OciError::Unsupported {
        field: "linux.cgroupsPath".into(),
        why: format!("crabcan cannot {what} a container without a cgroup (--cgroup-manager disabled, or an ordinary user's without a delegated cgroup v2 subtree)"),
    })?;
    Ok(ContainerCgroup::open_at(&state.cgroup_host()?, path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_takes_only_what_it_can_write() {
        let limits = update_limits(&json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}})).unwrap();
        assert_eq!(limits.memory, Some(64 << 20));
        assert_eq!(limits.pids, Some(20));
        assert_eq!(limits.cpu_weight, None, "what is not given stays as it is");
        let error = update_limits(&json!({"memory": {"useHierarchy": true}})).unwrap_err();
        assert!(
            error.to_string().contains("linux.resources.memory.useHierarchy"),
            "{error}"
        );
        let limits = update_limits(&json!({
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "memory": {"reservation": 33554432, "checkBeforeUpdate": true},
            "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "unified": {"memory.high": "max"}
        }))
        .unwrap();
        assert_eq!(
            (limits.cpu_shares, limits.cpu_quota_us, limits.cpu_period_us),
            (Some(512), Some(50_000), Some(100_000))
        );
        assert_eq!(limits.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(limits.memory_reservation, Some(32 << 20));
        assert!(limits.memory_check_before_update);
        assert_eq!(limits.device_throttles.len(), 1);
        assert_eq!(limits.hugepages.len(), 1);
        assert_eq!(limits.unified.len(), 1);
        let error = update_limits(&json!({"devices": [{"allow": true, "access": "rwm"}]})).unwrap_err();
        assert!(error.to_string().contains("devices"), "{error}");
        assert!(update_limits(&json!([1])).is_err());
        let error = update_limits(&json!({"memory": {"limit": 1024}})).unwrap_err();
        assert!(error.to_string().contains("linux.resources"), "{error}");
    }

    #[test]
    fn stats_events_use_runcs_keys() {
        let stats = Stats {
            memory_current: Some(4096),
            memory_peak: Some(8192),
            pids_current: Some(2),
            cpu_usage_ns: Some(1_000),
            ..Stats::default()
        };
        let event = stats_event("c1", &stats);
        assert_eq!(event["type"], "stats");
        assert_eq!(event["id"], "c1");
        assert_eq!(event["data"]["memory"]["usage"]["usage"], 4096);
        assert_eq!(event["data"]["memory"]["usage"]["max"], 8192);
        assert_eq!(event["data"]["pids"]["current"], 2);
        assert_eq!(event["data"]["cpu"]["usage"]["total"], 1_000);
    }
}
