//! `presets`: the parameter sets compiled into this build, with figures computed from their
//! actual primes (not the nominal bit sizes).

use clifhe_core::params::{log2_u64, presets};
use clifhe_core::{Params, ParamsLiteral};
use serde::Serialize;

/// One row of the table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PresetInfo {
    pub name: &'static str,
    pub id: u16,
    pub log_n: u32,
    pub n: usize,
    pub slots: usize,
    /// Patients per ciphertext (N/16).
    pub patients: usize,
    /// Nominal sizes of the ciphertext primes, grouped: "60 + 7x40".
    pub chain: String,
    /// Nominal sizes of the special primes, grouped ("-" when there are none).
    pub special: String,
    pub levels: usize,
    pub log2_scale: u32,
    pub log2_q: f64,
    pub log2_qp: f64,
    /// The HomomorphicEncryption.org 128-bit bound on log2 QP for this N.
    pub bound_128: Option<u32>,
    pub secure_128: bool,
    pub insecure_test_only: bool,
    pub use_case: &'static str,
}

/// "60 + 7x40": runs of primes with the same nominal size (log2 rounded).
pub fn group_bits(primes: &[u64]) -> String {
    let mut groups: Vec<(i64, usize)> = Vec::new();
    for &q in primes {
        let bits = log2_u64(q).round() as i64;
        match groups.last_mut() {
            Some((b, k)) if *b == bits => *k += 1,
            _ => groups.push((bits, 1)),
        }
    }
    if groups.is_empty() {
        return "-".into();
    }
    groups
        .iter()
        .map(|&(b, k)| if k == 1 { b.to_string() } else { format!("{k}x{b}") })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn use_case(name: &str) -> &'static str {
    match name {
        "leveled-n14" => "device encryption + GNN without bootstrapping",
        "private-n15" => "more precision, flooded output for circuit privacy",
        "bootstrap-n16" => "bootstrappable: deep models",
        "device-n12" => "encryption-only device set (SEAL-Embedded size)",
        _ => "INSECURE: unit tests only",
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn info(lit: &ParamsLiteral) -> Option<PresetInfo> {
    let p = Params::new(*lit).ok()?;
    let bound = p.security_bound();
    Some(PresetInfo {
        name: p.name(),
        id: p.id(),
        log_n: p.log_n(),
        n: p.n(),
        slots: p.max_slots(),
        patients: p.max_slots() / 8,
        chain: group_bits(p.q()),
        special: group_bits(p.p()),
        levels: p.max_level(),
        log2_scale: p.log_default_scale(),
        log2_q: round2(p.log_q()),
        log2_qp: round2(p.log_qp()),
        bound_128: bound,
        secure_128: !p.is_insecure() && bound.is_some_and(|b| p.log_qp() <= f64::from(b)),
        insecure_test_only: p.is_insecure(),
        use_case: use_case(p.name()),
    })
}

/// Every preset of this build.
pub fn all() -> Vec<PresetInfo> {
    presets::ALL.iter().filter_map(info).collect()
}

pub fn render_table(rows: &[PresetInfo]) -> String {
    let mut s = format!(
        "{:<18} {:>6} {:<32} {:<6} {:>8} {:>8} {:>9}  {}\n",
        "preset", "N", "chain Q (bits)", "P", "log2 Q", "log2 QP", "128-bit", "use"
    );
    for r in rows {
        let bound = match (r.bound_128, r.secure_128) {
            (Some(b), true) => format!("<= {b}"),
            (Some(b), false) => format!("> {b} !"),
            (None, _) => "n/a".into(),
        };
        s.push_str(&format!(
            "{:<18} {:>6} {:<32} {:<6} {:>8.2} {:>8.2} {:>9}  {}\n",
            r.name,
            format!("2^{}", r.log_n),
            r.chain,
            r.special,
            r.log2_q,
            r.log2_qp,
            bound,
            r.use_case
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_group_by_nominal_size() {
        let rows = all();
        let l14 = rows
            .iter()
            .find(|r| r.name == "leveled-n14")
            .map(|r| (r.chain.clone(), r.special.clone()));
        assert_eq!(l14, Some(("60 + 7x40".into(), "60".into())));
        let b16 = rows.iter().find(|r| r.name == "bootstrap-n16").map(|r| r.chain.clone());
        assert_eq!(b16.as_deref(), Some("60 + 12x40 + 3x39 + 9x60 + 3x56"));
    }
}
