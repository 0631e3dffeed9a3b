//! The guest's init scripts (busybox sh). `/init` copies the initramfs onto
//! a tmpfs and `switch_root`s to it (pivot_root, which crabcan uses, does
//! not work with the initramfs' ramfs as root); `/init2` mounts proc, sysfs,
//! devtmpfs, cgroup2, enables the controllers, runs each test binary and
//! prints the lines the host parses, then powers off.
//!
//! Lines for the host: `CRABCAN-VM-BOOTED ...`, one
//! `CRABCAN-VM-RESULT <binary> rc=.. passed=.. failed=.. skipped=..` per
//! binary, `CRABCAN-VM-SKIP <binary>: <reason>` per skipped test, and
//! finally `CRABCAN-VM-SUMMARY passed=N failed=M skipped=K`.
//! A test skips itself by printing `crabcan-skip: <reason>` and returning.

/// Stage 1: move to a tmpfs root.
pub const INIT: &str = r#"#!/bin/busybox sh
# crabcan test VM, stage 1: copy the initramfs to a tmpfs and switch_root,
# so the tests run on a real tmpfs root where pivot_root works.
/bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot || exec /bin/busybox sh
for e in /*; do
  case "$e" in /newroot|/proc|/sys) ;; *) /bin/busybox cp -a "$e" /newroot/ ;; esac
done
/bin/busybox mkdir -p /newroot/proc /newroot/sys
exec /bin/busybox switch_root /newroot /init2
"#;

/// Stage 2: set up the system, run the tests, report, power off.
/// `@TIMEOUT@` is the per-binary timeout in seconds, `@EXPORTS@` extra
/// `export` lines.
pub const INIT2: &str = r#"#!/bin/sh
# crabcan test VM, stage 2: mounts, cgroup2, run the tests, report.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for c in memory pids cpu io; do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || echo "crabcan-vm: cgroup controller $c not available"
done
ip link set lo up 2>/dev/null
# crabcan reads the accounts to choose host ids no one owns.
mkdir -p /etc /run
grep -q '^root:' /etc/passwd 2>/dev/null || echo 'root:x:0:0:root:/root:/bin/sh' >> /etc/passwd
grep -q '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534::/:/bin/false' >> /etc/passwd
grep -q '^root:' /etc/group 2>/dev/null || echo 'root:x:0:' >> /etc/group
grep -q '^nogroup:' /etc/group || echo 'nogroup:x:65534:' >> /etc/group
rootfs_type=$(awk '$2 == "/" {t=$3} END {print t}' /proc/mounts)
echo "CRABCAN-VM-BOOTED kernel=$(uname -r) root=$rootfs_type cgroup=[$(cat /sys/fs/cgroup/cgroup.subtree_control)] cpus=$(nproc)"

export CRABCAN_BIN=/crabcan/bin/crabcan CRABCAN_TEST_ROOTFS=/crabcan/rootfs CRABCAN_IN_VM=1
export CRABCAN_TEST_ID_MAP=0:1000000000:65536
@EXPORTS@
P=0; F=0; S=0
for t in /crabcan/tests/*; do
  [ -x "$t" ] || continue
  name=${t##*/}
  echo "CRABCAN-VM-RUN $name"
  { cd /tmp && timeout @TIMEOUT@ "$t" --test-threads=1 --nocapture; echo $? > /tmp/.rc; } 2>&1 | tee /tmp/.out
  rc=$(cat /tmp/.rc)
  line=$(grep '^test result:' /tmp/.out | tail -n 1)
  p=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
  f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
  i=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) ignored.*/\1/p')
  sk=$(grep -c 'crabcan-skip:' /tmp/.out)
  p=${p:-0}; f=${f:-0}; i=${i:-0}; sk=${sk:-0}
  [ "$sk" -gt "$p" ] && sk=$p
  p=$((p - sk)); sk=$((sk + i))
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    f=1
    case "$rc" in 124|137|143) echo "CRABCAN-VM-NOTE $name: killed (rc=$rc) by the @TIMEOUT@ s per-binary timeout?";; esac
    echo "CRABCAN-VM-NOTE $name: exited with rc=$rc without a failed test: counted as 1 failure"
  fi
  grep -o 'crabcan-skip:.*' /tmp/.out | sed "s/^crabcan-skip: */CRABCAN-VM-SKIP $name: /"
  grep ' \.\.\. ignored' /tmp/.out | sed "s/^test \(.*\) \.\.\. ignored,* */CRABCAN-VM-SKIP $name: \1 (ignored) /"
  echo "CRABCAN-VM-RESULT $name rc=$rc passed=$p failed=$f skipped=$sk"
  P=$((P + p)); F=$((F + f)); S=$((S + sk))
done
echo "CRABCAN-VM-SUMMARY passed=$P failed=$F skipped=$S"
sync
poweroff -f
echo o > /proc/sysrq-trigger
sleep 10
"#;

/// INIT2 with its placeholders filled in; `env` is exported too.
pub fn init2(timeout_secs: u64, env: &[(String, String)]) -> String {
    let exports: String = env.iter().map(|(k, v)| format!("export {k}='{v}'\n")).collect();
    INIT2
        .replace("@TIMEOUT@", &timeout_secs.to_string())
        .replace("@EXPORTS@\n", &exports)
}
