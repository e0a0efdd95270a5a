//! `ct-check`: the disassembly test of the firmware's constant-time claim.
//!
//! Disassembles a release firmware image (`llvm-objdump -d`, or `$OBJDUMP`), builds the static
//! call graph (direct calls and tail branches between functions) from every function whose
//! demangled name contains a root path, and fails when a reachable function
//!
//! * is a soft-float or integer-division library routine ([`forbidden_routine`]: the ARM EABI
//!   `__aeabi_d*`/`__aeabi_f*` arithmetic, conversions and comparisons, `__aeabi_[u]idiv*` and
//!   `__aeabi_[u]ldivmod`, the compiler-rt `__*df3`/`__*sf3`/`__*div*i3`/`__*mod*i3` and
//!   conversion routines, and anything from `libm`), or
//! * contains a divide instruction (`udiv`, `sdiv`: early-terminating on the Cortex-M4/M7) or a
//!   floating-point arithmetic, conversion or comparison instruction (`vadd`, `vmul`, `vdiv`,
//!   `vsqrt`, `vcvt`, `vcmp`, ...). Moves and loads of FP registers (`vmov`, `vldr`, `vpush`)
//!   carry no arithmetic and are allowed.
//!
//! The walk does not enter the panic machinery (functions whose name contains `panic`,
//! `_fail`, `unwrap_failed` or `expect_failed`): those paths end the firmware on a failed
//! shape check and format a message; they never return into the computation. Indirect calls
//! (`blx rN`) cannot be followed and are listed; the check fails on them too, since a callee it
//! cannot see could be anything.
//!
//! Output: the number of functions reached (and their names with `CT_CHECK_LIST=1`), then one line per finding with the call chain from
//! the root. Exit status non-zero on any finding (and when no root symbol is found).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

type Res<T> = Result<T, String>;

/// A function of the disassembly: its instructions as (mnemonic, operands) pairs.
struct Function {
    insns: Vec<(String, String)>,
}

/// The disassembly: functions by full symbol name, and their start addresses.
struct Disassembly {
    funcs: BTreeMap<String, Function>,
    starts: BTreeMap<u64, String>,
}

impl Disassembly {
    /// The function containing `addr`.
    fn containing(&self, addr: u64) -> Option<&str> {
        self.starts.range(..=addr).next_back().map(|(_, n)| n.as_str())
    }
}

/// Library routines the encryption path must not call.
pub fn forbidden_routine(name: &str) -> bool {
    const ALLOWED_AEABI: [&str; 8] = [
        "__aeabi_mem",
        "__aeabi_lmul",
        "__aeabi_llsl",
        "__aeabi_llsr",
        "__aeabi_lasr",
        "__aeabi_uread",
        "__aeabi_uwrite",
        "__aeabi_read_tp",
    ];
    if name.starts_with("__aeabi_") {
        return !ALLOWED_AEABI.iter().any(|a| name.starts_with(a));
    }
    let rt = name.strip_prefix("__").unwrap_or("");
    let soft_float = [
        "df2", "df3", "sf2", "sf3", "dfsi", "dfdi", "dfti", "sfsi", "sfdi", "sidf", "disf", "didf", "tidf", "sisf",
    ]
    .iter()
    .any(|s| rt.ends_with(s));
    let division = [
        "udivsi3",
        "divsi3",
        "umodsi3",
        "modsi3",
        "udivdi3",
        "divdi3",
        "umoddi3",
        "moddi3",
        "udivmoddi4",
        "udivti3",
        "divti3",
        "umodti3",
        "modti3",
        "udivmodti4",
        "udivmodsi4",
        "divmodsi4",
        "divmoddi4",
    ]
    .contains(&rt);
    soft_float
        || division
        || name.starts_with("libm::")
        || name.contains("compiler_builtins::float")
        || name.contains("compiler_builtins::int::udiv")
        || name.contains("compiler_builtins::int::sdiv")
}

/// Divide and floating-point arithmetic instructions.
pub fn forbidden_instruction(mnemonic: &str) -> bool {
    let m = mnemonic.split('.').next().unwrap_or(mnemonic);
    matches!(m, "udiv" | "sdiv")
        || [
            "vadd", "vsub", "vmul", "vnmul", "vdiv", "vsqrt", "vfma", "vfms", "vfnma", "vfnms", "vmla", "vmls", "vnmla", "vnmls", "vcvt",
            "vcvtr", "vcvta", "vcvtn", "vcvtp", "vcvtm", "vcmp", "vcmpe", "vabs", "vneg", "vrinta", "vrintn", "vrintp", "vrintm", "vrintx",
            "vrintz", "vrintr", "vmaxnm", "vminnm", "vsel",
        ]
        .contains(&m)
}

/// Functions the walk does not enter: the panic paths (see the module docs).
fn diverging(name: &str) -> bool {
    name.contains("panic") || name.contains("_fail") || name.contains("unwrap_failed") || name.contains("expect_failed")
}

/// Strips the legacy-mangling hash suffix `::h0123456789abcdef`.
fn clean(name: &str) -> &str {
    match name.rfind("::h") {
        Some(i) if name.len() - i == 19 && name[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => &name[..i],
        _ => name,
    }
}

fn objdump(elf: &str) -> Res<String> {
    let tool = std::env::var("OBJDUMP").unwrap_or_else(|_| "llvm-objdump".into());
    let out = Command::new(&tool)
        .args(["-d", "--no-show-raw-insn", "--demangle", elf])
        .output()
        .map_err(|e| format!("{tool}: {e} (set OBJDUMP to an llvm-objdump that knows Thumb-2)"))?;
    if !out.status.success() {
        return Err(format!("{tool} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{tool}: output is not UTF-8: {e}"))
}

/// Parses `llvm-objdump -d` text. ARM mapping symbols (`$t`, `$d`, `$a`: the start of Thumb
/// code, data such as literal pools, ARM code) are labels inside a function, not functions.
fn parse(text: &str) -> Disassembly {
    let mut funcs = BTreeMap::new();
    let mut starts = BTreeMap::new();
    let mut current: Option<(String, Function)> = None;
    for line in text.lines() {
        // Function header: "00001234 <name>:"
        if let (Some(open), true) = (line.find(" <"), line.ends_with(">:")) {
            if open > 0 && line[..open].bytes().all(|b| b.is_ascii_hexdigit()) {
                let name = &line[open + 2..line.len() - 2];
                if name.starts_with('$') {
                    continue;
                }
                if let Some((prev, f)) = current.take() {
                    funcs.insert(prev, f);
                }
                if let Ok(addr) = u64::from_str_radix(&line[..open], 16) {
                    starts.insert(addr, name.to_string());
                }
                current = Some((name.to_string(), Function { insns: Vec::new() }));
                continue;
            }
        }
        // Instruction: "    1234:      \tmnemonic\toperands"
        let Some((addr, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let mut parts = rest.trim().splitn(2, char::is_whitespace);
        let mnemonic = parts.next().unwrap_or("").to_string();
        let operands = parts.next().unwrap_or("").trim().to_string();
        if let Some((_, f)) = current.as_mut() {
            if !mnemonic.is_empty() {
                f.insns.push((mnemonic, operands));
            }
        }
    }
    if let Some((name, f)) = current.take() {
        funcs.insert(name, f);
    }
    Disassembly { funcs, starts }
}

/// The address a direct branch goes to: the first operand, "0x1234 <name+0x10> @ imm = #..".
fn branch_address(operands: &str) -> Option<u64> {
    let first = operands.split_whitespace().find(|t| t.starts_with("0x"))?;
    u64::from_str_radix(first.trim_start_matches("0x").trim_end_matches(','), 16).ok()
}

/// The symbol name a branch operand shows: "0x1234 <name+0x10>" -> "name" (for routines
/// outside the disassembly, such as an absent library symbol).
fn branch_target(operands: &str) -> Option<&str> {
    let start = operands.find('<')? + 1;
    let end = operands.rfind('>')?;
    let inner = operands.get(start..end)?;
    Some(inner.split('+').next().unwrap_or(inner))
}

fn is_branch(mnemonic: &str) -> bool {
    let m = mnemonic.split('.').next().unwrap_or(mnemonic);
    m == "bl"
        || m == "blx"
        || m == "b"
        || (m.len() == 3 && m.starts_with('b') && m != "bic" && m != "bfi" && m != "bfc")
        || m == "cbz"
        || m == "cbnz"
}

/// Runs the check; returns the report lines and whether it passed.
pub fn check(elf: &str, roots: &[String]) -> Res<(Vec<String>, bool)> {
    check_text(&objdump(elf)?, elf, roots)
}

fn check_text(text: &str, elf: &str, roots: &[String]) -> Res<(Vec<String>, bool)> {
    let dis = parse(text);
    let starts: Vec<&str> = dis
        .funcs
        .keys()
        .map(String::as_str)
        .filter(|name| roots.iter().any(|r| name.contains(r.as_str())))
        .collect();
    if starts.is_empty() {
        return Err(format!(
            "no function matching {roots:?} in {elf} (inlined? mark it #[inline(never)])"
        ));
    }
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut seen: BTreeSet<&str> = starts.iter().copied().collect();
    let mut queue: VecDeque<&str> = starts.iter().copied().collect();
    let mut findings: Vec<(String, &str)> = Vec::new();
    while let Some(name) = queue.pop_front() {
        if forbidden_routine(clean(name)) {
            findings.push((format!("calls library routine {}", clean(name)), name));
            continue;
        }
        let Some(f) = dis.funcs.get(name) else {
            continue;
        };
        for (mnemonic, operands) in &f.insns {
            if forbidden_instruction(mnemonic) {
                findings.push((format!("{mnemonic} {operands} in {}", clean(name)), name));
            }
            if !is_branch(mnemonic) {
                continue;
            }
            let target = branch_address(operands).and_then(|a| dis.containing(a));
            match target {
                Some(target) if target != name => {
                    if diverging(target) {
                        continue;
                    }
                    if let Some((key, _)) = dis.funcs.get_key_value(target) {
                        if seen.insert(key.as_str()) {
                            parent.insert(key.as_str(), name);
                            queue.push_back(key.as_str());
                        }
                    }
                }
                Some(_) => {}
                None => match branch_target(operands) {
                    Some(sym) if forbidden_routine(clean(sym)) => {
                        findings.push((format!("calls library routine {}", clean(sym)), name));
                    }
                    Some(_) => {}
                    None if mnemonic.starts_with("blx") || (mnemonic.starts_with("bx") && operands != "lr") => {
                        findings.push((format!("indirect branch `{mnemonic} {operands}` in {}", clean(name)), name));
                    }
                    None => {}
                },
            }
        }
    }
    let mut report = vec![format!("ct-check: {} functions reachable from {roots:?} in {elf}", seen.len())];
    if std::env::var_os("CT_CHECK_LIST").is_some() {
        report.extend(seen.iter().map(|f| format!("  reached: {}", clean(f))));
    }
    for (what, at) in &findings {
        let mut chain = vec![at];
        let mut cur = at;
        while let Some(p) = parent.get(cur) {
            chain.push(p);
            cur = p;
            if chain.len() > 64 {
                break;
            }
        }
        chain.reverse();
        report.push(format!(
            "  FORBIDDEN: {what}\n    via {}",
            chain.iter().map(|s| clean(s)).collect::<Vec<_>>().join(" -> ")
        ));
    }
    Ok((report, findings.is_empty()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_routines_and_instructions() {
        for bad in [
            "__aeabi_dadd",
            "__aeabi_ddiv",
            "__aeabi_uldivmod",
            "__aeabi_l2d",
            "__aeabi_dcmplt",
            "__udivti3",
            "__umodti3",
            "__divdf3",
            "__floatundidf",
            "__fixdfdi",
            "libm::math::round::round",
        ] {
            assert!(forbidden_routine(bad), "{bad}");
        }
        for ok in [
            "__aeabi_memcpy",
            "__aeabi_memclr8",
            "__aeabi_lmul",
            "__multi3",
            "clifhe_core::arith::Modulus::reduce_u128",
            "__ashlti3",
        ] {
            assert!(!forbidden_routine(ok), "{ok}");
        }
        for bad in ["udiv", "sdiv", "vdiv.f32", "vsqrt.f32", "vadd.f32", "vcvt.s32.f32", "vcmpe.f32"] {
            assert!(forbidden_instruction(bad), "{bad}");
        }
        for ok in ["umull", "umlal", "vmov", "vldr", "vpush", "mul", "lsrs"] {
            assert!(!forbidden_instruction(ok), "{ok}");
        }
    }

    #[test]
    fn parses_objdump_text() {
        let text = "\n00000100 <root::h0123456789abcdef>:\n     100: \tpush\t{r7, lr}\n     102: \tbl\t0x200 <leaf>\n     106: \tb.w\t0x300 <__aeabi_dmul>\n     10a: \tpop\t{r7, pc}\n\n00000200 <leaf>:\n     200: \tudiv\tr0, r0, r1\n     204: \tbx\tlr\n\n00000300 <__aeabi_dmul>:\n     300: \tbx\tlr\n";
        let d = parse(text);
        assert_eq!(d.funcs.len(), 3);
        assert_eq!(d.funcs["root::h0123456789abcdef"].insns.len(), 4);
        assert_eq!(branch_target("0x200 <leaf+0x4>"), Some("leaf"));
        assert_eq!(branch_address("0x204 <leaf+0x4> @ imm = #12"), Some(0x204));
        assert_eq!(d.containing(0x204), Some("leaf"));
        // The walk finds the divide in the callee and the tail call into soft float, with the
        // chain from the root; a root that reaches neither passes.
        let (report, ok) = check_text(text, "test", &["root".into()]).unwrap();
        assert!(!ok);
        assert_eq!(report.len(), 3, "{report:?}");
        assert!(
            report.iter().any(|l| l.contains("udiv") && l.contains("root -> leaf")),
            "{report:?}"
        );
        assert!(report.iter().any(|l| l.contains("__aeabi_dmul")), "{report:?}");
        let clean_text = "00000100 <root>:\n     100: \tbl\t0x200 <core::panicking::panic>\n     104: \tbx\tlr\n00000200 <core::panicking::panic>:\n     200: \tudiv\tr0, r0, r1\n";
        assert!(check_text(clean_text, "test", &["root".into()]).unwrap().1);
        assert!(check_text(clean_text, "test", &["absent".into()]).is_err());
    }
}
