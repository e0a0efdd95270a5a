//! The command line's definitions (clap): the commands, their arguments and help texts. What
//! each command does is [`super::run`] and the modules it calls.

use super::{decrypt, encrypt, equivariant};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const ABOUT: &str = "clifhe: encrypted classification of 3D medical scans (CKKS, Cl(3,0) multivector features)";

const LONG_ABOUT: &str = "\
clifhe: encrypted classification of 3D medical scans.

A scan is reduced to 8 Cl(3,0) multivector features (scalar, e1, e2, e3, e12, e13, e23, e123),
CKKS-encrypted under the hospital's key, evaluated by the vendor without decryption, and
decrypted only at the hospital.

Roles:
  hospital   keygen   create a key set (secret.key stays at the hospital)
             encrypt  scans, dataset samples or feature files -> one ciphertext
                      (--profile: a box-encoded batch for circuit-private inference)
             decrypt  a ciphertext -> features per patient (local only)
             features scans -> features after a preprocessing pipeline (CSV)
             evalkeys relinearization and rotation keys for the vendor
             device-bundle  the flash images a device encrypts with (public only)
             release  flooded decryption of the vendor's scores -> argmax, budgeted
  vendor     train    the model on plaintext features
             profile  the model's public input profile (box or channel domain, level, scale)
             infer    encrypted batch or device ciphertexts -> encrypted scores
             predict  the model on plaintext features (reference)
  all        demo     every role in one process, measured
  anyone     presets  parameter sets and their security figures";

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 internal, 2 usage, 3 file unreadable/unwritable, 4 corrupt key or
ciphertext, 5 wrong keys (other preset or other secret key), 6 argument out of range
(slot, level, patient count, preset), 7 unusable input scan/features, 8 secret key exists.";

const KEYGEN_HELP: &str = "Generate a hospital key set.\n\n\
The secret key is written as its 32-byte seed to DIR/secret.key with mode 0600 and never
leaves the hospital. DIR/public.key goes to the gateways that encrypt; DIR/public.bundle
(public key and description; `evalkeys` adds the evaluation keys) is what the vendor receives.
DIR/keyset.json records the preset, the creation time and the SHA-256 fingerprint of the
public key; DIR/leakage.json is the release budget in bits. An existing secret key is never
overwritten without --force; --rotate retires the old key set to DIR/retired/<fingerprint>/.";

const ENCRYPT_HELP: &str = "Encrypt patients' features under the key set's public key.\n\n\
Each --input is a dataset sample FILE.npz#SPLIT:I (MedMNIST 3D), a dataset range
FILE.npz#SPLIT:A..B, a scan file in any other format the data loaders read, or a features file (.json: [8 numbers] or a list of
them; .csv: one patient per row).

Without --profile (interleaved): patient p (counting from --slot) goes to slots 8p..8p+7 of
a full-slot encoding at the preset's scale, zeros elsewhere; at most N/16 patients fit in one
ciphertext. The vendor evaluates it only with `infer --no-flooding` (not circuit-private).

With --profile PROFILE (from the vendor's `host-eval profile`): each patient's features are
clamped into the model's public input box and encoded as (x - center) / half_width, blade k of
patient p in slot p of ciphertext k, 8 ciphertexts in one batch file, at the profile's level and
scale; up to N/2 patients. This is what a circuit-private (flooded) `infer` needs.

With the profile of an equivariant model, the inputs must be scans or dataset samples: each goes
through the profile's preprocessing to its channel multivectors, clamped into the profile's
domain, one ciphertext per present blade of each channel.";

const DECRYPT_HELP: &str = "Decrypt a ciphertext (full or seeded) with the key set's secret key and \
print the features of each patient.\n\nThis is the hospital's own, local decryption: the raw \
decryption stays inside this process. Never send its output together with the ciphertext to \
anyone: the pair reveals the secret key.";

#[derive(Debug, Parser)]
#[command(name = "host-eval", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the parameter presets: N, prime chain, log2 Q, log2 QP (actual primes), 128-bit bound
    Presets {
        /// Machine-readable JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// [hospital] Generate a key set: DIR/secret.key (owner-only), DIR/public.key, DIR/keyset.json
    #[command(long_about = KEYGEN_HELP)]
    Keygen(KeygenArgs),
    /// [hospital/gateway] Encrypt one or more patients' features into one ciphertext
    #[command(long_about = ENCRYPT_HELP)]
    Encrypt(EncryptArgs),
    /// [hospital] Decrypt a ciphertext locally and print each patient's 8 features
    #[command(long_about = DECRYPT_HELP)]
    Decrypt(DecryptArgs),
    /// [hospital] Generate evaluation keys (relinearization, rotations 1..7) into DIR/eval/
    Evalkeys {
        /// Key set directory (needs secret.key)
        #[arg(long)]
        keys: PathBuf,
        /// Also the rotations that merge up to this many single-patient device ciphertexts
        /// (`infer --device-ciphertexts`): steps -8 * 2^j, log2 of it more keys
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        merge_patients: Option<u32>,
        /// Only the relinearization key: all that `infer` on a box-encoded batch
        /// (`encrypt --profile`) needs (interleaved and device batches also need the rotations)
        #[arg(long, conflicts_with = "merge_patients")]
        relin_only: bool,
        /// The relinearization key and the rotations a vendor's profile lists (a block-layout
        /// profile of an equivariant model), instead of the interleaved path's rotations
        #[arg(long, conflicts_with_all = ["merge_patients", "relin_only"])]
        profile: Option<PathBuf>,
        /// Print one JSON object (for scripts) instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// [vendor] Train the GNN on plaintext features and save the model (JSON)
    #[command(long_about = TRAIN_HELP)]
    Train {
        /// MedMNIST 3D .npz (default: the built-in phantoms)
        #[arg(long, conflicts_with_all = ["scans", "features"])]
        dataset: Option<PathBuf>,
        /// Folder of labelled scans (NIfTI, DICOM files or series folders, raw, .npz samples);
        /// needs --labels and --pipeline
        #[arg(long, requires_all = ["labels", "pipeline"], conflicts_with = "features")]
        scans: Option<PathBuf>,
        /// Features CSV (id and 8 values per row); needs --labels
        #[arg(long, requires = "labels")]
        features: Option<PathBuf>,
        /// Labels CSV: id,label[,split] per row (id: the scan's path under --scans, or the
        /// features row's id)
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Preprocessing of the scans, recorded in the model: a preset (medmnist, raw, ct, mr)
        /// or a pipeline JSON file (docs/preprocessing.md); with --features, the pipeline that
        /// made them
        #[arg(long)]
        pipeline: Option<String>,
        /// Phantoms per class for the built-in dataset
        #[arg(long, default_value_t = 400)]
        per_class: usize,
        /// Built-in phantoms only: tilt every patient about a random axis by up to DEG degrees
        #[arg(long, value_name = "DEG", default_value_t = 0.0)]
        tilt: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Model architecture: gnn (8 features) or equivariant (rotation-invariant, on
        /// intensity shells and principal axes; with --circuit-private, what `profile` and
        /// `infer` evaluate encrypted)
        #[arg(long, value_enum, default_value_t = equivariant::Architecture::Gnn)]
        arch: equivariant::Architecture,
        /// With --arch equivariant: train the network the circuit-private encrypted evaluation
        /// fits (one layer of 8 channels without gates) instead of the plaintext-best one
        #[arg(long)]
        circuit_private: bool,
        /// Model file to write
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// [vendor] Publish a model's input profile (input box, level, scale) for the hospital's `encrypt --profile`
    #[command(long_about = PROFILE_HELP)]
    Profile {
        /// Model file from `train`
        #[arg(long)]
        model: PathBuf,
        /// The hospital's public.bundle, or a key set directory (keyset.json names the preset;
        /// no secret key needed)
        #[arg(long)]
        keys: PathBuf,
        /// Profile for `infer --no-flooding` (preset's scale, NOT circuit-private)
        #[arg(long)]
        no_flooding: bool,
        /// Batch layout: blade-major (up to N/2 patients), or blocks (an equivariant model's
        /// one-layer network for a few patients at low latency; the hospital then runs
        /// `evalkeys --profile` for its rotation keys)
        #[arg(long, value_enum, default_value_t = super::profile::ProfileLayout::BladeMajor)]
        layout: super::profile::ProfileLayout,
        /// Profile file to write (JSON)
        #[arg(long)]
        out: PathBuf,
        /// Print one JSON object (for scripts) instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// [vendor] Encrypted inference: box-encoded batch (flooded, circuit-private), or interleaved batch / device ciphertexts (--no-flooding) -> encrypted scores, one file per class
    #[command(long_about = INFER_HELP)]
    Infer {
        /// Model file from `train`
        #[arg(long)]
        model: PathBuf,
        /// The hospital's public.bundle (from keygen / evalkeys), or a directory with keyset.json,
        /// public.key and eval/ (the secret key is never read)
        #[arg(long)]
        keys: PathBuf,
        /// Batch from `encrypt --profile` (box-encoded blade-major), or an interleaved batch
        /// ciphertext from `encrypt` (patients in slots 8p..8p+7; needs --no-flooding)
        #[arg(long, required_unless_present = "device_ciphertexts", conflicts_with = "device_ciphertexts")]
        input: Option<PathBuf>,
        /// Single-patient device ciphertexts (full-slot, patient in slots 0..7; file i is patient
        /// i; a directory stands for its .ct/.clhe files in name order), merged into one batch
        #[arg(long, num_args = 1..)]
        device_ciphertexts: Vec<PathBuf>,
        /// The switching key the hospital registered for the enrolled device that made
        /// --device-ciphertexts (`device-enroll`): evaluated circuit-private
        #[arg(long, requires = "device_ciphertexts")]
        device_key: Option<PathBuf>,
        /// Output directory (class-<c>.ct and scores.json)
        #[arg(long)]
        out: PathBuf,
        /// Patients in the batch (default: the layout's capacity)
        #[arg(long)]
        patients: Option<usize>,
        /// Statistical security parameter of the output flooding
        #[arg(long, default_value_t = clifhe_std::privacy::DEFAULT_STATISTICAL_SECURITY)]
        statistical_security: u32,
        /// Do not flood the output, only mask the unused slots (NOT circuit-private)
        #[arg(long)]
        no_flooding: bool,
        /// Print the scores' manifest (JSON) instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// [all roles] Features of scans after a preprocessing pipeline, as the CSV `train --features` reads
    Features {
        /// Scans or dataset samples, as for `encrypt --input`
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<String>,
        /// Use the pipeline this model file records
        #[arg(long, conflicts_with = "pipeline")]
        model: Option<PathBuf>,
        /// Preprocessing: a preset (medmnist, raw, ct, mr) or a pipeline JSON file (default:
        /// the rule of models that record none: .npz / 255, other formats as they are)
        #[arg(long)]
        pipeline: Option<String>,
        /// CSV file to write (default: standard output)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// [vendor] Plaintext scores of the model on features (the reference for encrypted scores)
    Predict {
        /// Model file from `train`
        #[arg(long)]
        model: PathBuf,
        /// Features files, scans or dataset samples, as for `encrypt --input`
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<String>,
        /// Print JSON (scores, argmax and the largest intermediate value)
        #[arg(long)]
        json: bool,
    },
    /// [hospital] The flash images a device needs to encrypt under this key set (public material only)
    #[command(name = "device-bundle", long_about = DEVICE_BUNDLE_HELP)]
    DeviceBundle {
        /// The key set's public.bundle, or its directory (secret.key is never read)
        #[arg(long)]
        keys: PathBuf,
        /// New directory to write the bundle into
        #[arg(long)]
        out: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// [hospital] Enrol a device for the vendor's profile: its key bundle (secret seed) and the vendor's switching key
    #[command(name = "device-enroll", long_about = DEVICE_ENROLL_HELP)]
    DeviceEnroll {
        /// Key set directory (needs secret.key)
        #[arg(long)]
        keys: PathBuf,
        /// The vendor's profile (`profile`, circuit-private, blade-major)
        #[arg(long)]
        profile: PathBuf,
        /// New directory for the device's bundle (CLIFHE_DEVICE_ENROLLMENT of the firmware build)
        #[arg(long)]
        out: PathBuf,
        /// New file for the switching key the vendor needs (`infer --device-key`)
        #[arg(long)]
        switch_key: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// [hospital] Play an enrolled device on the host: the firmware's encryption path on features or scans
    #[command(name = "device-encrypt")]
    DeviceEncrypt {
        /// The device's enrolment bundle (`device-enroll --out`)
        #[arg(long)]
        bundle: PathBuf,
        /// Features files, scans or dataset samples, as for `encrypt --input`
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<String>,
        /// New directory for the ciphertexts (patient<i>.clhe)
        #[arg(long)]
        out: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// [hospital] The batch record of an enrolled device's ciphertexts, for `release --record`
    #[command(name = "device-record")]
    DeviceRecord {
        /// Key set directory
        #[arg(long)]
        keys: PathBuf,
        /// The profile the device was enrolled for
        #[arg(long)]
        profile: PathBuf,
        /// The ciphertext files sent to the vendor (or their directory), in the vendor's order
        #[arg(long, required = true, num_args = 1..)]
        device_ciphertexts: Vec<PathBuf>,
        /// Record file to write (JSON)
        #[arg(long)]
        out: PathBuf,
    },
    /// [hospital] Release predictions from `infer` output: flooded decryption, argmax, budget
    Release {
        /// Key set directory (needs secret.key); every release is charged to its leakage ledger
        /// (leakage.json, in bits)
        #[arg(long)]
        keys: PathBuf,
        /// Directory written by `infer` (or `fetch`): the vendor's results, untrusted
        #[arg(long)]
        scores: PathBuf,
        /// The batch record `encrypt --profile` wrote beside the batch (BATCH.record.json): the
        /// patients, classes, level and scale the release trusts instead of the vendor's manifest
        #[arg(long)]
        record: PathBuf,
        #[arg(long, default_value_t = clifhe_std::privacy::DEFAULT_STATISTICAL_SECURITY)]
        statistical_security: u32,
        /// Also release each class score, flooded and rounded to this many decimals (1 to 6)
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=6))]
        rounded: Option<u32>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// [all roles] Train, encrypt, infer encrypted, sanitise, release: measured end to end
    #[command(long_about = DEMO_HELP)]
    Demo(DemoArgs),
    /// [vendor] The inference service: HTTP API with in-process workers (--store) or the API alone (--nats)
    Serve(crate::service::cli::ServeArgs),
    /// [vendor] A service worker on NATS JetStream (run any number, on any machines)
    Worker(crate::service::cli::WorkerArgs),
    /// [vendor] Manage the service's tenants (hospitals) and their tokens
    #[command(subcommand)]
    Tenant(crate::service::cli::TenantCommand),
    /// [hospital] Upload the key set's public material if needed, submit a batch, print the job id
    Submit(crate::service::cli::SubmitArgs),
    /// [hospital] Wait for a job, download and verify its encrypted scores into a directory for `release`
    Fetch(crate::service::cli::FetchArgs),
    /// [hospital] Download the service model's input profile for the key set's preset (for `encrypt --profile`)
    FetchProfile(crate::service::cli::FetchProfileArgs),
}

const PROFILE_HELP: &str = "Write the public input profile of a model for the hospital's key set.

A circuit-private (flooded) result needs the patients box-encoded: each feature clamped into the \
model's input box (the range of its training features) and mapped to [-1, 1], and encrypted at the \
level and scale the model's schedule starts at (scale 2^80 on private-n15). The profile holds exactly \
that, not the weights: the hospital runs `encrypt --profile FILE`, and `infer` checks the batch's \
profile fingerprint against the model before evaluating it.

For an equivariant model (`train --arch equivariant --circuit-private`) the profile holds its channel \
spec, preprocessing and public input domain (present blades, per-grade norm bounds) and the level \
and scale the lowest-level policy that fits the flood needs; the hospital encrypts the channels of \
its scans. Only circuit-private: --no-flooding is refused.";

const INFER_HELP: &str = "Encrypted inference of the model on the hospital's ciphertexts, with the key set's \
evaluation keys (never its secret key).

Input: a blade-major batch (--input, from `encrypt --profile`: the circuit-private path, up to N/2 \
patients; box-encoded features for a GNN, channels for an equivariant model, which reads nothing else; evaluated with the model's proven noise bound and, unless --no-flooding, \
sanitised with a flood sized from it), one interleaved batch (--input, from `encrypt`: patient p in \
slots 8p..8p+7; --no-flooding only), or single-patient device ciphertexts (--device-ciphertexts: each a full-slot encoding with its patient \
in slots 0..7 and zeros elsewhere, as `encrypt --input ONE` and the N = 2^14 firmware make them; \
full or seeded). Device ciphertexts are merged into one batch by a tree of rotations (no level; \
several of them need `evalkeys --merge-patients P`). The batch is converted to blade-major \
form (1 level), the model evaluated (its depth in levels) and every score ciphertext sanitised \
(masked, re-randomised, flooded, dropped to level 0) unless --no-flooding.";

const DEVICE_BUNDLE_HELP: &str = "Write what a hospital device needs to encrypt under this key set.

The bundle directory holds the public key's b limbs (pk_b.bin) and a seed (pk_a_seed.bin), the
preset's forward NTT tables (ntt_q<i>.bin) and device.json (preset, primes, the key set's
fingerprint, each file's size and SHA-256). It is public material only: it is made from
public.bundle or the key directory's public files, and secret.key is never read.

The firmware embeds it at build time: CLIFHE_DEVICE_BUNDLE=DIR cargo build --release
--features stm32h7 in device-examples/ (the build checks the manifest against the preset the
image is built for). The device's ciphertexts then decrypt under this key set
(decrypt --from-device).";

const DEVICE_ENROLL_HELP: &str = "Enrol a device (a scanner-side microcontroller) for the vendor's circuit-private profile.

A part in the 2 MiB flash / 512 KiB RAM class cannot hold the hospital's public key at the
circuit-private preset, so each device gets its own secret key: this command draws one (32 bytes
from the OS generator) and writes
  --out DIR          the firmware's bundle: device-key.seed (the device's SECRET key seed,
                     mode 0600: it goes into that device's flash and nowhere else), input.bin
                     (the profile's input level + 1, the device scale 2^90 and the input box in
                     fixed point) and device.json (preset, key set and profile fingerprints,
                     each file's size and SHA-256; the firmware build checks them);
  --switch-key FILE  the key switching key from the device's key to the hospital's, for the
                     vendor (`infer --device-ciphertexts DIR --device-key FILE`): public material.
The vendor also needs the rotations 1..7 (`evalkeys --merge-patients 2`). Build the firmware with
CLIFHE_DEVICE_ENROLLMENT=DIR (device-examples/README.md); record what the device sent with
`device-record` and release the vendor's results with `release --record`. To retire a device,
delete its switching key at the vendor and its bundle. docs/device.md has the protocol.";

const TRAIN_HELP: &str = "Train the GNN on labelled plaintext features and write the model file.

Sources (one): the built-in phantoms (default), a MedMNIST 3D .npz (--dataset, its own split),
a folder of scans with a labels CSV (--scans DIR --labels CSV --pipeline P), or a features CSV
with a labels CSV (--features CSV --labels CSV [--pipeline P]).

Labels CSV: id,label[,split] per row, an optional header (id,label,split). The id is the scan's
path under --scans (a file, or a folder holding one DICOM series) or the features row's id.
Labels are class names (sorted) or integers 0..C-1. Without a split column each class is
shuffled with --seed and split 70/15/15 (train / validation for early stopping / test).

--pipeline is the scans' preprocessing (docs/preprocessing.md): a preset (medmnist: I/255;
raw: as is; ct: 1.5 mm isotropic, window -160..240 HU, cropped to the body; mr: 1.5 mm
isotropic, 1st..99th percentile, cropped) or a pipeline JSON file. The model records it, its
profile carries it to the hospital, and encrypt and predict run every scan through it.

The report gives the test split's accuracy, balanced accuracy and AUC, and a logistic
regression baseline's AUC on the same features.

--arch equivariant trains the rotation-invariant network instead (docs/model-format.md): it
reads 4 intensity shells and the 3 principal axes of each volume, so it takes the phantoms or
a MedMNIST file. predict scores scans and dataset samples with its model file; profile and
infer do not read it yet (its encrypted evaluation is to come).";

const DEMO_HELP: &str = "Run every role in one process on a labelled dataset and report accuracy, precision and timings.

Data: the built-in phantom dataset (healthy / benign / malignant, deterministic) or a MedMNIST 3D .npz file (--dataset; trained on train with val for early stopping, scored on test). The vendor trains the GNN in plaintext; the hospital makes keys and encrypts the test patients (blade-major batches of N/2 patients); the vendor evaluates the GNN on the ciphertexts and sanitises the result (mask, re-randomise, flood, drop to level 0); the hospital releases only the argmax of a flooded decryption. The default preset private-n15 has the scale that flooding needs.";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Parameter preset (private-n15 supports flooding at s = 30; leveled-n14 needs --no-flooding)
    #[arg(long, default_value = "private-n15")]
    pub preset: String,
    /// MedMNIST 3D .npz file instead of the built-in phantoms
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Phantoms per class for the built-in dataset (split 60/15/25 into train/val/test)
    #[arg(long, default_value_t = 400)]
    pub per_class: usize,
    /// Seed of the dataset and of training (keys always come from the OS generator)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Statistical security parameter s of the flooding (per coefficient)
    #[arg(long, default_value_t = clifhe_std::privacy::DEFAULT_STATISTICAL_SECURITY)]
    pub statistical_security: u32,
    /// Do not flood (NOT circuit-private; for presets whose scale cannot absorb the flood)
    #[arg(long)]
    pub no_flooding: bool,
    /// Also time a single patient end to end (the GNN: one extra batch in the block layout; the
    /// equivariant model: the block layout with its rotation keys)
    #[arg(long)]
    pub single_patient_latency: bool,
    /// How the hospital encrypts its patients in the GNN demo: seeded (the default: secret-key,
    /// half the upload; the hospital holds its key set here) or pk (public key, as a gateway
    /// without the secret key). The equivariant demo encrypts with the public key.
    #[arg(long, value_enum)]
    pub encrypt_mode: Option<super::encrypt::Mode>,
    /// Evaluate only the test patients (by default the last batch is filled with repeated test
    /// patients so that throughput is measured on full batches)
    #[arg(long)]
    pub no_fill: bool,
    /// Worker threads (default: all cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object (for scripts) instead of the narrative
    #[arg(long)]
    pub json: bool,
    /// Also write report.png (ROC curve, confusion matrix of the released diagnoses, balanced
    /// accuracy) and report.json into this directory
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// The model: gnn (8 features) or equivariant (rotation-invariant channels, ciphertext x
    /// ciphertext geometric products)
    #[arg(long, value_enum, default_value_t = equivariant::Architecture::Gnn)]
    pub arch: equivariant::Architecture,
    /// Built-in phantoms only: tilt every patient about a random axis by up to DEG degrees
    #[arg(long, value_name = "DEG", default_value_t = 0.0)]
    pub tilt: f64,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Parameter preset (see `host-eval presets`), e.g. leveled-n14
    #[arg(long, default_value = "leveled-n14")]
    pub preset: String,
    /// Directory for the key files (created if missing)
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing key set (everything encrypted under the old key is lost)
    #[arg(long)]
    pub force: bool,
    /// Rotate the key set in --out: move its files to --out/retired/<fingerprint>/ and make a
    /// fresh one with a fresh leakage budget (what to do when `release` says the budget is spent)
    #[arg(long, conflicts_with = "force")]
    pub rotate: bool,
    /// Leakage budget of the new key set in bits (default and maximum: what the preset can
    /// disclose and stay at 128-bit security; see docs/leakage.md)
    #[arg(long)]
    pub leakage_budget_bits: Option<u64>,
    /// Print one JSON object (for scripts) instead of the summary
    #[arg(long)]
    pub json: bool,
    /// TEST ONLY, INSECURE: derive the key from this fixed seed instead of the OS generator
    /// (only in builds with the `insecure-test-params` feature; the key set is marked insecure
    /// and every other command refuses it).
    #[cfg(feature = "insecure-test-params")]
    #[arg(long, hide = true)]
    pub insecure_test_seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Key set directory (needs public.key and keyset.json; secret.key only for --mode seeded)
    #[arg(long)]
    pub keys: PathBuf,
    /// Inputs, in patient order (repeat the flag or list several values)
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<String>,
    /// Ciphertext file to write (written atomically)
    #[arg(long)]
    pub out: PathBuf,
    /// pk: public-key encryption; seeded: secret-key encryption, half the size
    #[arg(long, value_enum, default_value = "pk")]
    pub mode: encrypt::Mode,
    /// Level to encrypt at (default: the top of the chain)
    #[arg(long)]
    pub level: Option<usize>,
    /// Patient slot of the first patient (slots 8P..8P+7)
    #[arg(long, default_value_t = 0)]
    pub slot: usize,
    /// The vendor's input profile of its model (`host-eval profile`): writes a box-encoded
    /// blade-major batch (8 ciphertexts, up to N/2 patients) at the profile's level and scale,
    /// which a circuit-private (flooded) `infer` needs
    #[arg(long, conflicts_with_all = ["level", "slot"])]
    pub profile: Option<PathBuf>,
    /// Print one JSON object (for scripts) instead of the summary (no feature values)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Key set directory (needs secret.key and keyset.json)
    #[arg(long)]
    pub keys: PathBuf,
    /// Ciphertext file: one this key set's `encrypt` wrote (its BATCH.record.json beside it)
    #[arg(long)]
    pub input: PathBuf,
    /// The input is a ciphertext from one of the hospital's own devices (no record); never use
    /// this for anything that came from the vendor
    #[arg(long)]
    pub from_device: bool,
    /// Print JSON
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV
    #[arg(long)]
    pub csv: bool,
    /// Patients to print: auto (non-empty slots), all, or e.g. 0..4 / 0,3,5
    #[arg(long, default_value = "auto", value_parser = decrypt::PatientSelection::parse)]
    pub patients: decrypt::PatientSelection,
}
