//! Raw volumes and the `load_volume` dispatcher: sizes checked exactly, specs validated, every
//! truncation an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::raw::{load_raw, parse_raw, RawSpec, RawType};
use host_eval::data::{load_volume, DataError};
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clifhe-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn every_type_through_the_api_and_the_spec_syntax() {
    let vals: Vec<i32> = (0..24).map(|i| i * 3 - 20).collect();
    let cases: [(RawType, &str, Vec<u8>, Vec<f32>); 4] = [
        (
            RawType::U8,
            "u8",
            vals.iter().map(|&v| (v + 20) as u8).collect(),
            vals.iter().map(|&v| (v + 20) as f32).collect(),
        ),
        (
            RawType::U16,
            "u16",
            vals.iter().flat_map(|&v| ((v + 20) as u16 * 700).to_le_bytes()).collect(),
            vals.iter().map(|&v| ((v + 20) * 700) as f32).collect(),
        ),
        (
            RawType::I16,
            "i16",
            vals.iter().flat_map(|&v| (v as i16).to_le_bytes()).collect(),
            vals.iter().map(|&v| v as f32).collect(),
        ),
        (
            RawType::F32,
            "f32",
            vals.iter().flat_map(|&v| (v as f32 * 0.5).to_le_bytes()).collect(),
            vals.iter().map(|&v| v as f32 * 0.5).collect(),
        ),
    ];
    for (ty, name, bytes, want) in cases {
        let p = tmp(&format!("v-{name}.raw"));
        std::fs::write(&p, &bytes).unwrap();
        let v = load_raw(&p, &RawSpec::new([4, 3, 2], ty)).unwrap();
        assert_eq!(v.dims, [4, 3, 2]);
        assert_eq!(v.data, want, "{name}");
        assert_eq!(v.get(3, 2, 1), want.last().copied());
        // The in-memory reader (what the fuzzer drives) agrees, and refuses a size mismatch.
        assert_eq!(parse_raw(&p, &bytes, &RawSpec::new([4, 3, 2], ty)).unwrap(), v);
        assert!(matches!(
            parse_raw(&p, &bytes[1..], &RawSpec::new([4, 3, 2], ty)),
            Err(DataError::Corrupt { .. })
        ));
        let spec = format!("{}#4x3x2:{name}:0.5x0.5x2", p.display());
        let w = load_volume(&spec).unwrap();
        assert_eq!(w.data, want);
        assert_eq!(w.spacing_mm, [0.5, 0.5, 2.0]);
        // Wrong dimensions: the file size disagrees.
        assert!(matches!(
            load_volume(format!("{}#4x3x3:{name}", p.display())),
            Err(DataError::Corrupt { .. })
        ));
        // Every truncation is an error.
        for len in 0..bytes.len() {
            std::fs::write(&p, &bytes[..len]).unwrap();
            assert!(load_raw(&p, &RawSpec::new([4, 3, 2], ty)).is_err(), "{name} at {len}");
        }
    }
}

#[test]
fn bad_specs_and_huge_dims() {
    let p = tmp("small.raw");
    std::fs::write(&p, [0u8; 8]).unwrap();
    for bad in [
        "",
        "4x3",
        "4x3x2",
        "4x3x2:u32",
        "0x3x2:u8",
        "ax3x2:u8",
        "2x2x2:u8:1x1",
        "2x2x2:u8:1x-1x1",
        "2x2x2:u8:1x1x1:extra",
    ] {
        assert!(
            matches!(load_volume(format!("{}#{bad}", p.display())), Err(DataError::BadSample { .. })),
            "spec '{bad}'"
        );
    }
    assert!(load_volume(format!("{}#2x2x2:u8", p.display())).is_ok());
    // A bare .raw needs its geometry.
    assert!(matches!(load_volume(&p), Err(DataError::BadSample { .. })));
    // Declared sizes above the cap or overflowing: refused before touching the file's bytes.
    for dims in [[100_000, 100_000, 100_000], [usize::MAX, 2, 2]] {
        assert!(matches!(
            load_raw(&p, &RawSpec::new(dims, RawType::F32)),
            Err(DataError::TooLarge { .. })
        ));
    }
    assert!(matches!(
        load_raw(&tmp("absent.raw"), &RawSpec::new([1, 1, 1], RawType::U8)),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn dispatcher_errors_name_the_file() {
    let p = tmp("mystery.xyz");
    std::fs::write(&p, b"just some bytes that are no scan format at all").unwrap();
    let e = load_volume(&p).unwrap_err();
    assert!(matches!(e, DataError::UnsupportedFormat { .. }));
    assert!(e.to_string().contains("mystery.xyz"), "{e}");
    assert_eq!(e.path(), p.as_path());
    let e = load_volume(tmp("nope.nii")).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }));
    assert!(std::error::Error::source(&e).is_some());
    assert!(matches!(
        load_volume(format!("{}#1", p.display())),
        Err(DataError::BadSample { .. })
    ));
}

#[test]
fn path_first_raw_spec_syntax() {
    let p = tmp("pathfirst.raw");
    let bytes: Vec<u8> = (0..24i16).flat_map(|v| (v - 3).to_le_bytes()).collect();
    std::fs::write(&p, &bytes).unwrap();
    let a = load_volume(format!("{}#4x3x2:i16", p.display())).unwrap();
    let b = load_volume(format!("raw:{}:4x3x2:i16", p.display())).unwrap();
    assert_eq!(a, b);
    assert_eq!(b.data, (0..24).map(|v| v as f32 - 3.0).collect::<Vec<_>>());
    let c = load_volume(format!("raw:{}:4x3x2:i16:0.5x0.5x2", p.display())).unwrap();
    assert_eq!((c.dims, c.spacing_mm), ([4, 3, 2], [0.5, 0.5, 2.0]));
    assert!(matches!(load_volume(format!("raw:{}:4x3x2:u16", p.display())).unwrap(), v if v.data[0] == 65533.0));
    assert!(matches!(
        load_volume(format!("raw:{}:5x3x2:i16", p.display())),
        Err(DataError::Corrupt { .. })
    ));
    for bad in [
        "raw:",
        "raw:nonsense",
        &format!("raw:{}:4x3:i16", p.display()),
        &format!("raw:{}:4x3x2:i32", p.display()),
    ] {
        assert!(matches!(load_volume(bad), Err(DataError::BadSample { .. })), "{bad}");
    }
    assert!(matches!(
        load_volume("raw:/nonexistent/clifhe.raw:4x3x2:u8"),
        Err(DataError::Io { .. })
    ));
    // A voxel count whose f32 size overflows u64 (2^62 voxels): TooLarge, not an overflow panic.
    let r = load_volume(format!("raw:{}:4611686018427387904x1x1:u8", p.display()));
    assert!(matches!(r, Err(DataError::TooLarge { .. })), "{r:?}");
}
