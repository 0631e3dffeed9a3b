//! The block I/O controller's writes (`blkio` on v1, `io` on v2): crabcan's v2-scale weight,
//! OCI's v1-scale weight and leaf weight, per-device weights and per-device throttles.
//! Weights are best effort where they are a whole-cgroup default (the host's I/O scheduler may
//! have no weights at all); per-device settings are required.

use super::{not_on, Controller, LimitWrite};
use crate::error::CgroupError;
use crate::layout::Version;
use crate::limits::{blkio_weight_to_io_weight, io_weight_to_blkio_weight, LimitKind, Limits};

/// Appends the block I/O writes of `limits` for `version` to `writes`.
pub(super) fn writes(limits: &Limits, version: Version, writes: &mut Vec<LimitWrite>) -> Result<(), CgroupError> {
    match version {
        Version::V1 => v1(limits, writes),
        Version::V2 => v2(limits, writes)?,
    }
    Ok(())
}

fn write(file: impl Into<String>, value: impl ToString, limit: LimitKind, what: &'static str) -> LimitWrite {
    LimitWrite::new(Controller::Io, file, value, limit, what)
}

/// runc's v1 order: weight, leaf weight, per-device weights and leaf weights, then the
/// throttles (read bps, write bps, read iops, write iops).
fn v1(limits: &Limits, writes: &mut Vec<LimitWrite>) {
    let no_weights = "I/O weights (no CFQ or BFQ scheduler)";
    let weight = limits.io_weight.map(io_weight_to_blkio_weight).or(limits.blkio_weight);
    if let Some(weight) = weight {
        let limit = LimitKind::IoWeight;
        // BFQ's file first, as runc: since Linux 5.0 (no CFQ) it is the one that exists, so
        // the usual case is one open, not a failed one and then the fallback.
        let write = write("blkio.bfq.weight", weight, limit, no_weights).with_fallback("blkio.weight", weight);
        writes.push(write.best_effort());
    }
    if let Some(leaf) = limits.blkio_leaf_weight {
        writes.push(write(
            "blkio.leaf_weight",
            leaf,
            LimitKind::IoLeafWeight,
            "I/O leaf weights (CFQ)",
        ));
    }
    for device in &limits.device_weights {
        if let Some(weight) = device.weight {
            let value = format!("{} {weight}", device.device);
            let write = write("blkio.bfq.weight_device", &value, LimitKind::IoDeviceWeight, no_weights);
            writes.push(write.with_fallback("blkio.weight_device", value));
        }
        if let Some(leaf) = device.leaf_weight {
            let value = format!("{} {leaf}", device.device);
            writes.push(write(
                "blkio.leaf_weight_device",
                value,
                LimitKind::IoDeviceWeight,
                "I/O leaf weights (CFQ)",
            ));
        }
    }
    for kind in crate::ThrottleKind::ALL {
        for throttle in limits.device_throttles.iter().filter(|t| t.kind == kind) {
            let value = format!("{} {}", throttle.device, throttle.rate);
            writes.push(write(kind.v1_file(), value, LimitKind::IoThrottle, "I/O throttling"));
        }
    }
}

/// cgroup v2: crabcan's weight to io.weight "default N" (io.bfq.weight, range 1..=1000, as
/// fallback); OCI's weights to io.bfq.weight as given (io.weight, converted, as fallback),
/// BFQ first as runc does; the throttles to io.max "MAJ:MIN rbps=N" (and wbps, riops, wiops).
fn v2(limits: &Limits, writes: &mut Vec<LimitWrite>) -> Result<(), CgroupError> {
    let leaf = limits.blkio_leaf_weight.is_some() || limits.device_weights.iter().any(|d| d.leaf_weight.is_some());
    if leaf {
        return Err(not_on(
            LimitKind::IoLeafWeight,
            Version::V2,
            "blkio.leaf_weight and blkio.leaf_weight_device exist only on cgroup v1",
        ));
    }
    let no_weights = "I/O weights (no io.cost or BFQ)";
    if let Some(weight) = limits.io_weight {
        let weight = weight.clamp(1, 10_000);
        let write = write(
            "io.weight",
            format!("default {weight}"),
            LimitKind::IoWeight,
            no_weights,
        )
        .with_fallback("io.bfq.weight", weight.min(1000));
        writes.push(write.best_effort());
    }
    if let Some(weight) = limits.blkio_weight {
        let converted = format!("default {}", blkio_weight_to_io_weight(weight));
        let write =
            write("io.bfq.weight", weight, LimitKind::IoWeight, no_weights).with_fallback("io.weight", converted);
        writes.push(write.best_effort());
    }
    for device in &limits.device_weights {
        if let Some(weight) = device.weight {
            let converted = format!("{} {}", device.device, blkio_weight_to_io_weight(weight));
            let value = format!("{} {weight}", device.device);
            let write = write("io.bfq.weight", value, LimitKind::IoDeviceWeight, no_weights)
                .with_fallback("io.weight", converted);
            writes.push(write);
        }
    }
    for kind in crate::ThrottleKind::ALL {
        for throttle in limits.device_throttles.iter().filter(|t| t.kind == kind) {
            let value = format!("{} {}={}", throttle.device, kind.v2_key(), throttle.rate);
            writes.push(write("io.max", value, LimitKind::IoThrottle, "I/O limits (io.max)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, triples, writes};
    use super::super::{limit_writes, IfAbsent, Placement};
    use super::*;
    use crate::{BlockDevice, DeviceThrottle, DeviceWeight, ThrottleKind};

    const SDA: BlockDevice = BlockDevice { major: 8, minor: 0 };

    fn oci_block_io(leaf: bool) -> Limits {
        let throttles = ThrottleKind::ALL
            .into_iter()
            .map(|kind| DeviceThrottle {
                device: SDA,
                kind,
                rate: 102_400,
            })
            .rev() // the writes come in OCI's order whatever the order given
            .collect();
        Limits {
            blkio_weight: Some(500),
            blkio_leaf_weight: leaf.then_some(300),
            device_weights: vec![DeviceWeight {
                device: SDA,
                weight: Some(500),
                leaf_weight: leaf.then_some(300),
            }],
            device_throttles: throttles,
            ..Limits::unlimited()
        }
    }

    #[test]
    fn v1_writes_weights_and_throttles_per_device() {
        assert_eq!(
            triples(&oci_block_io(true), Version::V1),
            expect(&[
                ("blkio", "blkio.bfq.weight", "500"),
                ("blkio", "blkio.leaf_weight", "300"),
                ("blkio", "blkio.bfq.weight_device", "8:0 500"),
                ("blkio", "blkio.leaf_weight_device", "8:0 300"),
                ("blkio", "blkio.throttle.read_bps_device", "8:0 102400"),
                ("blkio", "blkio.throttle.write_bps_device", "8:0 102400"),
                ("blkio", "blkio.throttle.read_iops_device", "8:0 102400"),
                ("blkio", "blkio.throttle.write_iops_device", "8:0 102400"),
            ])
        );
        let all = writes(&oci_block_io(true), Version::V1);
        assert!(matches!(all[0].if_absent, IfAbsent::BestEffort { .. }));
        assert_eq!(all[2].fallback, Some(("blkio.weight_device".into(), "8:0 500".into())));
        assert!(
            all[1..].iter().all(|w| w.is_required()),
            "only the cgroup's weight is best effort"
        );
    }

    #[test]
    fn v2_writes_io_max_and_bfq_weights_and_refuses_leaf_weights() {
        assert_eq!(
            triples(&oci_block_io(false), Version::V2),
            expect(&[
                ("io", "io.bfq.weight", "500"),
                ("io", "io.bfq.weight", "8:0 500"),
                ("io", "io.max", "8:0 rbps=102400"),
                ("io", "io.max", "8:0 wbps=102400"),
                ("io", "io.max", "8:0 riops=102400"),
                ("io", "io.max", "8:0 wiops=102400"),
            ])
        );
        let all = writes(&oci_block_io(false), Version::V2);
        assert_eq!(all[0].fallback, Some(("io.weight".into(), "default 4950".into())));
        assert_eq!(all[1].fallback, Some(("io.weight".into(), "8:0 4950".into())));
        let error = limit_writes(&oci_block_io(true), &Placement::only(Version::V2)).unwrap_err();
        assert_eq!(error.limit(), Some(LimitKind::IoLeafWeight));
    }
}
