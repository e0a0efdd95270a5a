//! Host side of the clifhe firmware tests.
//!
//!   clifhe-device-host gen OUTDIR
//!       Test hospital keys (deterministic, from `vectors::TEST_KEY_SEED`), the flash images the
//!       firmware embeds (public key `b` limbs, forward NTT tables) and the known answers
//!       (SHA-256 of modular arithmetic, NTT, encoding and both encryptions, plus the full
//!       reference ciphertext files), for every device preset.
//!   clifhe-device-host decrypt PRESET SK_FILE CT_FILE FEATURES_FILE
//!       Parses the firmware's ciphertext file (public-key or seeded secret-key kind), decrypts
//!       it with the secret key and checks the first 8 slots against the features the firmware
//!       reported (8 little-endian i64 with 32 fractional bits, the device's fixed-point
//!       features), within `vectors::MAX_ROUNDTRIP_ERROR`.
//!   clifhe-device-host ct-check ELF ROOT...
//!       The disassembly test of the constant-time encryption path (`ct_check`): fails if a
//!       function reachable from ROOT calls a soft-float or division routine or executes a
//!       divide or floating-point arithmetic instruction.
//!   clifhe-device-host scores PRESET SK_FILE CT_FILE PATIENTS STRIDE
//!       The test harness's own raw decryption of a vendor score file made under the published
//!       test key: prints slot p * STRIDE for p < PATIENTS as a JSON array. Verification of the
//!       `--no-flooding` device path only: the product (`host-eval`) never decrypts vendor output
//!       except through the flooded, budgeted release.
mod ct_check;

use clifhe_core::arith::Modulus;
use clifhe_core::context::Context;
use clifhe_core::encode::fixed::{encode_real_fixed, fixed_scratch_len};
use clifhe_core::encrypt::{encrypt_pk, encrypt_sk_seeded, Plaintext};
use clifhe_core::flash_image::{self, NttImage};
use clifhe_core::keys::{PublicKey, SecretKey};
use clifhe_core::ntt::{fill_twiddles, primitive_root_2n, NttTable};
use clifhe_core::params::{presets, Params};
use clifhe_core::wire;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[path = "../../src/vectors.rs"]
mod vectors;

type Res<T> = Result<T, String>;

/// Device presets the firmware is built for (flash images are generated for each):
/// DEVICE_N12 for the default images (2 MiB flash budget) and LEVELED_N14, the host's own
/// preset, for `encrypt_scan_n14` (feature `qemu-n14`: 3 MiB of flash images, emulator layout).
/// The presets the firmware embeds, with the NTT tables each image carries: DEVICE_N12 the
/// full tables (its encryption computes each limb in one buffer through the inverse
/// transform), LEVELED_N14 the forward ones only (its 2 MiB of forward tables already fill the
/// emulator's flash window with the 1 MiB key).
const DEVICE_PRESETS: &[(clifhe_core::ParamsLiteral, NttImage)] =
    &[(presets::DEVICE_N12, NttImage::Full), (presets::LEVELED_N14, NttImage::ForwardOnly)];

fn params_of(lit: clifhe_core::ParamsLiteral) -> Res<Params> {
    Params::new(lit).map_err(|e| format!("preset {}: {e:?}", lit.name))
}

/// Writes `bytes` unless the file already holds them: everything `gen` makes is deterministic,
/// and an untouched file (and STAMP) keeps its mtime, so cargo does not rebuild the firmware
/// (whose `include_bytes!` images are tracked by mtime) on every run of the test script.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> Res<()> {
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(&path, bytes).map_err(|e| format!("write {}: {e}", path.display()))
}

fn u64s_le(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The forward table in the layout the firmware embeds: `fwd` (N words) then `fwd_shoup`.
fn forward_table(m: &Modulus, n: usize) -> Res<(Vec<u64>, Vec<u64>)> {
    let root = primitive_root_2n(m, n).ok_or("no primitive 2N-th root")?;
    let (mut w, mut ws) = (vec![0u64; n], vec![0u64; n]);
    fill_twiddles(m, root, &mut w, &mut ws);
    Ok((w, ws))
}

fn gen_preset(out: &Path, lit: clifhe_core::ParamsLiteral, kind: NttImage) -> Res<()> {
    let params = params_of(lit)?;
    let dir = out.join(params.name());
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let n = params.n();
    let ctx = Context::new(params).map_err(|e| format!("context: {e}"))?;
    let level = params.max_level();

    // Keys. INSECURE for production by construction (a published seed): test keys only.
    let mut rng = ChaCha20Rng::from_seed(vectors::TEST_KEY_SEED);
    let sk = SecretKey::generate_into(&params, &mut rng, vec![0i8; n]).map_err(|e| format!("sk: {e}"))?;
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).map_err(|e| format!("pk: {e}"))?;
    let sk_bytes = wire::export_secret_key(&params, &sk).map_err(|e| format!("export sk: {e}"))?;
    write(&dir, "sk.clhe", &sk_bytes)?;
    write(
        &dir,
        "pk.clhe",
        &wire::public_key_to_bytes(&params, &pk).map_err(|e| format!("pk bytes: {e}"))?,
    )?;
    // Flash images: the key's `b` limbs as raw little-endian words, and its `a` seed.
    write(&dir, "pk_b.bin", &flash_image::public_key_b_image(&pk))?;
    write(&dir, "pk_a_seed.bin", pk.a_seed())?;
    write(&dir, "sk_seed.bin", sk.export_seed().as_bytes())?;

    // Forward NTT tables per prime (flash), checked against the host's own table.
    let mut ntt_digest = Sha256::new();
    let mut arith_digest = Sha256::new();
    for (i, &q) in params.q().iter().enumerate() {
        let m = Modulus::new(q).ok_or("bad modulus")?;
        // The same image `host-eval device-bundle` writes (clifhe_core::flash_image).
        let img = flash_image::ntt_image(&params, i, kind).map_err(|e| format!("ntt image: {e}"))?;
        let (w, ws) = forward_table(&m, n)?;
        let mut mine_img = u64s_le(&w);
        mine_img.extend(u64s_le(&ws));
        if img.get(..16 * n) != Some(&mine_img[..]) {
            return Err(format!("prime {i}: flash image differs from the twiddle table"));
        }
        if kind == NttImage::Full {
            // The inverse half undoes the forward half.
            let words: Vec<u64> = img
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            let (fwd, rest) = words.split_at(n);
            let (fwd_s, rest) = rest.split_at(n);
            let (inv, inv_s) = rest.split_at(n);
            let t = NttTable::from_parts(m, n, fwd, fwd_s, inv, inv_s).map_err(|e| format!("table: {e}"))?;
            let x: Vec<u64> = (0..n).map(|j| vectors::ntt_input(j, q)).collect();
            let mut y = x.clone();
            t.forward(&mut y).map_err(|e| format!("ntt: {e}"))?;
            t.inverse(&mut y).map_err(|e| format!("ntt: {e}"))?;
            if x != y {
                return Err(format!("prime {i}: the image's inverse table does not invert its forward one"));
            }
        }
        write(&dir, &format!("ntt_q{i}.bin"), &img)?;
        let input: Vec<u64> = (0..n).map(|j| vectors::ntt_input(j, q)).collect();
        let mut a = input.clone();
        ctx.q_tables()[i].forward(&mut a).map_err(|e| format!("ntt: {e}"))?;
        let mine = NttTable::from_parts(m, n, w, ws, vec![], vec![]).map_err(|e| format!("table: {e}"))?;
        let mut b = input;
        mine.forward(&mut b).map_err(|e| format!("ntt: {e}"))?;
        if a != b {
            return Err(format!("prime {i}: embedded table disagrees with the host table"));
        }
        ntt_digest.update(u64s_le(&a));
        vectors::arith_kat(&m, &mut |bytes| arith_digest.update(bytes));
    }
    write(&dir, "kat_ntt.sha256", &ntt_digest.finalize())?;
    write(&dir, "kat_arith.sha256", &arith_digest.finalize())?;

    // Encoding and the two known-answer encryptions, at the top level (all primes).
    let scale = params.default_scale();
    // The device's integer encoder; the float encoder must give the same coefficients for these
    // values (each a multiple of 2^-32), so the known answers also pin the two encoders together.
    let log_scale = params.log_default_scale();
    let mut coeffs = vec![0i64; n];
    let mut scratch = vec![0i64; fixed_scratch_len(vectors::SLOTS)];
    encode_real_fixed(&vectors::KAT_FEATURES, vectors::SLOTS, n, log_scale, &mut coeffs, &mut scratch)
        .map_err(|e| format!("encode: {e}"))?;
    let pt = Plaintext::from_fixed(coeffs, log_scale, vectors::SLOTS.trailing_zeros()).map_err(|e| format!("encode: {e}"))?;
    let reals: Vec<f64> = (0..vectors::SLOTS).map(vectors::kat_feature).collect();
    let float_pt = Plaintext::encode_real(&params, &reals, scale).map_err(|e| format!("encode: {e}"))?;
    if pt.coeffs().iter().zip(float_pt.coeffs()).any(|(a, b)| *a as f64 != *b) {
        return Err("the integer and float encoders disagree on the known-answer features".into());
    }
    let coeff_bytes: Vec<u8> = pt.coeffs().iter().flat_map(|c| c.to_le_bytes()).collect();
    write(&dir, "kat_encode.sha256", &Sha256::digest(&coeff_bytes))?;

    let mut rng = ChaCha20Rng::from_seed(vectors::KAT_PK_ENC_SEED);
    let ct = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, level, &mut rng).map_err(|e| format!("encrypt: {e}"))?;
    let ct_bytes = wire::ciphertext_to_bytes(&params, &ct).map_err(|e| format!("ct bytes: {e}"))?;
    write(&dir, "ct_pk_kat.clhe", &ct_bytes)?;
    write(&dir, "kat_ct_pk.sha256", &Sha256::digest(&ct_bytes))?;

    let mut rng = ChaCha20Rng::from_seed(vectors::KAT_SK_ENC_SEED);
    let ct = encrypt_sk_seeded(&params, ctx.q_tables(), &sk, &pt, level, &mut rng).map_err(|e| format!("encrypt: {e}"))?;
    let ct_bytes = wire::seeded_ciphertext_to_bytes(&params, &ct).map_err(|e| format!("ct bytes: {e}"))?;
    write(&dir, "ct_sk_kat.clhe", &ct_bytes)?;
    write(&dir, "kat_ct_sk.sha256", &Sha256::digest(&ct_bytes))?;
    println!(
        "generated {} (N={n}, {} primes, pk b {} bytes)",
        dir.display(),
        params.q().len(),
        pk.b().as_slice().len() * 8
    );
    Ok(())
}

fn read(path: &Path) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))
}

fn decrypt_cmd(preset: &str, sk_file: &Path, ct_file: &Path, features_file: &Path) -> Res<()> {
    let params = Params::from_name(preset).ok_or_else(|| format!("unknown preset {preset}"))?;
    let ctx = Context::new(params).map_err(|e| format!("context: {e}"))?;
    let sk = wire::import_secret_key(&params, &read(sk_file)?).map_err(|e| format!("secret key: {e}"))?;
    let bytes = read(ct_file)?;
    let header = wire::Header::parse(&bytes, &params, wire::Kind::Ciphertext)
        .or_else(|_| wire::Header::parse(&bytes, &params, wire::Kind::SeededCiphertext))
        .map_err(|e| format!("ciphertext header: {e}"))?;
    let ct = match header.kind {
        wire::Kind::SeededCiphertext => wire::seeded_ciphertext_from_bytes(&params, &bytes)
            .map_err(|e| format!("ciphertext: {e}"))?
            .expand(&params)
            .map_err(|e| format!("expand: {e}"))?,
        _ => wire::ciphertext_from_bytes(&params, &bytes).map_err(|e| format!("ciphertext: {e}"))?,
    };
    let values = clifhe_core::decrypt::decrypt(&ctx, &sk, &ct)
        .map_err(|e| format!("decrypt: {e}"))?
        .decode_real()
        .map_err(|e| format!("decode: {e}"))?;
    let fb = read(features_file)?;
    if fb.len() != 8 * vectors::SLOTS {
        return Err(format!("features file: {} bytes, expected {}", fb.len(), 8 * vectors::SLOTS));
    }
    let want: Vec<f64> = fb
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64 / (1u64 << 32) as f64)
        .collect();
    let mut max_err = 0f64;
    for (k, w) in want.iter().enumerate() {
        let got = values.get(k).copied().ok_or("too few slots")?;
        max_err = max_err.max((got - w).abs());
        println!("  slot {k}: device {w:+.9}  host-decrypted {got:+.9}");
    }
    // A full-slot ciphertext (the N=2^14 firmware's) holds the patient in slots 0..7 and zeros
    // elsewhere, so that the host can merge single-patient ciphertexts by rotations.
    if u32::from(header.log_slots) + 1 == params.log_n() {
        let rest = values.iter().skip(vectors::SLOTS).fold(0f64, |m, v| m.max(v.abs()));
        println!("  full-slot encoding: max |slot 8..{}| = {rest:.3e}", values.len());
        max_err = max_err.max(rest);
    }
    println!(
        "{}: {} bytes, level {}, max |error| = {max_err:.3e} ({:.1} bits)",
        ct_file.display(),
        bytes.len(),
        header.level,
        -max_err.log2()
    );
    if max_err.is_finite() && max_err <= vectors::MAX_ROUNDTRIP_ERROR {
        Ok(())
    } else {
        Err(format!("round trip error {max_err:e} exceeds {:e}", vectors::MAX_ROUNDTRIP_ERROR))
    }
}

fn scores_cmd(preset: &str, sk_file: &Path, ct_file: &Path, patients: &str, stride: &str) -> Res<()> {
    let params = Params::from_name(preset).ok_or_else(|| format!("unknown preset {preset}"))?;
    let patients: usize = patients.parse().map_err(|_| "PATIENTS is not a number")?;
    let stride: usize = stride.parse().map_err(|_| "STRIDE is not a number")?;
    let ctx = Context::new(params).map_err(|e| format!("context: {e}"))?;
    let sk = wire::import_secret_key(&params, &read(sk_file)?).map_err(|e| format!("secret key: {e}"))?;
    let ct = wire::ciphertext_from_bytes(&params, &read(ct_file)?).map_err(|e| format!("ciphertext: {e}"))?;
    let values = clifhe_core::decrypt::decrypt(&ctx, &sk, &ct)
        .map_err(|e| format!("decrypt: {e}"))?
        .decode_real()
        .map_err(|e| format!("decode: {e}"))?;
    let picked: Vec<String> = (0..patients)
        .map(|p| values.get(p * stride).map(|v| format!("{v:e}")).ok_or("slot out of range"))
        .collect::<Result<_, _>>()?;
    println!("[{}]", picked.join(","));
    Ok(())
}

fn run(args: &[String]) -> Res<()> {
    match args.first().map(String::as_str) {
        Some("gen") => {
            let out = PathBuf::from(args.get(1).ok_or("gen OUTDIR")?);
            for &(lit, kind) in DEVICE_PRESETS {
                gen_preset(&out, lit, kind)?;
            }
            write(&out, "STAMP", b"generated by clifhe-device-host gen\n")
        }
        Some("decrypt") => match &args[1..] {
            [preset, sk, ct, feat] => decrypt_cmd(preset, Path::new(sk), Path::new(ct), Path::new(feat)),
            _ => Err("decrypt PRESET SK_FILE CT_FILE FEATURES_FILE".into()),
        },
        Some("ct-check") => match &args[1..] {
            [elf, roots @ ..] if !roots.is_empty() => {
                let (report, ok) = ct_check::check(elf, roots)?;
                for line in report {
                    println!("{line}");
                }
                if ok {
                    println!("ct-check: no division, soft-float or floating-point instruction reachable");
                    Ok(())
                } else {
                    Err("ct-check: forbidden operations reachable from the constant-time path".into())
                }
            }
            _ => Err("ct-check ELF ROOT...".into()),
        },
        Some("scores") => match &args[1..] {
            [preset, sk, ct, patients, stride] => scores_cmd(preset, Path::new(sk), Path::new(ct), patients, stride),
            _ => Err("scores PRESET SK_FILE CT_FILE PATIENTS STRIDE".into()),
        },
        _ => Err("usage: clifhe-device-host gen OUTDIR | decrypt PRESET SK_FILE CT_FILE FEATURES_FILE | ct-check ELF ROOT... | scores PRESET SK_FILE CT_FILE PATIENTS STRIDE".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clifhe-device-host: {e}");
            ExitCode::FAILURE
        }
    }
}
