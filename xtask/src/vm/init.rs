//! The guest's init scripts (busybox sh). `/init` copies the initramfs onto
//! a tmpfs and `switch_root`s to it (pivot_root, which crabcan uses, does
//! not work with the initramfs' ramfs as root); `/init2` mounts proc, sysfs,
//! devtmpfs, cgroup2, enables the controllers, runs each test binary and
//! prints the lines the host parses, then powers off.
//!
//! For `cargo xtask bench --vm`, `/init2` runs [`INIT2_BENCH`] instead of
//! the tests: start-to-exit runs of `/bin/true` (crabcan, crabcan
//! `--no-cgroup`, the unshare+chroot floor) timed by the bench's spawner.
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

/// Stage 2's first line and comment: what the VM does.
const INIT2_TESTS_HEADER: &str = "#!/bin/sh\n# crabcan test VM, stage 2: mounts, cgroup2, run the tests, report.\n";

/// Stage 2's set-up, shared by the tests and the bench: mounts, cgroup2
/// with its controllers, the accounts, the `CRABCAN-VM-BOOTED` line.
pub const INIT2_SETUP: &str = r#"export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp
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
"#;

/// Stage 2 of the tests, after [`INIT2_SETUP`]: run the tests, report,
/// power off. `@TIMEOUT@` is the per-binary timeout in seconds,
/// `@EXPORTS@` extra `export` lines.
pub const INIT2_TESTS: &str = r#"
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

/// The tests' stage 2 with its placeholders filled in; `env` is exported too.
pub fn init2(timeout_secs: u64, env: &[(String, String)]) -> String {
    let exports = exports(env);
    let tests = INIT2_TESTS
        .replace("@TIMEOUT@", &timeout_secs.to_string())
        .replace("@EXPORTS@\n", &exports);
    format!("{INIT2_TESTS_HEADER}{INIT2_SETUP}{tests}")
}

/// Stage 2 of the bench, after [`INIT2_SETUP`]: `@WARMUP@` warm-up rounds,
/// then `@RUNS@` measured ones, each round running the three
/// configurations in turn (interleaved, so drifts hit all alike), each run
/// timed by the spawner (`$CRABCAN_SPAWNER`, from `@EXPORTS@`). `@ID_MAP@`
/// is the container's id map (the rootfs is owned by shifted ids, as in the
/// tests). One `CRABCAN-VM-BENCH <config> <ns> <rss KiB> <wait status>`
/// line per measured run (status -1: the spawner printed no report),
/// `CRABCAN-VM-BENCH-WARMUP ...` per warm-up run, a
/// `CRABCAN-VM-NOTE bench: ...` per failed run (with crabcan's last stderr
/// line), `CRABCAN-VM-BENCH-INFO clone3=yes|no|unknown ...` (from one
/// `--debug` run: did crabcan clone straight into its cgroup?), and
/// `CRABCAN-VM-SUMMARY passed=<good runs> failed=<failed runs> skipped=0`.
///
/// busybox's `unshare` has no `--cgroup` (nor the long options): the floor
/// is `unshare -r -m -p -f -u -i -n`, i.e. without the cgroup namespace.
pub const INIT2_BENCH: &str = r#"
# crabcan bench VM: start-to-exit of /bin/true, interleaved.
export CRABCAN_IN_VM=1
@EXPORTS@
B=/crabcan/bin/crabcan R=/crabcan/rootfs M=@ID_MAP@
OK=0; FAILED=0
one() {
  name=$1; kind=$2; round=$3
  case $name in
    crabcan) set -- "$B" --no-tty --mount "$R" --uid-map "$M" --gid-map "$M" -- /bin/true ;;
    crabcan-no-cgroup) set -- "$B" --no-tty --no-cgroup --mount "$R" --uid-map "$M" --gid-map "$M" -- /bin/true ;;
    floor) set -- unshare -r -m -p -f -u -i -n chroot "$R" /bin/true ;;
  esac
  out=$(cd /tmp && "$CRABCAN_SPAWNER" "$@" 2>/tmp/.bench-err)
  set -- $out
  if [ $# -ne 3 ]; then
    set -- 0 0 -1
  fi
  if [ "$kind" = measured ]; then
    echo "CRABCAN-VM-BENCH $name $1 $2 $3"
  else
    echo "CRABCAN-VM-BENCH-WARMUP $name $1 $2 $3"
  fi
  if [ "$3" = 0 ]; then
    OK=$((OK + 1))
  else
    FAILED=$((FAILED + 1))
    echo "CRABCAN-VM-NOTE bench: $name ($kind run $round) failed (wait status $3): $(tail -n 1 /tmp/.bench-err)"
  fi
}
clone3=unknown
dbg=$(cd /tmp && "$B" --debug --no-tty --mount "$R" --uid-map "$M" --gid-map "$M" -- /bin/true 2>&1 </dev/null)
rc=$?
if [ "$rc" != 0 ]; then
  FAILED=$((FAILED + 1))
  echo "CRABCAN-VM-NOTE bench: crabcan --debug failed (rc=$rc): $(echo "$dbg" | tail -n 1)"
elif echo "$dbg" | grep -q -e 'moved into its cgroup' -e 'CLONE_INTO_CGROUP) unavailable'; then
  clone3=no
elif echo "$dbg" | grep -q 'cloning into new namespaces'; then
  clone3=yes
fi
echo "CRABCAN-VM-BENCH-INFO clone3=$clone3 runs=@RUNS@ warmup=@WARMUP@ busybox=[$(busybox | head -n 1)]"
i=1
while [ "$i" -le @WARMUP@ ]; do
  for c in crabcan crabcan-no-cgroup floor; do one "$c" warm-up "$i"; done
  i=$((i + 1))
done
i=1
while [ "$i" -le @RUNS@ ]; do
  for c in crabcan crabcan-no-cgroup floor; do one "$c" measured "$i"; done
  i=$((i + 1))
done
echo "CRABCAN-VM-SUMMARY passed=$OK failed=$FAILED skipped=0"
sync
poweroff -f
echo o > /proc/sysrq-trigger
sleep 10
"#;

/// The bench's stage 2: [`INIT2_SETUP`] then [`INIT2_BENCH`] with its
/// placeholders filled in; `env` is exported too.
pub fn bench_init2(runs: u32, warmup: u32, id_map: &str, env: &[(String, String)]) -> String {
    let bench = INIT2_BENCH
        .replace("@RUNS@", &runs.to_string())
        .replace("@WARMUP@", &warmup.to_string())
        .replace("@ID_MAP@", id_map)
        .replace("@EXPORTS@\n", &exports(env));
    format!("#!/bin/sh\n# crabcan bench VM, stage 2: mounts, cgroup2, the bench runs, report.\n{INIT2_SETUP}{bench}")
}

fn exports(env: &[(String, String)]) -> String {
    env.iter().map(|(k, v)| format!("export {k}='{v}'\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in() {
        let env = [("CRABCAN_SPAWNER".to_string(), "/crabcan/bin/spawner".to_string())];
        let tests = init2(60, &env);
        assert!(tests.starts_with("#!/bin/sh\n") && tests.contains("timeout 60 "));
        let bench = bench_init2(7, 2, "0:1000000000:65536", &env);
        assert!(bench.starts_with("#!/bin/sh\n"));
        assert!(bench.contains("CRABCAN-VM-BOOTED") && bench.contains("[ \"$i\" -le 7 ]"));
        assert!(
            bench.contains("M=0:1000000000:65536") && bench.contains("export CRABCAN_SPAWNER='/crabcan/bin/spawner'")
        );
        for script in [&tests, &bench] {
            for placeholder in ["@TIMEOUT@", "@EXPORTS@", "@RUNS@", "@WARMUP@", "@ID_MAP@"] {
                assert!(!script.contains(placeholder), "{placeholder} is left: {script}");
            }
            assert!(script.contains("poweroff -f"));
        }
        assert!(!bench.contains("/crabcan/tests"));
    }
}
