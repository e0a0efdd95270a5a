//! On-target known answers: modular arithmetic and the forward NTT of every DEVICE_N12 prime
//! must hash to exactly what the host computed (`host-tool gen`), and the twiddle tables the
//! device would compute itself must equal the flash images.
#![no_std]
#![no_main]

use clifhe_core::arith::Modulus;
use clifhe_core::ntt::{fill_twiddles, primitive_root_2n};
use clifhe_device::harness::Failure;
use clifhe_device::{check, check_eq, harness, images, vectors};
use sha2::{Digest, Sha256};

const N: usize = 4096;

fn fail(what: &'static str) -> Failure {
    Failure { what, got: 0, want: 1 }
}

fn arith() -> Result<(), Failure> {
    let keys = images::device_n12().load().map_err(|_| fail("load flash images"))?;
    let mut h = Sha256::new();
    for &q in keys.params.q() {
        let m = Modulus::new(q).ok_or(fail("modulus"))?;
        vectors::arith_kat(&m, &mut |b| h.update(b));
    }
    check!(h.finalize().as_slice() == images::kat_n12::ARITH, "arith digest == host");
    Ok(())
}

fn ntt() -> Result<(), Failure> {
    let keys = images::device_n12().load().map_err(|_| fail("load flash images"))?;
    check_eq!(keys.params.n(), N, "ring degree");
    let mut h = Sha256::new();
    let mut a = [0u64; N];
    for (table, &q) in keys.tables.iter().zip(keys.params.q()) {
        for (j, x) in a.iter_mut().enumerate() {
            *x = vectors::ntt_input(j, q);
        }
        table.forward(&mut a).map_err(|_| fail("forward NTT"))?;
        for x in a.iter() {
            h.update(x.to_le_bytes());
        }
    }
    check!(h.finalize().as_slice() == images::kat_n12::NTT, "NTT digest == host");
    Ok(())
}

fn twiddles_match_flash() -> Result<(), Failure> {
    let img = images::device_n12();
    let params = clifhe_core::Params::new(img.literal).map_err(|_| fail("preset"))?;
    let (mut w, mut ws) = ([0u64; N], [0u64; N]);
    for (i, &q) in params.q().iter().enumerate() {
        let m = Modulus::new(q).ok_or(fail("modulus"))?;
        let root = primitive_root_2n(&m, N).ok_or(fail("primitive root"))?;
        fill_twiddles(&m, root, &mut w, &mut ws);
        let flash = clifhe_device::device::words(img.ntt[i], "ntt").map_err(|_| fail("flash image"))?;
        // DEVICE_N12 images carry the full table: forward, then inverse (psi^-1).
        check!(
            flash.len() == 4 * N && flash[..N] == w[..] && flash[N..2 * N] == ws[..],
            "device twiddles == flash image"
        );
        fill_twiddles(&m, m.inv(root), &mut w, &mut ws);
        check!(
            flash[2 * N..3 * N] == w[..] && flash[3 * N..] == ws[..],
            "device inverse twiddles == flash image"
        );
    }
    Ok(())
}

fn ntt_vs_naive_small() -> Result<(), Failure> {
    // The NTT against schoolbook negacyclic multiplication at N = 64 (independent of the host).
    const M: usize = 64;
    let q = clifhe_core::params::primes::Q40[0];
    let m = Modulus::new(q).ok_or(fail("modulus"))?;
    let root = primitive_root_2n(&m, M).ok_or(fail("primitive root"))?;
    let (mut w, mut ws) = ([0u64; M], [0u64; M]);
    fill_twiddles(&m, root, &mut w, &mut ws);
    let t = clifhe_core::ntt::NttTable::from_parts(m, M, &w[..], &ws[..], &[][..], &[][..]).map_err(|_| fail("table"))?;
    let a: [u64; M] = core::array::from_fn(|j| vectors::ntt_input(j, q));
    let b: [u64; M] = core::array::from_fn(|j| vectors::ntt_input(j + 1000, q));
    let mut naive = [0u64; M];
    for (i, &ai) in a.iter().enumerate() {
        for (j, &bj) in b.iter().enumerate() {
            let p = m.mul(ai, bj);
            let k = i + j;
            if k < M {
                naive[k] = m.add(naive[k], p);
            } else {
                naive[k - M] = m.sub(naive[k - M], p);
            }
        }
    }
    let (mut fa, mut fb, mut fn_) = (a, b, naive);
    t.forward(&mut fa).map_err(|_| fail("ntt"))?;
    t.forward(&mut fb).map_err(|_| fail("ntt"))?;
    t.forward(&mut fn_).map_err(|_| fail("ntt"))?;
    for k in 0..M {
        check_eq!(m.mul(fa[k], fb[k]), fn_[k], "NTT(a)*NTT(b) == NTT(a*b)");
    }
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    harness::run(
        "arith_ntt",
        &[
            ("modular_arithmetic_known_answers", arith),
            ("ntt_known_answers_n4096", ntt),
            ("twiddles_match_flash", twiddles_match_flash),
            ("ntt_vs_schoolbook_n64", ntt_vs_naive_small),
        ],
    )
}
