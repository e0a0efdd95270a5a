//! One patient: anatomy and lesion parameters from the patient's stream, then one pass over the
//! voxels. Shapes are signed-distance primitives so every edge gets the same partial-volume ramp
//! (a scanner's finite resolution) and the volume does not alias into a staircase that would
//! make 90-degree and other rotations look different to the features.

use super::{PhantomClass, PhantomConfig};
use crate::data::Volume;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// Lower edge and width of the soft-tissue CT window (level 40 HU, width 400 HU).
const WINDOW_LO_HU: f64 = -160.0;
const WINDOW_WIDTH_HU: f64 = 400.0;
const AIR_HU: f64 = -1000.0;

/// Tissue labels of [`generate_labelled`]'s label map (the tissue covering at least half of
/// each voxel, the innermost structure first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tissue {
    Air = 0,
    Fat = 1,
    SoftTissue = 2,
    Organ = 3,
    Lesion = 4,
}

/// Uniform in [lo, hi) from 53 random bits.
fn uniform(rng: &mut ChaCha20Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64))
}

/// Uniform integer in lo..=hi (the modulo bias of a 64-bit draw is far below anything visible).
fn uniform_int(rng: &mut ChaCha20Rng, lo: u32, hi: u32) -> u32 {
    lo + (rng.next_u64() % u64::from(hi - lo + 1)) as u32
}

fn bernoulli(rng: &mut ChaCha20Rng, p: f64) -> bool {
    uniform(rng, 0.0, 1.0) < p
}

/// A direction uniform on the unit sphere (rejection from the cube; the loop accepts with
/// probability pi/6 per try, and the fallback after 64 tries keeps it total without panicking).
fn unit_vector(rng: &mut ChaCha20Rng) -> [f64; 3] {
    for _ in 0..64 {
        let v = [uniform(rng, -1.0, 1.0), uniform(rng, -1.0, 1.0), uniform(rng, -1.0, 1.0)];
        let n2 = dot(v, v);
        if n2 > 1e-6 && n2 <= 1.0 {
            let inv = 1.0 / n2.sqrt();
            return [v[0] * inv, v[1] * inv, v[2] * inv];
        }
    }
    [1.0, 0.0, 0.0]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add_scaled(a: [f64; 3], s: f64, b: [f64; 3]) -> [f64; 3] {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}

/// Rotation matrix Rz(yaw) Ry(pitch) Rx(roll), angles in radians.
fn rotation(yaw: f64, pitch: f64, roll: f64) -> [[f64; 3]; 3] {
    let (sz, cz) = yaw.sin_cos();
    let (sy, cy) = pitch.sin_cos();
    let (sx, cx) = roll.sin_cos();
    [
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ]
}

/// Partial-volume weight of a shape at signed distance `sd` (negative inside): a linear ramp of
/// width `edge` centred on the surface.
fn ramp(sd: f64, edge: f64) -> f64 {
    (0.5 - sd / edge).clamp(0.0, 1.0)
}

/// An axis-aligned box, to skip shapes that cannot reach a voxel (most voxels are outside the
/// organ and nearly all are outside the lesion).
#[derive(Clone, Copy, Debug)]
struct Aabb {
    lo: [f64; 3],
    hi: [f64; 3],
}

impl Aabb {
    fn contains(&self, p: [f64; 3]) -> bool {
        (0..3).all(|k| p[k] >= self.lo[k] && p[k] <= self.hi[k])
    }
}

/// An oriented ellipsoid.
#[derive(Clone, Copy, Debug)]
struct Ellipsoid {
    centre: [f64; 3],
    /// Rows: the ellipsoid's local axes in world coordinates (the transpose of its rotation).
    axes: [[f64; 3]; 3],
    inv_semi: [f64; 3],
    /// Converts the level-set distance (q - 1) to an approximate distance in space: the
    /// geometric mean semi-axis (exact on a sphere, within the axis ratio elsewhere, which only
    /// widens or narrows the one-voxel edge ramp slightly).
    scale: f64,
    max_semi: f64,
}

impl Ellipsoid {
    fn new(centre: [f64; 3], semi: [f64; 3], rot: [[f64; 3]; 3]) -> Self {
        let axes = [
            [rot[0][0], rot[1][0], rot[2][0]],
            [rot[0][1], rot[1][1], rot[2][1]],
            [rot[0][2], rot[1][2], rot[2][2]],
        ];
        Self {
            centre,
            axes,
            inv_semi: [1.0 / semi[0], 1.0 / semi[1], 1.0 / semi[2]],
            scale: (semi[0] * semi[1] * semi[2]).cbrt(),
            max_semi: semi[0].max(semi[1]).max(semi[2]),
        }
    }

    /// Bounds of the ellipsoid grown by `margin`.
    fn bounds(&self, margin: f64) -> Aabb {
        let r = self.max_semi + margin;
        Aabb {
            lo: add_scaled(self.centre, -r, [1.0; 3]),
            hi: add_scaled(self.centre, r, [1.0; 3]),
        }
    }

    /// The level-set value q^2 (1 on the surface).
    fn q2(&self, p: [f64; 3]) -> f64 {
        let d = sub(p, self.centre);
        let u = [
            dot(self.axes[0], d) * self.inv_semi[0],
            dot(self.axes[1], d) * self.inv_semi[1],
            dot(self.axes[2], d) * self.inv_semi[2],
        ];
        dot(u, u)
    }

    /// Approximate signed distance (negative inside).
    fn sd(&self, p: [f64; 3]) -> f64 {
        (self.q2(p).sqrt() - 1.0) * self.scale
    }

    /// `ramp(self.sd(p), edge)` with the square root only in the edge shell: most voxels are
    /// well inside or outside, decided on q^2 against the shell's bounds.
    fn weight(&self, p: [f64; 3], edge: f64) -> f64 {
        let q2 = self.q2(p);
        let h = 0.5 * edge / self.scale;
        if q2 <= (1.0 - h).max(0.0).powi(2) {
            1.0
        } else if q2 >= (1.0 + h).powi(2) {
            0.0
        } else {
            ramp((q2.sqrt() - 1.0) * self.scale, edge)
        }
    }

    /// The point at local normalised coordinates `u` (|u| = 1 on the surface).
    fn point(&self, u: [f64; 3]) -> [f64; 3] {
        let s = [u[0] / self.inv_semi[0], u[1] / self.inv_semi[1], u[2] / self.inv_semi[2]];
        let mut p = self.centre;
        for (k, axis) in self.axes.iter().enumerate() {
            p = add_scaled(p, s[k], *axis);
        }
        p
    }
}

/// Lesion building blocks; a lesion is the union (minimum signed distance) of its parts.
#[derive(Clone, Copy, Debug)]
enum Part {
    Ellipsoid(Ellipsoid),
    Sphere {
        centre: [f64; 3],
        radius: f64,
    },
    /// A spicule: the set of points within `radius` of the segment a-b.
    Capsule {
        a: [f64; 3],
        b: [f64; 3],
        radius: f64,
    },
}

impl Part {
    fn sd(&self, p: [f64; 3]) -> f64 {
        match self {
            Part::Ellipsoid(e) => e.sd(p),
            Part::Sphere { centre, radius } => {
                let d = sub(p, *centre);
                dot(d, d).sqrt() - radius
            }
            Part::Capsule { a, b, radius } => {
                let ab = sub(*b, *a);
                let ap = sub(p, *a);
                let len2 = dot(ab, ab);
                let t = if len2 > 0.0 { (dot(ap, ab) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let d = sub(ap, [ab[0] * t, ab[1] * t, ab[2] * t]);
                dot(d, d).sqrt() - radius
            }
        }
    }

    /// Axis-aligned bounds of the part grown by `margin`.
    fn bounds(&self, margin: f64) -> Aabb {
        // A sphere is a capsule whose segment is a point.
        let (a, b, r) = match self {
            Part::Ellipsoid(e) => return e.bounds(margin),
            Part::Sphere { centre, radius } => (*centre, *centre, *radius),
            Part::Capsule { a, b, radius } => (*a, *b, *radius),
        };
        let m = r + margin;
        Aabb {
            lo: std::array::from_fn(|k| a[k].min(b[k]) - m),
            hi: std::array::from_fn(|k| a[k].max(b[k]) + m),
        }
    }
}

#[derive(Clone, Debug)]
struct Lesion {
    /// The parts with their bounds (grown by the half ramp width that reaches outside the
    /// surface): a part whose box excludes a voxel contributes nothing there, so the box test is
    /// exact, not an approximation.
    parts: Vec<(Part, Aabb)>,
    /// HU difference from the organ (negative: hypodense).
    contrast_hu: f64,
    /// Width of the edge ramp (normalised units): sharp for well-circumscribed lesions, wider
    /// for infiltrative ones.
    edge: f64,
}

impl Lesion {
    fn new(parts: Vec<Part>, contrast_hu: f64, edge: f64) -> Self {
        let parts = parts.into_iter().map(|p| (p, p.bounds(edge))).collect();
        Self { parts, contrast_hu, edge }
    }

    fn weight(&self, p: [f64; 3]) -> f64 {
        let sd = self
            .parts
            .iter()
            .filter(|(_, bx)| bx.contains(p))
            .map(|(part, _)| part.sd(p))
            .fold(f64::INFINITY, f64::min);
        ramp(sd, self.edge)
    }
}

/// One smooth texture term: a product of cosines along the three axes.
#[derive(Clone, Copy, Debug)]
struct Wave {
    amp_hu: f64,
    freq: [f64; 3],
    phase: [f64; 3],
}

/// Everything drawn for one patient before the voxel pass.
#[derive(Clone, Debug)]
struct Patient {
    body: Ellipsoid,
    /// Inner surface of the fat layer.
    inner: Ellipsoid,
    organ: Ellipsoid,
    fat_hu: f64,
    soft_hu: f64,
    organ_hu: f64,
    waves: [Wave; 3],
    lesion: Option<Lesion>,
}

/// The generator stream of one patient: ChaCha20 keyed by SHA-256 of a domain tag and
/// (seed, class, index), so patients never share a stream and neither order nor threading
/// changes a volume.
fn patient_rng(seed: u64, class: PhantomClass, index: u64) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"clifhe phantom v1\0");
    h.update(seed.to_le_bytes());
    h.update(class.label().to_le_bytes());
    h.update(index.to_le_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// The patient's whole-body orientation: a rotation matrix about a uniformly random axis by an
/// angle uniform in [0, max_tilt_deg], from a stream of its own (the anatomy's stream is not
/// touched, so tilting never changes the anatomy).
fn tilt(seed: u64, class: PhantomClass, index: u64, max_tilt_deg: f64) -> Option<[[f64; 3]; 3]> {
    if !(max_tilt_deg.is_finite() && max_tilt_deg > 0.0) {
        return None;
    }
    let mut h = Sha256::new();
    h.update(b"clifhe phantom tilt v1\0");
    h.update(seed.to_le_bytes());
    h.update(class.label().to_le_bytes());
    h.update(index.to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(h.finalize().into());
    let a = unit_vector(&mut rng);
    let angle = uniform(&mut rng, 0.0, max_tilt_deg.min(180.0)).to_radians();
    // Rodrigues: R = cos t I + sin t [a]x + (1 - cos t) a a^T.
    let (st, ct) = angle.sin_cos();
    let cross = [[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]];
    Some(core::array::from_fn(|r| {
        core::array::from_fn(|c| if r == c { ct } else { 0.0 } + st * cross[r][c] + (1.0 - ct) * a[r] * a[c])
    }))
}

fn draw_patient(rng: &mut ChaCha20Rng, class: PhantomClass) -> Patient {
    let deg = std::f64::consts::PI / 180.0;
    // Body: nearly the whole field of view, but its largest semi-axis stays below 0.97 so it
    // lies inside the inscribed sphere (rotation about the centre keeps all tissue in the grid).
    let body_semi = [
        0.92 * uniform(rng, 0.997, 1.003),
        0.78 * uniform(rng, 0.997, 1.003),
        0.95 * uniform(rng, 0.997, 1.003),
    ];
    let body_centre = [uniform(rng, -0.002, 0.002), uniform(rng, -0.002, 0.002), 0.0];
    let body_rot = rotation(uniform(rng, -2.0, 2.0) * deg, 0.0, 0.0);
    let body = Ellipsoid::new(body_centre, body_semi, body_rot);
    let fat = uniform(rng, 0.108, 0.112);
    let inner = Ellipsoid::new(body_centre, [body_semi[0] - fat, body_semi[1] - fat, body_semi[2] - fat], body_rot);

    let organ_semi = [
        0.55 * uniform(rng, 0.92, 1.08),
        0.45 * uniform(rng, 0.92, 1.08),
        0.50 * uniform(rng, 0.92, 1.08),
    ];
    let organ_centre = [uniform(rng, -0.05, 0.05), uniform(rng, -0.05, 0.05), uniform(rng, -0.05, 0.05)];
    let organ_rot = rotation(
        uniform(rng, -35.0, 35.0) * deg,
        uniform(rng, -15.0, 15.0) * deg,
        uniform(rng, -15.0, 15.0) * deg,
    );
    let organ = Ellipsoid::new(organ_centre, organ_semi, organ_rot);

    let fat_hu = uniform(rng, -105.0, -95.0);
    let soft_hu = uniform(rng, 44.0, 46.0);
    let organ_hu = uniform(rng, 61.0, 69.0);
    let wave = |rng: &mut ChaCha20Rng| Wave {
        amp_hu: uniform(rng, 2.0, 5.0),
        freq: [uniform(rng, 5.0, 9.0), uniform(rng, 5.0, 9.0), uniform(rng, 5.0, 9.0)],
        phase: [
            uniform(rng, 0.0, std::f64::consts::TAU),
            uniform(rng, 0.0, std::f64::consts::TAU),
            uniform(rng, 0.0, std::f64::consts::TAU),
        ],
    };
    let waves = [wave(rng), wave(rng), wave(rng)];

    // A lesion centre at a random direction and a fraction of the organ's semi-axes from its
    // centre (so "eccentric" means the same thing in any organ shape).
    let place = |rng: &mut ChaCha20Rng, lo: f64, hi: f64| {
        let r = uniform(rng, lo, hi);
        let u = unit_vector(rng);
        organ.point([u[0] * r, u[1] * r, u[2] * r])
    };
    // A partial-volume ramp of one voxel at 32^3 (voxel size 2/32 in normalised units).
    let voxel = 2.0 / 32.0;
    let lesion = match class {
        PhantomClass::Healthy => bernoulli(rng, 0.3).then(|| {
            let centre = place(rng, 0.0, 0.5);
            let radius = uniform(rng, 0.05, 0.10);
            Lesion::new(vec![Part::Sphere { centre, radius }], uniform(rng, -65.0, -50.0), voxel)
        }),
        PhantomClass::Benign => {
            let centre = place(rng, 0.0, 0.35);
            let radius = uniform(rng, 0.18, 0.38);
            let semi = [
                radius * uniform(rng, 0.85, 1.15),
                radius * uniform(rng, 0.85, 1.15),
                radius * uniform(rng, 0.85, 1.15),
            ];
            let rot = rotation(
                uniform(rng, 0.0, 360.0) * deg,
                uniform(rng, -90.0, 90.0) * deg,
                uniform(rng, 0.0, 360.0) * deg,
            );
            let contrast = if bernoulli(rng, 0.6) {
                uniform(rng, -70.0, -55.0)
            } else {
                uniform(rng, 25.0, 50.0)
            };
            Some(Lesion::new(
                vec![Part::Ellipsoid(Ellipsoid::new(centre, semi, rot))],
                contrast,
                voxel,
            ))
        }
        PhantomClass::Malignant => {
            let centre = place(rng, 0.3, 0.6);
            let core = uniform(rng, 0.22, 0.45);
            let mut parts = vec![Part::Sphere { centre, radius: core }];
            // Lobulation: overlapping spheres around the core.
            for _ in 0..uniform_int(rng, 2, 5) {
                let dir = unit_vector(rng);
                let dist = core * uniform(rng, 0.5, 0.9);
                parts.push(Part::Sphere {
                    centre: add_scaled(centre, dist, dir),
                    radius: core * uniform(rng, 0.35, 0.7),
                });
            }
            // Spiculation: thin strands radiating from the core.
            for _ in 0..uniform_int(rng, 0, 6) {
                let dir = unit_vector(rng);
                let len = core * uniform(rng, 1.2, 2.0);
                parts.push(Part::Capsule {
                    a: centre,
                    b: add_scaled(centre, len, dir),
                    radius: uniform(rng, 0.04, 0.07),
                });
            }
            let contrast = if bernoulli(rng, 0.8) {
                uniform(rng, 45.0, 110.0)
            } else {
                uniform(rng, -70.0, -40.0)
            };
            Some(Lesion::new(parts, contrast, voxel * uniform(rng, 1.5, 3.0)))
        }
    };
    Patient {
        body,
        inner,
        organ,
        fat_hu,
        soft_hu,
        organ_hu,
        waves,
        lesion,
    }
}

/// A Gaussian-like draw (mean 0, variance 1) from one 64-bit word: the sum of four 16-bit
/// uniforms (Irwin-Hall, bounded at +-3.5 sigma). One ChaCha word per voxel instead of
/// Box-Muller's two words, a log, a sqrt and a cosine: 3000 volumes of 32^3 need 98M draws.
fn noise(rng: &mut ChaCha20Rng) -> f64 {
    let w = rng.next_u64();
    let s = (w & 0xffff) + ((w >> 16) & 0xffff) + ((w >> 32) & 0xffff) + (w >> 48);
    // Mean 4 * 65535 / 2, variance 4 * (65536^2 - 1) / 12.
    (s as f64 - 131_070.0) * (3.0f64.sqrt() / 65_536.0)
}

/// One patient's volume (see the module docs for the model).
pub fn generate(cfg: &PhantomConfig, class: PhantomClass, index: u64) -> Volume {
    render(cfg, class, index, false).0
}

/// One patient's volume and a label map of the same size ([`Tissue`] values), the ground truth
/// for measuring lesions (size, contrast, shape) from the volume itself.
pub fn generate_labelled(cfg: &PhantomConfig, class: PhantomClass, index: u64) -> (Volume, Vec<u8>) {
    render(cfg, class, index, true)
}

fn render(cfg: &PhantomConfig, class: PhantomClass, index: u64, labels: bool) -> (Volume, Vec<u8>) {
    let mut rng = patient_rng(cfg.seed, class, index);
    let pt = draw_patient(&mut rng, class);
    // A tilted patient is sampled at R^T p: the world point p lies at R^T p in the patient's frame.
    let tilted = tilt(cfg.seed, class, index, cfg.max_tilt_deg);
    let [nx, ny, nz] = cfg.dims;
    let n = nx.saturating_mul(ny).saturating_mul(nz);
    let largest = nx.max(ny).max(nz).max(1) as f64;
    // Voxel centre coordinates as `scan_features` defines them (isotropic spacing).
    let coord = |i: usize, len: usize| (2.0 * i as f64 + 1.0 - len as f64) / largest;
    let xs: Vec<f64> = (0..nx).map(|i| coord(i, nx)).collect();
    let ys: Vec<f64> = (0..ny).map(|i| coord(i, ny)).collect();
    let zs: Vec<f64> = (0..nz).map(|i| coord(i, nz)).collect();
    // The edge ramp is one voxel of this grid (the lesion edges above are set for 32^3 and
    // scale with the field of view, like the anatomy).
    let edge = 2.0 / largest;
    // The texture is separable: per-axis cosine tables make it three multiplies per term.
    let table = |w: &Wave, axis: usize, c: &[f64]| -> Vec<f64> { c.iter().map(|&t| (w.freq[axis] * t + w.phase[axis]).cos()).collect() };
    let tex: Vec<[Vec<f64>; 3]> = pt
        .waves
        .iter()
        .map(|w| [table(w, 0, &xs), table(w, 1, &ys), table(w, 2, &zs)])
        .collect();

    let mut data = Vec::with_capacity(n);
    let mut label_map = if labels { Vec::with_capacity(n) } else { Vec::new() };
    let sigma = cfg.noise_hu;
    let organ_box = pt.organ.bounds(edge);
    for (k, &z) in zs.iter().enumerate() {
        for (j, &y) in ys.iter().enumerate() {
            let row_tex: [f64; 3] = std::array::from_fn(|w| pt.waves[w].amp_hu * tex[w][1][j] * tex[w][2][k]);
            for (i, &x) in xs.iter().enumerate() {
                let p = match &tilted {
                    None => [x, y, z],
                    Some(r) => core::array::from_fn(|a| r[0][a] * x + r[1][a] * y + r[2][a] * z),
                };
                let wb = pt.body.weight(p, edge);
                // Air is far below the window: no tissue and no visible noise, so no noise draw
                // (the volume is still a pure function of the patient's stream).
                if wb == 0.0 {
                    data.push(0.0f32);
                    if labels {
                        label_map.push(Tissue::Air as u8);
                    }
                    continue;
                }
                let wi = pt.inner.weight(p, edge);
                let wo = if organ_box.contains(p) { pt.organ.weight(p, edge) } else { 0.0 };
                // The lesion is clipped to the organ, so it is only evaluated where the organ is.
                let wl = match &pt.lesion {
                    Some(l) if wo > 0.0 => wo * l.weight(p),
                    _ => 0.0,
                };
                let mut hu = pt.fat_hu + wi * (pt.soft_hu - pt.fat_hu);
                hu += wo * (pt.organ_hu - hu);
                if let Some(l) = &pt.lesion {
                    hu += wl * l.contrast_hu;
                }
                match &tilted {
                    None => {
                        for (yz, t) in row_tex.iter().zip(&tex) {
                            hu += yz * t[0][i];
                        }
                    }
                    // The texture turns with the patient (not separable in world axes then).
                    Some(_) => {
                        for w in &pt.waves {
                            hu += w.amp_hu * (0..3).map(|a| (w.freq[a] * p[a] + w.phase[a]).cos()).product::<f64>();
                        }
                    }
                }
                hu += sigma * noise(&mut rng);
                let hu = AIR_HU + wb * (hu - AIR_HU);
                data.push(((hu - WINDOW_LO_HU) / WINDOW_WIDTH_HU).clamp(0.0, 1.0) as f32);
                if labels {
                    let t = if wb < 0.5 {
                        Tissue::Air
                    } else if wl >= 0.5 {
                        Tissue::Lesion
                    } else if wo >= 0.5 {
                        Tissue::Organ
                    } else if wi >= 0.5 {
                        Tissue::SoftTissue
                    } else {
                        Tissue::Fat
                    };
                    label_map.push(t as u8);
                }
            }
        }
    }
    let s = cfg.spacing_mm;
    (
        Volume {
            dims: cfg.dims,
            spacing_mm: [s, s, s],
            data,
        },
        label_map,
    )
}
