//! The value types of [`crate::Limits`]' per-device, per-page-size and per-name limits (block
//! device weights and throttles, hugepage limits, network interface priorities, RDMA limits)
//! and the syntax checks of the strings that end up in cgroup file names or values: a page
//! size, an interface or RDMA device name, a CPU list, a cgroup v2 file name. A hostile
//! configuration must never name a file outside the container's cgroup directory, nor smuggle
//! a second line into a value.

use std::fmt;

/// A block device by its numbers, as cgroup files name it: `MAJOR:MINOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockDevice {
    /// The major number.
    pub major: u64,
    /// The minor number.
    pub minor: u64,
}

impl fmt::Display for BlockDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// A block device's proportional I/O weight (OCI `blockIO.weightDevice`), on the v1/OCI scale
/// 10..=1000. At least one of the two is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceWeight {
    /// The device.
    pub device: BlockDevice,
    /// The weight of the cgroup's I/O on the device (v1 `blkio.weight_device`, v2
    /// `io.bfq.weight` or `io.weight` per device).
    pub weight: Option<u16>,
    /// The weight of the cgroup's own tasks against its children (v1 CFQ's
    /// `blkio.leaf_weight_device`; cgroup v2 has none).
    pub leaf_weight: Option<u16>,
}

/// What a [`DeviceThrottle`] limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ThrottleKind {
    /// Bytes read per second.
    ReadBps,
    /// Bytes written per second.
    WriteBps,
    /// Read operations per second.
    ReadIops,
    /// Write operations per second.
    WriteIops,
}

impl ThrottleKind {
    /// Every kind, in the order OCI lists them.
    pub const ALL: [ThrottleKind; 4] = [
        ThrottleKind::ReadBps,
        ThrottleKind::WriteBps,
        ThrottleKind::ReadIops,
        ThrottleKind::WriteIops,
    ];

    /// The cgroup v1 file: `blkio.throttle.read_bps_device`, ...
    pub(crate) fn v1_file(self) -> &'static str {
        match self {
            ThrottleKind::ReadBps => "blkio.throttle.read_bps_device",
            ThrottleKind::WriteBps => "blkio.throttle.write_bps_device",
            ThrottleKind::ReadIops => "blkio.throttle.read_iops_device",
            ThrottleKind::WriteIops => "blkio.throttle.write_iops_device",
        }
    }

    /// The key of cgroup v2's `io.max`: `rbps`, `wbps`, `riops`, `wiops`.
    pub(crate) fn v2_key(self) -> &'static str {
        match self {
            ThrottleKind::ReadBps => "rbps",
            ThrottleKind::WriteBps => "wbps",
            ThrottleKind::ReadIops => "riops",
            ThrottleKind::WriteIops => "wiops",
        }
    }
}

/// An upper bound on one block device's I/O (OCI `blockIO.throttle*Device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceThrottle {
    /// The device.
    pub device: BlockDevice,
    /// What is limited.
    pub kind: ThrottleKind,
    /// The limit, in bytes or operations per second.
    pub rate: u64,
}

/// A limit on the hugepages of one size (OCI `hugepageLimits`): `limit` bytes of `page_size`
/// pages. A limit of 0 allows none (Kubernetes sends one per page size the node has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugepageLimit {
    /// The page size as the kernel names it in the hugetlb files: `2MB`, `1GB`, `64KB`.
    pub page_size: String,
    /// The limit in bytes.
    pub limit: u64,
}

/// The priority of the cgroup's traffic on one network interface (OCI `network.priorities`,
/// v1 `net_prio.ifpriomap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfacePriority {
    /// The interface name, e.g. `eth0`.
    pub interface: String,
    /// The priority.
    pub priority: u32,
}

/// Limits on one RDMA device's resources (OCI `rdma`, `rdma.max`). At least one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdmaLimit {
    /// The device name, e.g. `mlx5_1`.
    pub device: String,
    /// The most HCA handles.
    pub hca_handles: Option<u32>,
    /// The most HCA objects.
    pub hca_objects: Option<u32>,
}

/// Whether `size` is a page size as the kernel writes it in hugetlb file names: digits then
/// one of `B`, `KB`, `MB`, `GB`, `TB`, `PB` (runtime-tools' list).
pub(crate) fn is_page_size(size: &str) -> bool {
    let digits = size.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && digits <= 20 && ["B", "KB", "MB", "GB", "TB", "PB"].contains(&&size[digits..])
}

/// Whether `name` is a network interface name: 1..=15 bytes (IFNAMSIZ less the NUL), none of
/// them white space, `/` or `:` (the kernel's `dev_valid_name`), not `.` or `..`.
pub(crate) fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// Whether `name` can be an RDMA device in `rdma.max`: printable, no white space.
pub(crate) fn is_rdma_device(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `list` is a cpuset list (`0-3,5,7-8`): numbers and ranges separated by commas.
pub(crate) fn is_cpu_list(list: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    !list.is_empty()
        && list.split(',').all(|item| match item.split_once('-') {
            Some((from, to)) => number(from) && number(to),
            None => number(item),
        })
}

/// The controller part of a cgroup v2 interface file name (`memory` of `memory.high`), if the
/// name is one: `CONTROLLER.PARAMETER`, only letters, digits, `_`, `.` and `-`, no `..`, at
/// most 255 bytes. Never a path: no `/`.
pub(crate) fn v2_file_controller(file: &str) -> Option<&str> {
    let well_formed = file.len() <= 255
        && !file.contains("..")
        && file.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let (controller, parameter) = file.split_once('.')?;
    (well_formed && !controller.is_empty() && !parameter.is_empty()).then_some(controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        for good in ["2MB", "1GB", "64KB", "16GB", "512B"] {
            assert!(is_page_size(good), "{good}");
        }
        for bad in ["", "MB", "2mb", "2M", "2MB/", "../2MB", "2MB\n", "2 MB", "-2MB", "2MBB"] {
            assert!(!is_page_size(bad), "{bad:?}");
        }
    }

    #[test]
    fn interface_and_device_names() {
        assert!(is_interface_name("eth0") && is_interface_name("lo") && is_interface_name("veth-1.2"));
        for bad in ["", "a b", "a/b", "a:b", ".", "..", "x\n", "sixteen-bytes-xx"] {
            assert!(!is_interface_name(bad), "{bad:?}");
        }
        assert!(is_rdma_device("mlx5_1"));
        assert!(!is_rdma_device("mlx5 1") && !is_rdma_device("") && !is_rdma_device("a\nb"));
    }

    #[test]
    fn cpu_lists() {
        for good in ["0", "0-1", "0,2", "0-3,5,7-8"] {
            assert!(is_cpu_list(good), "{good}");
        }
        for bad in ["", ",", "0,", "a", "0-", "-1", "0 1", "0\n1", "0--1"] {
            assert!(!is_cpu_list(bad), "{bad:?}");
        }
    }

    #[test]
    fn v2_file_names() {
        assert_eq!(v2_file_controller("memory.high"), Some("memory"));
        assert_eq!(v2_file_controller("cgroup.max.descendants"), Some("cgroup"));
        assert_eq!(v2_file_controller("io.bfq.weight"), Some("io"));
        for bad in [
            "memory",
            ".high",
            "memory.",
            "../memory.max",
            "a/b.c",
            "memory..max",
            "m.x y",
            "",
        ] {
            assert_eq!(v2_file_controller(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn devices_print_as_cgroup_files_name_them() {
        assert_eq!(BlockDevice { major: 8, minor: 16 }.to_string(), "8:16");
    }
}
