//! Writes to files named after what they limit: hugetlb's per-page-size files, v1's network
//! controllers (net_cls, net_prio), `rdma.max` and the unified (cgroup v2) files given by
//! name. The names were checked by [`Limits::validate`], so none of them leaves the cgroup's
//! directory.

use super::{not_on, Controller, LimitWrite};
use crate::error::CgroupError;
use crate::layout::Version;
use crate::limit_types::v2_file_controller;
use crate::limits::{LimitKind, Limits};

/// `hugetlb.<size>.limit_in_bytes` (v1) or `hugetlb.<size>.max` (v2) per page size, each
/// followed by its `rsvd` twin (Linux 5.7+) where the kernel has it, as runc writes them.
pub(super) fn hugetlb_writes(limits: &Limits, version: Version, writes: &mut Vec<LimitWrite>) {
    let suffix = match version {
        Version::V1 => "limit_in_bytes",
        Version::V2 => "max",
    };
    for hugepage in &limits.hugepages {
        let size = &hugepage.page_size;
        writes.push(LimitWrite::new(
            Controller::Hugetlb,
            format!("hugetlb.{size}.{suffix}"),
            hugepage.limit,
            LimitKind::Hugepages,
            "hugepages of this size",
        ));
        let reserved = LimitWrite::new(
            Controller::Hugetlb,
            format!("hugetlb.{size}.rsvd.{suffix}"),
            hugepage.limit,
            LimitKind::Hugepages,
            "reserved hugepage accounting",
        );
        writes.push(reserved.skip_if_absent());
    }
}

/// v1 `net_cls.classid` and one `net_prio.ifpriomap` line per interface; cgroup v2 has
/// neither controller (its eBPF programs do that job), so there they are refused.
pub(super) fn network_writes(
    limits: &Limits,
    version: Version,
    writes: &mut Vec<LimitWrite>,
) -> Result<(), CgroupError> {
    let why = "net_cls and net_prio are cgroup v1 controllers; cgroup v2 has none";
    if version == Version::V2 {
        if limits.net_class_id.is_some() {
            return Err(not_on(LimitKind::NetClassId, version, why));
        }
        if !limits.net_priorities.is_empty() {
            return Err(not_on(LimitKind::NetPriorities, version, why));
        }
    }
    if let Some(class_id) = limits.net_class_id {
        writes.push(LimitWrite::new(
            Controller::NetCls,
            "net_cls.classid",
            class_id,
            LimitKind::NetClassId,
            "network class ids",
        ));
    }
    for priority in &limits.net_priorities {
        writes.push(LimitWrite::new(
            Controller::NetPrio,
            "net_prio.ifpriomap",
            format!("{} {}", priority.interface, priority.priority),
            LimitKind::NetPriorities,
            "network priorities",
        ));
    }
    Ok(())
}

/// One `rdma.max` line per device, `DEVICE hca_handle=N hca_object=M` with what is given (the
/// same file on v1 and v2).
pub(super) fn rdma_writes(limits: &Limits, writes: &mut Vec<LimitWrite>) {
    for rdma in &limits.rdma {
        let mut line = rdma.device.clone();
        if let Some(handles) = rdma.hca_handles {
            line.push_str(&format!(" hca_handle={handles}"));
        }
        if let Some(objects) = rdma.hca_objects {
            line.push_str(&format!(" hca_object={objects}"));
        }
        writes.push(LimitWrite::new(
            Controller::Rdma,
            "rdma.max",
            line,
            LimitKind::Rdma,
            "RDMA limits",
        ));
    }
}

/// The unified files, each value a line at a time (as runc's `WriteFileByLine`), in the
/// cgroup directory of its controller; v2 only, as runc refuses them elsewhere.
pub(super) fn unified_writes(
    limits: &Limits,
    version: Version,
    writes: &mut Vec<LimitWrite>,
) -> Result<(), CgroupError> {
    if limits.unified.is_empty() {
        return Ok(());
    }
    if version == Version::V1 {
        return Err(not_on(
            LimitKind::Unified,
            version,
            "unified settings are cgroup v2 files, and this host's controllers are on cgroup v1",
        ));
    }
    for (file, value) in &limits.unified {
        // Validated: a well-formed name of a known controller (or `cgroup`).
        let controller = v2_file_controller(file)
            .and_then(Controller::from_v2_name)
            .unwrap_or(Controller::Core);
        for line in value.lines().filter(|line| !line.is_empty()) {
            writes.push(LimitWrite::new(
                controller,
                file.clone(),
                line,
                LimitKind::Unified,
                "this cgroup v2 interface file",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, triples, writes};
    use super::super::{limit_writes, IfAbsent, Placement};
    use super::*;
    use crate::{HugepageLimit, InterfacePriority, RdmaLimit};

    fn hugepages() -> Limits {
        Limits {
            hugepages: vec![
                HugepageLimit {
                    page_size: "2MB".into(),
                    limit: 2 << 30,
                },
                HugepageLimit {
                    page_size: "1GB".into(),
                    limit: 0,
                },
            ],
            ..Limits::unlimited()
        }
    }

    #[test]
    fn hugepage_limits_per_page_size_with_their_reserved_twins() {
        assert_eq!(
            triples(&hugepages(), Version::V1),
            expect(&[
                ("hugetlb", "hugetlb.2MB.limit_in_bytes", "2147483648"),
                ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "2147483648"),
                ("hugetlb", "hugetlb.1GB.limit_in_bytes", "0"),
                ("hugetlb", "hugetlb.1GB.rsvd.limit_in_bytes", "0"),
            ])
        );
        assert_eq!(
            triples(&hugepages(), Version::V2),
            expect(&[
                ("hugetlb", "hugetlb.2MB.max", "2147483648"),
                ("hugetlb", "hugetlb.2MB.rsvd.max", "2147483648"),
                ("hugetlb", "hugetlb.1GB.max", "0"),
                ("hugetlb", "hugetlb.1GB.rsvd.max", "0"),
            ])
        );
        let all = writes(&hugepages(), Version::V2);
        assert!(all[0].is_required(), "a page size the kernel lacks is an error");
        assert_eq!(
            all[1].if_absent,
            IfAbsent::Skip,
            "kernels before 5.7 have no rsvd files"
        );
    }

    #[test]
    fn network_controllers_on_v1_only() {
        let limits = Limits {
            net_class_id: Some(255),
            net_priorities: vec![
                InterfacePriority {
                    interface: "lo".into(),
                    priority: 10,
                },
                InterfacePriority {
                    interface: "eth0".into(),
                    priority: 30,
                },
            ],
            ..Limits::unlimited()
        };
        assert_eq!(
            triples(&limits, Version::V1),
            expect(&[
                ("net_cls", "net_cls.classid", "255"),
                ("net_prio", "net_prio.ifpriomap", "lo 10"),
                ("net_prio", "net_prio.ifpriomap", "eth0 30"),
            ])
        );
        let error = limit_writes(&limits, &Placement::only(Version::V2)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the network class id cannot be applied on this host's cgroup v2: net_cls and net_prio are cgroup v1 controllers; cgroup v2 has none"
        );
    }

    #[test]
    fn rdma_lines_name_what_is_given() {
        let limits = Limits {
            rdma: vec![
                RdmaLimit {
                    device: "mlx5_1".into(),
                    hca_handles: Some(3),
                    hca_objects: Some(10_000),
                },
                RdmaLimit {
                    device: "mlx4_0".into(),
                    hca_handles: None,
                    hca_objects: Some(1000),
                },
            ],
            ..Limits::unlimited()
        };
        let lines = expect(&[
            ("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ("rdma", "rdma.max", "mlx4_0 hca_object=1000"),
        ]);
        assert_eq!(triples(&limits, Version::V1), lines);
        assert_eq!(triples(&limits, Version::V2), lines);
    }

    #[test]
    fn unified_files_are_written_last_a_line_at_a_time_on_v2_only() {
        let limits = Limits {
            memory: Some(64 << 20),
            unified: [
                ("memory.high".to_string(), "50331648".to_string()),
                ("io.max".to_string(), "8:0 rbps=1024\n8:16 wbps=2048\n".to_string()),
                ("cgroup.max.descendants".to_string(), "5".to_string()),
            ]
            .into(),
            ..Limits::unlimited()
        };
        assert_eq!(
            triples(&limits, Version::V2)[2..],
            expect(&[
                ("cgroup", "cgroup.max.descendants", "5"),
                ("io", "io.max", "8:0 rbps=1024"),
                ("io", "io.max", "8:16 wbps=2048"),
                ("memory", "memory.high", "50331648"),
            ])
        );
        let error = limit_writes(&limits, &Placement::only(Version::V1)).unwrap_err();
        assert_eq!(error.limit(), Some(LimitKind::Unified));
        assert!(error.to_string().contains("cgroup v1"), "{error}");
    }
}
