//! The built-in demo dataset: deterministic 3D phantoms of three classes.
//!
//! Model: a region-of-interest crop around one organ, as MedMNIST crops its organs (CT-like
//! intensities windowed to [0, 1], 1 mm voxels, default 32^3):
//! - **background**: surrounding soft tissue (0.15) with a smooth low-frequency texture;
//! - **organ**: an ellipsoid (0.50) filling most of the crop, jittered slightly in position,
//!   size and in-plane orientation per patient;
//! - **lesion** inside the organ:
//!   - *healthy*: none, or (30%) a tiny faint cyst;
//!   - *benign*: a small to medium round, well-circumscribed lesion, low contrast (+0.12) or
//!     cystic (-0.20), near the organ centre;
//!   - *malignant*: a larger lobulated lesion (radius modulated by low-order harmonics),
//!     higher contrast (+0.30), eccentric;
//! - Gaussian noise (sigma 0.04) everywhere.
//!
//! Sizes, contrasts and positions are drawn from overlapping ranges, so the classes are
//! separable by the features but not perfectly. Each patient has its own ChaCha20 stream
//! (seed, class, index), so any patient can be regenerated alone and the dataset is identical
//! on every machine.

use super::Volume;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Diagnosis classes of the demo, in label order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhantomClass {
    Healthy = 0,
    Benign = 1,
    Malignant = 2,
}

impl PhantomClass {
    pub const ALL: [PhantomClass; 3] = [Self::Healthy, Self::Benign, Self::Malignant];
    pub fn label(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Benign => "benign",
            Self::Malignant => "malignant",
        }
    }
}

/// Generator settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhantomConfig {
    pub dims: [usize; 3],
    pub seed: u64,
    pub noise_sigma: f64,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        Self { dims: [32; 3], seed: 1, noise_sigma: 0.04 }
    }
}

fn uniform(rng: &mut ChaCha20Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn gaussian(rng: &mut ChaCha20Rng) -> f64 {
    // Box-Muller; u1 in (0, 1].
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The generator stream of one patient.
fn patient_rng(seed: u64, class: PhantomClass, index: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(((class as u64) << 48) ^ index);
    rng
}

struct Lesion {
    centre: [f64; 3],
    radius: f64,
    contrast: f64,
    /// Amplitude and frequencies of the radial modulation (0 for round lesions).
    lobes: f64,
    k: f64,
    l: f64,
    phase: f64,
}

/// One patient's volume.
pub fn generate(cfg: &PhantomConfig, class: PhantomClass, index: u64) -> Volume {
    let mut rng = patient_rng(cfg.seed, class, index);
    let oc = [uniform(&mut rng, -0.03, 0.03), uniform(&mut rng, -0.03, 0.03), uniform(&mut rng, -0.03, 0.03)];
    let oa = [uniform(&mut rng, 0.80, 0.86), uniform(&mut rng, 0.66, 0.72), uniform(&mut rng, 0.72, 0.78)];
    let theta = uniform(&mut rng, -0.3, 0.3);
    let (ct, st) = (theta.cos(), theta.sin());
    let tex = [uniform(&mut rng, 1.0, 3.0), uniform(&mut rng, 1.0, 3.0), uniform(&mut rng, 0.0, std::f64::consts::TAU)];
    // Lesion position: inside the organ, as a fraction of its semi-axes.
    let place = |rng: &mut ChaCha20Rng, frac: f64| -> [f64; 3] {
        let d = [uniform(rng, -frac, frac), uniform(rng, -frac, frac), uniform(rng, -frac, frac)];
        let (u, w) = (d[0] * oa[0], d[1] * oa[1]);
        [oc[0] + ct * u - st * w, oc[1] + st * u + ct * w, oc[2] + d[2] * oa[2]]
    };
    let lesion = match class {
        PhantomClass::Healthy => (rng.next_u32() % 10 < 3).then(|| Lesion {
            centre: place(&mut rng, 0.5),
            radius: uniform(&mut rng, 0.05, 0.12),
            contrast: -0.10,
            lobes: 0.0,
            k: 0.0,
            l: 0.0,
            phase: 0.0,
        }),
        PhantomClass::Benign => {
            let cystic = rng.next_u32() % 2 == 0;
            Some(Lesion {
                centre: place(&mut rng, 0.30),
                radius: uniform(&mut rng, 0.18, 0.32),
                contrast: if cystic { -0.30 } else { 0.18 },
                lobes: uniform(&mut rng, 0.0, 0.08),
                k: 2.0,
                l: 2.0,
                phase: uniform(&mut rng, 0.0, std::f64::consts::TAU),
            })
        }
        PhantomClass::Malignant => Some(Lesion {
            centre: {
                // Eccentric: at least 0.3 of the organ's semi-axes away from its centre.
                let mut c = place(&mut rng, 0.6);
                for _ in 0..16 {
                    let d = [(c[0] - oc[0]) / oa[0], (c[1] - oc[1]) / oa[1], (c[2] - oc[2]) / oa[2]];
                    if d.iter().map(|x| x * x).sum::<f64>() >= 0.09 {
                        break;
                    }
                    c = place(&mut rng, 0.6);
                }
                c
            },
            radius: uniform(&mut rng, 0.26, 0.45),
            contrast: uniform(&mut rng, 0.25, 0.45),
            lobes: uniform(&mut rng, 0.15, 0.40),
            k: (2 + rng.next_u32() % 4) as f64,
            l: (1 + rng.next_u32() % 3) as f64,
            phase: uniform(&mut rng, 0.0, std::f64::consts::TAU),
        }),
    };
    let [nx, ny, nz] = cfg.dims;
    let half = nx.max(ny).max(nz) as f64 / 2.0;
    let mut data = Vec::with_capacity(nx * ny * nz);
    for z in 0..nz {
        let pz = (z as f64 + 0.5 - nz as f64 / 2.0) / half;
        for y in 0..ny {
            let py = (y as f64 + 0.5 - ny as f64 / 2.0) / half;
            for x in 0..nx {
                let px = (x as f64 + 0.5 - nx as f64 / 2.0) / half;
                let mut v = 0.15 + 0.03 * (tex[0] * px + tex[2]).sin() * (tex[1] * py).cos();
                {
                    let (dx, dy, dz) = (px - oc[0], py - oc[1], pz - oc[2]);
                    let (u, w) = (ct * dx + st * dy, -st * dx + ct * dy);
                    if (u / oa[0]).powi(2) + (w / oa[1]).powi(2) + (dz / oa[2]).powi(2) <= 1.0 {
                        v = 0.50 + 0.02 * (tex[1] * pz + tex[2]).cos();
                        if let Some(les) = &lesion {
                            let d = [px - les.centre[0], py - les.centre[1], pz - les.centre[2]];
                            let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                            let az = d[1].atan2(d[0]);
                            let el = if r > 0.0 { (d[2] / r).acos() } else { 0.0 };
                            let radius = les.radius * (1.0 + les.lobes * (les.k * az + les.phase).sin() * (les.l * el).cos());
                            if r <= radius {
                                v += les.contrast;
                            }
                        }
                    }
                }
                v += cfg.noise_sigma * gaussian(&mut rng);
                data.push(v.clamp(0.0, 1.0) as f32);
            }
        }
    }
    Volume { dims: cfg.dims, spacing_mm: [1.0; 3], data }
}

/// `per_class` patients of each class, interleaved by class, with labels.
pub fn dataset(cfg: &PhantomConfig, per_class: usize) -> (Vec<Volume>, Vec<usize>) {
    let mut vols = Vec::with_capacity(3 * per_class);
    let mut labels = Vec::with_capacity(3 * per_class);
    for i in 0..per_class {
        for c in PhantomClass::ALL {
            vols.push(generate(cfg, c, i as u64));
            labels.push(c.label());
        }
    }
    (vols, labels)
}

/// Deterministic split by patient index: 60% train, 15% validation, 25% test.
pub fn split_of(index: usize, per_class: usize) -> &'static str {
    let f = index as f64 / per_class.max(1) as f64;
    if f < 0.60 {
        "train"
    } else if f < 0.75 {
        "val"
    } else {
        "test"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let cfg = PhantomConfig::default();
        let a = generate(&cfg, PhantomClass::Malignant, 3);
        assert_eq!(a, generate(&cfg, PhantomClass::Malignant, 3));
        assert_ne!(a, generate(&cfg, PhantomClass::Malignant, 4));
        assert_ne!(a, generate(&cfg, PhantomClass::Benign, 3));
        assert!(a.data.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        assert_eq!(a.data.len(), 32 * 32 * 32);
    }
}
