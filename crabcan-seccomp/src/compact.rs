//! The syscall-number dispatch of a compiled filter, laid out again as a binary search over
//! ranges of numbers.
//!
//! libseccomp turns a profile into one `JEQ` per syscall that has a rule, arranged as a tree
//! (`SCMP_FLTATR_CTL_OPTIMIZE`). Neighbouring syscall numbers mostly go to the same place (the
//! allow return, the default action, one argument check), so the same decisions fit in a search
//! over the ranges of numbers that share a destination: the default profile's 520 dispatch jumps
//! become 87 range tests, and its program shrinks from 640 instructions to 266. The kernel
//! checks, converts and JIT-compiles every instruction when the filter is installed (about
//! 0.2 µs each on the bench machine), and each syscall of the container walks the dispatch.
//!
//! Only the dispatch changes. Every other instruction (the architecture check, the argument
//! checks, the returns) is kept, in its order, with its jumps pointed at the same instructions
//! as before. The result is checked before it is used: every number at which either dispatch can
//! change its mind is run through both, and both must reach the same kept instruction. A program
//! of a shape this module does not know, or one it cannot make shorter, is left as it was.

use std::collections::{HashMap, HashSet};

use libc::sock_filter;

use crate::evaluate::{CLASS_JMP, CLASS_MASK, CLASS_RET};

/// `BPF_LD | BPF_W | BPF_ABS`: loads a word of `struct seccomp_data`.
const LOAD_WORD: u16 = 0x20;
/// The offset of `nr` (the syscall number) in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
/// `BPF_JMP | BPF_JA`.
const JUMP_ALWAYS: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const JUMP_EQUAL: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
const JUMP_GREATER: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`.
const JUMP_GREATER_OR_EQUAL: u16 = 0x35;
/// `BPF_JMP | BPF_JSET | BPF_K`.
const JUMP_BITS_SET: u16 = 0x45;
/// The longest program the kernel accepts.
const MAX_INSTRUCTIONS: usize = crate::compile::MAX_INSTRUCTIONS;
/// Dispatch trees smaller than this are left alone.
const MIN_TREE: usize = 8;

/// `program` with its largest syscall-number dispatch laid out as a search over ranges, or
/// `None` if that would not make it shorter or the program is not of a shape handled here.
pub(crate) fn compact(program: &[sock_filter]) -> Option<Vec<sock_filter>> {
    let dispatch = (0..program.len())
        .filter(|&at| program[at].code == LOAD_WORD && program[at].k == NR_OFFSET)
        .filter_map(|load| Dispatch::find(program, load))
        .max_by_key(|dispatch| dispatch.nodes.len())?;
    if dispatch.nodes.len() < MIN_TREE {
        return None;
    }
    let compacted = dispatch.lay_out(program)?;
    (compacted.len() < program.len() && compacted.len() <= MAX_INSTRUCTIONS).then_some(compacted)
}

/// The destinations of instruction `at` if it is a jump: where it goes when its test holds (or
/// always), and where when it does not (`None` for an unconditional jump).
fn jump_destinations(instruction: &sock_filter, at: usize) -> Option<(usize, Option<usize>)> {
    match instruction.code & CLASS_MASK {
        CLASS_JMP if instruction.code == JUMP_ALWAYS => Some((at + 1 + instruction.k as usize, None)),
        CLASS_JMP => Some((
            at + 1 + usize::from(instruction.jt),
            Some(at + 1 + usize::from(instruction.jf)),
        )),
        _ => None,
    }
}

/// Where execution goes after instruction `at`: its jump destinations, or the next instruction.
fn successors(program: &[sock_filter], at: usize) -> Vec<usize> {
    let instruction = program[at];
    match jump_destinations(&instruction, at) {
        Some((taken, not_taken)) => std::iter::once(taken).chain(not_taken).collect(),
        None if instruction.code & CLASS_MASK == CLASS_RET => Vec::new(),
        None => vec![at + 1],
    }
}

/// A test of the syscall number in the accumulator that the dispatch is made of.
fn is_dispatch_node(instruction: &sock_filter) -> bool {
    matches!(
        instruction.code,
        JUMP_ALWAYS | JUMP_EQUAL | JUMP_GREATER | JUMP_GREATER_OR_EQUAL
    )
}

/// The dispatch after one load of the syscall number.
struct Dispatch {
    /// The load of the syscall number; the dispatch starts right after it.
    load: usize,
    /// The dispatch's instructions (all after `load`), in program order.
    nodes: Vec<usize>,
    /// Every number at which a test of the dispatch changes its outcome, and 0, ascending: the
    /// destination is the same for all numbers from one of these up to the next.
    boundaries: Vec<u32>,
}

impl Dispatch {
    /// The dispatch after `load`: the tests of the accumulator (the syscall number) reachable
    /// from the instruction after it. `None` if it tests bits (`JSET`, which ranges cannot
    /// express), leaves the program, or is entered from anywhere but its start.
    fn find(program: &[sock_filter], load: usize) -> Option<Dispatch> {
        let start = load + 1;
        let mut is_node = vec![false; program.len()];
        let mut pending = vec![start];
        while let Some(at) = pending.pop() {
            let instruction = program.get(at)?;
            if instruction.code == JUMP_BITS_SET {
                return None;
            }
            if is_dispatch_node(instruction) && !is_node[at] {
                is_node[at] = true;
                pending.extend(successors(program, at));
            }
        }
        // Only the start may be reached from outside the dispatch.
        for at in (0..program.len()).filter(|&at| !is_node[at]) {
            let entered = successors(program, at)
                .into_iter()
                .any(|next| next != start && is_node.get(next).copied().unwrap_or(false));
            if entered {
                return None;
            }
        }
        let nodes: Vec<usize> = (0..program.len()).filter(|&at| is_node[at]).collect();
        let mut boundaries = vec![0u64];
        for &at in &nodes {
            let k = u64::from(program[at].k);
            match program[at].code {
                JUMP_EQUAL => boundaries.extend([k, k + 1]),
                JUMP_GREATER => boundaries.push(k + 1),
                JUMP_GREATER_OR_EQUAL => boundaries.push(k),
                _ => {}
            }
        }
        let mut boundaries: Vec<u32> = boundaries.into_iter().filter_map(|b| u32::try_from(b).ok()).collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        Some(Dispatch {
            load,
            nodes,
            boundaries,
        })
    }

    /// The instruction outside the dispatch that syscall number `nr` leads to.
    fn destination(&self, program: &[sock_filter], nr: u32) -> usize {
        let mut at = self.load + 1;
        while self.nodes.binary_search(&at).is_ok() {
            at = route(&program[at], at, nr);
        }
        at
    }

    /// The ranges of numbers with one destination each: `(first number, destination)`,
    /// ascending, neighbours with different destinations.
    fn ranges(&self, program: &[sock_filter]) -> Vec<(u32, usize)> {
        let mut ranges: Vec<(u32, usize)> = Vec::new();
        for &first in &self.boundaries {
            let destination = self.destination(program, first);
            if ranges.last().map(|&(_, last)| last) != Some(destination) {
                ranges.push((first, destination));
            }
        }
        ranges
    }

    /// The whole program again, with this dispatch replaced by a search over its ranges.
    fn lay_out(&self, program: &[sock_filter]) -> Option<Vec<sock_filter>> {
        let ranges = self.ranges(program);
        let is_node = |at: usize| self.nodes.binary_search(&at).is_ok();
        let mut items: Vec<Item> = Vec::with_capacity(program.len());
        for at in 0..=self.load {
            items.push(Item::kept(program, at));
        }
        let mut labels = 0;
        search(&ranges, Label::Old(self.load + 1), &mut items, &mut labels);
        for at in (self.load + 1..program.len()).filter(|&at| !is_node(at)) {
            items.push(Item::kept(program, at));
        }
        skip_direct_jumps(&mut items);
        let encoded = encode(&mut items, &mut labels)?;
        self.check(program, &items, &encoded).then_some(encoded)
    }

    /// Runs every boundary number through the new dispatch: it must reach the instruction the
    /// old one reaches, at its new place.
    fn check(&self, program: &[sock_filter], items: &[Item], encoded: &[sock_filter]) -> bool {
        let place: HashMap<Label, usize> = items
            .iter()
            .enumerate()
            .filter_map(|(at, item)| item.label.map(|label| (label, at)))
            .collect();
        let Some(&start) = place.get(&Label::Old(self.load + 1)) else {
            return false;
        };
        let agrees = |nr: u32| {
            let mut at = start;
            while items.get(at).is_some_and(|item| item.routing) {
                at = route(&encoded[at], at, nr);
            }
            let expected = place.get(&Label::Old(self.destination(program, nr)));
            expected == Some(&at)
        };
        self.boundaries.iter().all(|&nr| agrees(nr))
    }
}

/// Where a dispatch test at `at` sends syscall number `nr`.
fn route(instruction: &sock_filter, at: usize, nr: u32) -> usize {
    let taken = match instruction.code {
        JUMP_ALWAYS => return at + 1 + instruction.k as usize,
        JUMP_EQUAL => nr == instruction.k,
        JUMP_GREATER => nr > instruction.k,
        _ => nr >= instruction.k,
    };
    at + 1 + usize::from(if taken { instruction.jt } else { instruction.jf })
}

/// A place in the new program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    /// The instruction that was at this index of the old program (for the dispatch's start:
    /// the new dispatch).
    Old(usize),
    /// A test or jump of the new dispatch, or a trampoline.
    New(usize),
}

/// One instruction of the new program, its jumps still by label.
#[derive(Debug, Clone, Copy)]
struct Item {
    code: u16,
    k: u32,
    /// A conditional jump's two destinations, or an unconditional jump's one (in `jt`).
    jt: Option<Label>,
    jf: Option<Label>,
    /// The label of this instruction, if anything may jump to it.
    label: Option<Label>,
    /// Part of the new dispatch (a test, a jump to a destination, a trampoline).
    routing: bool,
}

impl Item {
    /// Instruction `at` of the old program, unchanged but for its jumps.
    fn kept(program: &[sock_filter], at: usize) -> Item {
        let instruction = program[at];
        let (jt, jf) = match jump_destinations(&instruction, at) {
            Some((taken, not_taken)) => (Some(Label::Old(taken)), not_taken.map(Label::Old)),
            None => (None, None),
        };
        Item {
            code: instruction.code,
            k: instruction.k,
            jt,
            jf,
            label: Some(Label::Old(at)),
            routing: false,
        }
    }

    fn jump(label: Option<Label>, to: Label) -> Item {
        Item {
            code: JUMP_ALWAYS,
            k: 0,
            jt: Some(to),
            jf: None,
            label,
            routing: true,
        }
    }
}

/// Appends a binary search over `ranges` whose first instruction is `label`: a test
/// `nr >= first of the middle range` splits the ranges in two, down to one range, which is a jump
/// to its destination.
fn search(ranges: &[(u32, usize)], label: Label, items: &mut Vec<Item>, labels: &mut usize) {
    if let [(_, destination)] = ranges {
        items.push(Item::jump(Some(label), Label::Old(*destination)));
        return;
    }
    let middle = ranges.len() / 2;
    let (low, high) = (new_label(labels), new_label(labels));
    items.push(Item {
        code: JUMP_GREATER_OR_EQUAL,
        k: ranges[middle].0,
        jt: Some(high),
        jf: Some(low),
        label: Some(label),
        routing: true,
    });
    search(&ranges[..middle], low, items, labels);
    search(&ranges[middle..], high, items, labels);
}

fn new_label(labels: &mut usize) -> Label {
    *labels += 1;
    Label::New(*labels)
}

/// Points the search's tests straight at the destinations of the jumps they lead to, and drops
/// those jumps (the distances are checked, and trampolines added where needed, by [`encode`]).
/// The search's first instruction stays even when it is such a jump (a search over one range):
/// the load before it falls through to it.
fn skip_direct_jumps(items: &mut Vec<Item>) {
    let jumps: HashMap<Label, Label> = items
        .iter()
        .filter(|item| item.routing && item.code == JUMP_ALWAYS)
        .filter_map(|item| Some((item.label?, item.jt?)))
        .collect();
    for item in items.iter_mut().filter(|item| item.routing && item.code != JUMP_ALWAYS) {
        for branch in [&mut item.jt, &mut item.jf] {
            if let Some(to) = branch.and_then(|label| jumps.get(&label)) {
                *branch = Some(*to);
            }
        }
    }
    let targeted: HashSet<Label> = items.iter().flat_map(|item| [item.jt, item.jf]).flatten().collect();
    items.retain(|item| {
        let unreachable_jump = item.routing
            && item.code == JUMP_ALWAYS
            && matches!(item.label, Some(label @ Label::New(_)) if !targeted.contains(&label));
        !unreachable_jump
    });
}

/// Resolves the labels into offsets. A conditional jump that cannot reach a destination gets a
/// trampoline (an unconditional jump) right after it. `None` if a jump would go backwards or to
/// no instruction.
fn encode(items: &mut Vec<Item>, labels: &mut usize) -> Option<Vec<sock_filter>> {
    loop {
        match encode_once(items) {
            Encoded::Done(program) => return Some(program),
            Encoded::Invalid => return None,
            Encoded::TooFar { at, taken } => {
                let trampoline = new_label(labels);
                let branch = if taken { &mut items[at].jt } else { &mut items[at].jf };
                let to = branch.replace(trampoline)?;
                items.insert(at + 1, Item::jump(Some(trampoline), to));
            }
        }
    }
}

enum Encoded {
    Done(Vec<sock_filter>),
    /// The conditional jump at `at` cannot reach its destination when the test is (`taken`) or
    /// is not true.
    TooFar {
        at: usize,
        taken: bool,
    },
    Invalid,
}

fn encode_once(items: &[Item]) -> Encoded {
    let place: HashMap<Label, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(at, item)| item.label.map(|label| (label, at)))
        .collect();
    let offset = |at: usize, label: Option<Label>| -> Option<usize> {
        let to = *place.get(&label?)?;
        to.checked_sub(at + 1)
    };
    let mut program = Vec::with_capacity(items.len());
    for (at, item) in items.iter().enumerate() {
        let (mut jt, mut jf, mut k) = (0, 0, item.k);
        match (item.jt, item.jf) {
            (None, None) => {}
            (Some(_), None) => match offset(at, item.jt).and_then(|far| u32::try_from(far).ok()) {
                Some(far) => k = far,
                None => return Encoded::Invalid,
            },
            (taken, not_taken) => {
                let (Some(far_taken), Some(far_not_taken)) = (offset(at, taken), offset(at, not_taken)) else {
                    return Encoded::Invalid;
                };
                match (u8::try_from(far_taken), u8::try_from(far_not_taken)) {
                    (Ok(t), Ok(f)) => (jt, jf) = (t, f),
                    (Err(_), _) => return Encoded::TooFar { at, taken: true },
                    (_, Err(_)) => return Encoded::TooFar { at, taken: false },
                }
            }
        }
        program.push(sock_filter {
            code: item.code,
            jt,
            jf,
            k,
        });
    }
    Encoded::Done(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::SyscallData;
    use crate::profile::{Action, ArgCondition, CmpOp, Profile, Rule};
    use crate::{Arch, CompiledFilter, ShippedProfile};
    use proptest::prelude::*;

    /// Calls whose verdicts must not change: every number near a constant of either program,
    /// every number up to 1100, x32 numbers, the largest ones; each with several argument sets,
    /// on the native and on a foreign architecture.
    fn calls(programs: [&[sock_filter]; 2]) -> Vec<SyscallData> {
        let mut numbers: Vec<u32> = (0..1100).collect();
        for program in programs {
            for instruction in program {
                numbers.extend([
                    instruction.k.wrapping_sub(1),
                    instruction.k,
                    instruction.k.wrapping_add(1),
                ]);
            }
        }
        numbers.extend([0x4000_0000, 0x4000_0001, 0x4000_0000 + 59, u32::MAX - 1, u32::MAX]);
        numbers.sort_unstable();
        numbers.dedup();
        let arguments: [&[u64]; 5] = [
            &[],
            &[1, 2, 3, 4, 5, 6],
            &[libc::CLONE_NEWUSER as u64, 0, 0],
            &[libc::AF_NETLINK as u64, libc::SOCK_RAW as u64],
            &[0, libc::TIOCSTI, 0, u64::MAX, 1 << 32, 0x7fff_ffff],
        ];
        let mut calls = Vec::new();
        for &nr in &numbers {
            for args in arguments {
                let call = SyscallData::native(nr as i32, args);
                calls.push(call);
                calls.push(SyscallData {
                    arch: 0x4000_0028,
                    ..call
                });
            }
        }
        calls
    }

    fn assert_same_verdicts(before: &[sock_filter], after: &[sock_filter]) {
        let (old, new) = (
            CompiledFilter {
                program: before.to_vec(),
            },
            CompiledFilter {
                program: after.to_vec(),
            },
        );
        for call in calls([before, after]) {
            assert_eq!(old.evaluate(&call), new.evaluate(&call), "{call:?}");
        }
    }

    /// The program libseccomp makes, before compaction.
    fn uncompacted(profile: &Profile) -> Vec<sock_filter> {
        let rules: Vec<(&Rule, u32)> = profile
            .rules
            .iter()
            .map(|rule| (rule, crate::compile::action_code(rule.action)))
            .collect();
        crate::compile::build_uncompacted(crate::compile::action_code(profile.default_action), &rules, String::new)
            .unwrap()
            .program
    }

    #[test]
    fn the_shipped_profiles_shrink_and_decide_as_before() {
        for shipped in ShippedProfile::ALL {
            let before = uncompacted(&shipped.profile());
            let after = shipped.profile().compile().unwrap().program;
            assert!(
                after.len() <= before.len(),
                "{shipped}: {} from {}",
                after.len(),
                before.len()
            );
            if shipped == ShippedProfile::Default {
                assert!(after.len() * 2 < before.len(), "{} from {}", after.len(), before.len());
            }
            assert_same_verdicts(&before, &after);
        }
    }

    #[test]
    fn far_destinations_get_trampolines() {
        // An allowlist whose every third syscall is allowed only for given 64-bit values of four
        // arguments: those checks put most destinations more than 255 instructions after the
        // search.
        let rules = crate::syscalls::all(Arch::NATIVE)
            .iter()
            .enumerate()
            .map(|(at, (name, _))| Rule {
                syscall: (*name).to_owned(),
                action: Action::Allow,
                args: if at % 3 == 0 {
                    (0..4)
                        .map(|index| ArgCondition {
                            index,
                            op: CmpOp::Equal,
                            value: (u64::from(index) + 1) << 36 | at as u64,
                            value_two: 0,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        let profile = Profile {
            default_action: Action::Errno(libc::EPERM as u32),
            rules,
        };
        let before = uncompacted(&profile);
        let after = compact(&before).expect("the dispatch shrinks");
        assert!(after.len() < before.len(), "{} from {}", after.len(), before.len());
        assert!(
            after.iter().any(|instruction| instruction.code == JUMP_ALWAYS),
            "a trampoline is needed"
        );
        assert_same_verdicts(&before, &after);
    }

    #[test]
    fn programs_of_other_shapes_are_left_alone() {
        let allow = sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        };
        assert!(compact(&[allow]).is_none());
        // A dispatch that tests bits cannot become ranges.
        let load = sock_filter {
            code: LOAD_WORD,
            jt: 0,
            jf: 0,
            k: 0,
        };
        let mut program = vec![load];
        for bit in 0..10 {
            program.push(sock_filter {
                code: JUMP_BITS_SET,
                jt: 0,
                jf: 0,
                k: 1 << bit,
            });
        }
        program.push(allow);
        assert!(compact(&program).is_none());
    }

    /// An allowlist as real profiles are: every syscall of the table allowed, but up to 40
    /// chosen ones, which get another action, argument conditions, or no rule (the default).
    fn arb_rules() -> impl Strategy<Value = Vec<Rule>> {
        let names: Vec<String> = crate::syscalls::all(Arch::NATIVE)
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        let action = prop_oneof![
            Just(Action::Allow),
            Just(Action::Errno(libc::EPERM as u32)),
            Just(Action::KillProcess),
            Just(Action::Log),
        ];
        let condition = (0usize..3, any::<u64>());
        let special = proptest::option::of((action, proptest::collection::vec(condition, 0..3)));
        (
            proptest::sample::subsequence(names.clone(), 0..40),
            proptest::collection::vec(special, 40),
        )
            .prop_map(move |(chosen, shapes)| {
                let mut shapes = shapes.into_iter();
                let mut rules = Vec::new();
                for syscall in &names {
                    let shape = if chosen.contains(syscall) {
                        match shapes.next().flatten() {
                            Some(shape) => shape,
                            None => continue,
                        }
                    } else {
                        (Action::Allow, Vec::new())
                    };
                    let (action, conditions) = shape;
                    let args = conditions
                        .into_iter()
                        .enumerate()
                        .map(|(index, (op, value))| ArgCondition {
                            index: index as u8,
                            op: [CmpOp::Equal, CmpOp::NotEqual, CmpOp::GreaterThan][op],
                            value,
                            value_two: 0,
                        })
                        .collect();
                    rules.push(Rule {
                        syscall: syscall.clone(),
                        action,
                        args,
                    });
                }
                rules
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn compaction_never_changes_a_verdict(
            default in prop_oneof![Just(Action::Errno(libc::ENOSYS as u32)), Just(Action::KillProcess)],
            rules in arb_rules(),
        ) {
            let profile = Profile { default_action: default, rules };
            prop_assume!(profile.validate().is_ok(), "profiles crabcan refuses are not compiled");
            let before = uncompacted(&profile);
            // Left alone (a small dispatch, or one whose ranges would not be shorter), it is the
            // same program.
            if let Some(after) = compact(&before) {
                prop_assert!(after.len() < before.len());
                assert_same_verdicts(&before, &after);
            }
        }
    }
}
