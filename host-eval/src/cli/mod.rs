//! The `host-eval` command line, as library code so tests can drive it without a process.
//!
//! Roles:
//! * **hospital** — `keygen` (once per key set), `encrypt` (scans or features -> ciphertext),
//!   `decrypt` (its own ciphertexts and, later, the vendor's encrypted scores);
//! * **vendor** — `train`, `infer` (encrypted batch or device ciphertexts -> encrypted
//!   scores), `predict` (the plaintext reference);
//! * anyone — `presets`.

mod args;
pub mod decrypt;
pub mod demo;
pub mod device_bundle;
pub mod device_enroll;
pub mod encrypt;
pub mod equivariant;
pub mod equivariant_demo;
pub mod error;
pub mod fsio;
pub mod inputs;
pub mod keyset;
pub mod labelled;
pub mod ledger;
pub mod presets;
pub mod profile;
pub mod protocol;
pub mod public;
pub mod report;
pub mod scan;

pub use args::{Cli, Command, DecryptArgs, DemoArgs, EncryptArgs, KeygenArgs};
pub use error::CliError;

use std::io::Write;

/// `--tilt` is a property of the built-in phantoms: refused with files, and outside [0, 180].
fn check_tilt(tilt: f64, from_files: bool) -> Result<(), CliError> {
    if !(0.0..=180.0).contains(&tilt) {
        return Err(CliError::bad_input("--tilt", "the tilt is an angle in degrees from 0 to 180"));
    }
    if tilt > 0.0 && from_files {
        return Err(CliError::bad_input(
            "--tilt",
            "tilts the built-in phantoms; a dataset file keeps its own orientations",
        ));
    }
    Ok(())
}

/// Runs one command, writing its normal output to `out` and warnings to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let stdout_err = |e: std::io::Error| CliError::io("standard output", "write", e);
    match cli.command {
        Command::Presets { json } => {
            let rows = presets::all();
            let text = if json {
                let mut s = serde_json::to_string_pretty(&rows).map_err(|e| CliError::bad_input("presets", e))?;
                s.push('\n');
                s
            } else {
                presets::render_table(&rows)
            };
            out.write_all(text.as_bytes()).map_err(stdout_err)
        }
        Command::Keygen(a) => {
            #[cfg(feature = "insecure-test-params")]
            let randomness = match a.insecure_test_seed {
                Some(seed) => {
                    let _ = writeln!(err, "warning: INSECURE fixed test seed; never use this key for real data");
                    keyset::KeyRandomness::TestSeed(seed)
                }
                None => keyset::KeyRandomness::Os,
            };
            #[cfg(not(feature = "insecure-test-params"))]
            let randomness = keyset::KeyRandomness::Os;
            let opts = keyset::KeygenOptions {
                force: a.force,
                rotate: a.rotate,
                leakage_budget_bits: a.leakage_budget_bits,
            };
            let r = keyset::keygen(&a.preset, &a.out, opts, randomness)?;
            if a.json {
                return print_json(
                    out,
                    &serde_json::json!({
                        "dir": r.dir,
                        "keyset": r.meta,
                        "leakage_budget_bits": r.budget_bits,
                        "public_bundle": r.bundle,
                    }),
                );
            }
            writeln!(
                out,
                "key set for preset {} written to {}\n  secret.key  keep at the hospital (mode 0600)\n  public.key  {} bytes, sha256 {}\n  keyset.json created {}\n  leakage.json  release budget {} bits (rotate with `host-eval keygen --rotate` when spent)\n  public.bundle  what the vendor receives (public key and description; `evalkeys` adds its keys): {}",
                r.meta.preset,
                r.dir.display(),
                r.meta.public_key_bytes,
                r.meta.fingerprint_sha256,
                r.meta.created,
                r.budget_bits,
                r.bundle.display()
            )
            .map_err(stdout_err)
        }
        Command::Encrypt(a) => {
            let opts = encrypt::EncryptOptions {
                keys: a.keys,
                inputs: a.input,
                out: a.out,
                mode: a.mode,
                level: a.level,
                slot: a.slot,
                profile: a.profile,
            };
            let report = encrypt::encrypt(&opts)?;
            if a.json {
                return print_json(out, &encrypt::summary_json(&report));
            }
            writeln!(out, "{}", encrypt::summary(&report)).map_err(stdout_err)
        }
        Command::Evalkeys {
            keys,
            merge_patients,
            relin_only,
            profile,
            json,
        } => {
            let (count, bytes, bundle) = protocol::evalkeys(&keys, merge_patients.map(|p| p as usize), relin_only, profile.as_deref())?;
            if json {
                let digest = clifhe_std::protocol::bundle::digest(&fsio::read(&bundle)?);
                return print_json(
                    out,
                    &serde_json::json!({
                        "keys": count,
                        "bytes": bytes,
                        "eval_dir": keys.join("eval"),
                        "public_bundle": bundle,
                        "public_bundle_sha256": digest,
                    }),
                );
            }
            writeln!(
                out,
                "{count} evaluation keys ({:.1} MiB, seed-compressed) written to {}\n  send the vendor {} (public key, evaluation keys and description; no secret)",
                bytes as f64 / 1048576.0,
                keys.join("eval").display(),
                bundle.display()
            )
            .map_err(stdout_err)
        }
        Command::Train {
            dataset,
            scans,
            features,
            labels,
            pipeline,
            per_class,
            tilt,
            seed,
            arch,
            circuit_private,
            out: model_out,
            json,
        } => {
            if circuit_private && arch != equivariant::Architecture::Equivariant {
                return Err(CliError::bad_input(
                    "--circuit-private",
                    "chooses the equivariant network's shape; the GNN is always evaluable circuit-privately",
                ));
            }
            let from_files = scans.is_some() || features.is_some();
            check_tilt(tilt, dataset.is_some() || from_files)?;
            if labels.is_some() && !from_files {
                return Err(CliError::bad_input("--labels", "labels go with --scans or --features"));
            }
            if pipeline.is_some() && !from_files {
                return Err(CliError::bad_input(
                    "--pipeline",
                    "the phantoms and MedMNIST files have their own pipeline (raw, medmnist); --pipeline goes with --scans or --features",
                ));
            }
            let pipeline = pipeline.as_deref().map(labelled::read_pipeline).transpose()?;
            let source = match (dataset, scans, features, labels) {
                (Some(p), ..) => protocol::TrainSource::Medmnist(p),
                (None, Some(dir), _, Some(labels)) => protocol::TrainSource::Scans {
                    dir,
                    labels,
                    pipeline: pipeline.ok_or_else(|| CliError::bad_input("--pipeline", "--scans needs --pipeline"))?,
                },
                (None, None, Some(features), Some(labels)) => protocol::TrainSource::Features {
                    features,
                    labels,
                    pipeline,
                },
                _ => protocol::TrainSource::Phantoms {
                    per_class,
                    max_tilt_deg: tilt,
                },
            };
            if arch == equivariant::Architecture::Equivariant {
                let s = equivariant::train(&source, seed, circuit_private, &model_out)?;
                let text = if json {
                    serde_json::to_string_pretty(&s).map_err(|e| CliError::bad_input("train", e))?
                } else {
                    format!(
                        "equivariant model ({} classes, {} channels + 1, {} parameters, {} epochs) trained on {} samples ({} validation, {} test) of {} -> {}\n  test accuracy {:.3}, balanced {:.3}, AUC {}; logistic regression on the same channels: AUC {}",
                        s.classes,
                        s.channels.count(),
                        s.parameters,
                        s.epochs_run,
                        s.train_samples,
                        s.val_samples,
                        s.test_samples,
                        s.dataset,
                        s.model.display(),
                        s.test_accuracy,
                        s.test_balanced_accuracy,
                        s.test_auc.map_or("n/a".into(), |v| format!("{v:.3}")),
                        s.logistic_auc.map_or("n/a".into(), |v| format!("{v:.3}")),
                    )
                };
                return writeln!(out, "{text}").map_err(stdout_err);
            }
            let s = protocol::train(&source, seed, &model_out)?;
            let text = if json {
                serde_json::to_string_pretty(&s).map_err(|e| CliError::bad_input("train", e))?
            } else {
                format!(
                    "model ({} classes, depth {}) trained on {} samples ({} validation, {} test) of {} -> {}\n  preprocessing: {}\n  test accuracy {:.3}, balanced {:.3}, AUC {}; logistic baseline AUC {}",
                    s.classes,
                    s.depth,
                    s.train_samples,
                    s.val_samples,
                    s.test_samples,
                    s.dataset,
                    s.model.display(),
                    s.preprocessing
                        .as_ref()
                        .and_then(|p| serde_json::to_string(p).ok())
                        .unwrap_or_else(|| "not stated (features of unknown origin)".into()),
                    s.test_accuracy,
                    s.test_balanced_accuracy,
                    s.test_auc.map_or("n/a".into(), |v| format!("{v:.3}")),
                    s.logistic_auc.map_or("n/a".into(), |v| format!("{v:.3}"))
                )
            };
            writeln!(out, "{text}").map_err(stdout_err)
        }
        Command::Infer {
            model,
            keys,
            input,
            device_ciphertexts,
            device_key,
            out: dir,
            patients,
            statistical_security,
            no_flooding,
            json,
        } => {
            let input = match (input, device_key) {
                (Some(batch), _) => protocol::InferInput::Batch(batch),
                (None, Some(switch_key)) => protocol::InferInput::EnrolledDevice {
                    files: device_ciphertexts,
                    switch_key,
                },
                (None, None) => protocol::InferInput::Device(device_ciphertexts),
            };
            let m = protocol::infer(&protocol::InferOptions {
                model,
                keys,
                input,
                out: dir.clone(),
                patients,
                statistical_security,
                no_flooding,
            })?;
            if json {
                return print_json(out, &m);
            }
            writeln!(
                out,
                "encrypted scores for {} patients x {} classes written to {}{}",
                m.patients,
                m.classes,
                dir.display(),
                if m.circuit_private {
                    " (sanitised: masked, re-randomised, flooded, dropped to the lowest level that holds them)"
                } else {
                    " (unused slots masked, NOT flooded: not circuit-private)"
                }
            )
            .map_err(stdout_err)
        }
        Command::Profile {
            model,
            keys,
            no_flooding,
            layout,
            out: path,
            json,
        } => {
            let params = public::PublicKeySet::open(&keys)?.params;
            let p = profile::write_profile(&model, &params, !no_flooding, layout.into(), &path)?;
            if json {
                return print_json(out, &p);
            }
            let batches = match &p.input {
                clifhe_std::protocol::profile::ProfileInput::InputBox(_) => "box-encoded blade-major batches".to_string(),
                clifhe_std::protocol::profile::ProfileInput::Channels(c) => format!(
                    "{} channel batches ({} channels, {} ciphertexts{}; encrypt scans, not features)",
                    p.layout.name(),
                    c.spec.count(),
                    clifhe_std::protocol::batch::BatchHeader::new(&p, 1).encoding.ciphertexts(),
                    if p.rotations.is_empty() {
                        String::new()
                    } else {
                        format!(", {} rotation keys: `evalkeys --profile`", p.rotations.len())
                    }
                ),
            };
            writeln!(
                out,
                "input profile for {} ({}): {batches} of up to {} patients at level {}, scale 2^{} -> {}",
                p.preset,
                if p.circuit_private {
                    "circuit-private, flooded"
                } else {
                    "NOT circuit-private"
                },
                p.capacity,
                p.input_level,
                p.input_log_scale,
                path.display()
            )
            .map_err(stdout_err)
        }
        Command::Features {
            input,
            model,
            pipeline,
            out: file,
        } => {
            let pipeline = match (model, pipeline) {
                (Some(m), _) => profile::read_model(&m)?.preprocessing().cloned(),
                (None, Some(p)) => Some(labelled::read_pipeline(&p)?),
                (None, None) => None,
            };
            let csv = inputs::features_to_csv(&inputs::load_inputs(&input, pipeline.as_ref())?)?;
            match file {
                Some(path) => fsio::write_atomic(&path, csv.as_bytes()),
                None => write!(out, "{csv}").map_err(stdout_err),
            }
        }
        Command::Predict { model, input, json } => {
            let r = protocol::predict(&model, &input)?;
            let text = if json {
                serde_json::to_string_pretty(&r).map_err(|e| CliError::bad_input("predict", e))?
            } else {
                let mut t = format!("patient,class,label,{}\n", r.labels.join(","));
                for p in &r.patients {
                    let scores: Vec<String> = p.scores.iter().map(|v| format!("{v:.9}")).collect();
                    t.push_str(&format!("{},{},{},{}\n", p.patient, p.class, p.label, scores.join(",")));
                }
                let flagged: Vec<usize> = r.patients.iter().filter(|p| p.out_of_box).map(|p| p.patient).collect();
                if !flagged.is_empty() {
                    t.push_str(&format!(
                        "# warning: patients outside the model's input box (scores extrapolated): {}\n",
                        encrypt::index_list(&flagged)
                    ));
                }
                t.push_str(&format!("# largest intermediate value {:.3e}", r.max_abs_intermediate));
                t
            };
            writeln!(out, "{text}").map_err(stdout_err)
        }
        Command::DeviceBundle { keys, out: dir, json } => {
            let r = device_bundle::write_device_bundle(&keys, &dir)?;
            let text = if json {
                serde_json::to_string_pretty(&r).map_err(|e| CliError::bad_input("device-bundle", e))?
            } else {
                format!(
                    "device bundle for {} (N = {}, {} primes, key set {}) -> {}: {} files, {} bytes of flash images\n  build the firmware with CLIFHE_DEVICE_BUNDLE={} (device-examples/README.md)",
                    r.manifest.preset,
                    r.manifest.n,
                    r.manifest.primes.len(),
                    &r.manifest.keyset_fingerprint_sha256[..16.min(r.manifest.keyset_fingerprint_sha256.len())],
                    r.out.display(),
                    r.manifest.files.len() + 1,
                    r.flash_bytes,
                    r.out.display()
                )
            };
            writeln!(out, "{text}").map_err(stdout_err)
        }
        Command::DeviceEnroll {
            keys,
            profile,
            out: dir,
            switch_key,
            json,
        } => {
            let r = device_enroll::enroll(&keys, &profile, &dir, &switch_key)?;
            if json {
                return print_json(out, &r);
            }
            writeln!(
                out,
                "device enrolled for profile {} (preset {}, level {}, scale 2^{}):\n  bundle {} (device-key.seed is SECRET: for this device's flash only)\n  switching key for the vendor {} ({} bytes, sha256 {})\n  build the firmware with CLIFHE_DEVICE_ENROLLMENT={} (device-examples/README.md)",
                &r.manifest.profile_fingerprint[..16.min(r.manifest.profile_fingerprint.len())],
                r.manifest.preset,
                r.manifest.level,
                r.manifest.log_scale,
                r.out.display(),
                r.switch_key.display(),
                r.switch_key_bytes,
                &r.manifest.switch_key_sha256[..16],
                r.out.display()
            )
            .map_err(stdout_err)
        }
        Command::DeviceEncrypt {
            bundle,
            input,
            out: dir,
            json,
        } => {
            let r = device_enroll::device_encrypt(&bundle, &input, &dir)?;
            if json {
                return print_json(out, &r);
            }
            writeln!(
                out,
                "{} device ciphertexts ({} bytes each) -> {}{}",
                r.files.len(),
                r.ciphertext_bytes,
                dir.display(),
                if r.out_of_box.is_empty() {
                    String::new()
                } else {
                    format!("; outside the model's box (clamped): patients {:?}", r.out_of_box)
                }
            )
            .map_err(stdout_err)
        }
        Command::DeviceRecord {
            keys,
            profile,
            device_ciphertexts,
            out: path,
        } => {
            let r = device_enroll::device_record(&keys, &profile, &device_ciphertexts, &path)?;
            writeln!(
                out,
                "batch record of {} device patients ({} classes, profile {}) -> {}",
                r.patients,
                r.classes,
                &r.profile_fingerprint[..16.min(r.profile_fingerprint.len())],
                path.display()
            )
            .map_err(stdout_err)
        }
        Command::Release {
            keys,
            scores,
            record,
            statistical_security,
            rounded,
            json,
        } => {
            let r = protocol::release(&keys, &scores, &record, statistical_security, rounded)?;
            let text = if json {
                serde_json::to_string_pretty(&r.predictions).map_err(|e| CliError::bad_input("release", e))?
            } else {
                protocol::render_predictions(
                    &r.predictions,
                    &r.labels,
                    &format!(
                        "release charged {:.1} bits; {:.1} of {:.0} bits of this key set's leakage budget left",
                        r.cost_bits, r.remaining_bits, r.budget_bits
                    ),
                )
            };
            writeln!(out, "{text}").map_err(stdout_err)
        }
        Command::Demo(a) => {
            if let Some(t) = a.threads {
                // Only the first call can set the global pool; later calls keep it.
                let _ = rayon::ThreadPoolBuilder::new().num_threads(t.max(1)).build_global();
            }
            let opts = demo::DemoOptions {
                preset: a.preset,
                dataset: a.dataset.clone(),
                per_class: a.per_class,
                seed: a.seed,
                statistical_security: a.statistical_security,
                no_flooding: a.no_flooding,
                single_patient_latency: a.single_patient_latency,
                encrypt_mode: a.encrypt_mode.unwrap_or(encrypt::Mode::Seeded),
                fill_batches: !a.no_fill,
                progress: !a.json,
            };
            check_tilt(a.tilt, a.dataset.is_some())?;
            // A report directory that cannot be made fails now, not after the whole run.
            if let Some(dir) = &a.report {
                std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, "create the report directory", e))?;
            }
            if a.arch == equivariant::Architecture::Equivariant {
                if a.no_flooding || a.no_fill || a.encrypt_mode == Some(encrypt::Mode::Seeded) {
                    return Err(CliError::bad_input(
                        "--arch equivariant",
                        "is always circuit-private, evaluates one batch of the test patients and encrypts with the \
                         public key: --no-flooding, --no-fill and --encrypt-mode seeded apply to the GNN demo",
                    ));
                }
                return equivariant_demo::run_cli(&opts, a.tilt, a.report.as_deref(), a.json, out, err);
            }
            let t = std::time::Instant::now();
            let data = match &a.dataset {
                Some(p) => labelled::medmnist_features(p)?,
                None => labelled::phantom_features(opts.per_class, opts.seed, a.tilt)?,
            };
            let features_ms = t.elapsed().as_secs_f64() * 1e3;
            let json = a.json;
            let mut log = |line: &str| {
                if !json {
                    let _ = writeln!(err, "{line}");
                }
            };
            let report = demo::run_demo(&opts, data, features_ms, &mut log)?;
            if let Some(dir) = &a.report {
                let title = format!("{} - GNN - {}", report.dataset, report.preset);
                let files = report::write(dir, &title, &report.outcomes)?;
                log(&format!("[report]   {} and {}", files.png.display(), files.json.display()));
            }
            if json {
                writeln!(out, "{}", demo::to_json(&report)?).map_err(stdout_err)
            } else {
                Ok(())
            }
        }
        Command::Serve(a) => crate::service::cli::serve(a),
        Command::Worker(a) => crate::service::cli::worker(a),
        Command::Tenant(c) => crate::service::cli::tenant(c, out),
        Command::Submit(a) => crate::service::cli::submit(a, out),
        Command::Fetch(a) => crate::service::cli::fetch(a, out),
        Command::FetchProfile(a) => crate::service::cli::fetch_profile(a, out),
        Command::Decrypt(a) => {
            let format = match (a.json, a.csv) {
                (true, _) => decrypt::Format::Json,
                (_, true) => decrypt::Format::Csv,
                _ => decrypt::Format::Table,
            };
            let d = decrypt::decrypt(&a.keys, &a.input, &a.patients, a.from_device)?;
            out.write_all(decrypt::render(&d, format)?.as_bytes()).map_err(stdout_err)
        }
    }
}

/// Pretty JSON of `v` and a newline on `out`.
fn print_json(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::bad_input("output", e))?;
    writeln!(out, "{text}").map_err(|e| CliError::io("standard output", "write", e))
}
