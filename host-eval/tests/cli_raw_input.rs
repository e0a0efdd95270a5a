//! A raw volume named on the command line with its shape in the fragment
//! (`vol.raw#XxYxZ:dtype`) reaches the scan loader: `--input` takes it as `features`,
//! `predict` and `encrypt` do, and gives the loader's own typed error for a wrong shape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, s, TempDir};

#[test]
fn raw_volume_specs_pass_through_input() {
    let d = TempDir::new("raw-input");
    let vol = d.join("vol.raw");
    // An 8 x 8 x 8 u8 cube with a bright 4 x 4 x 4 block in one corner.
    let mut bytes = vec![0u8; 512];
    for z in 0..4 {
        for y in 0..4 {
            for x in 0..4 {
                bytes[x + 8 * (y + 8 * z)] = 200;
            }
        }
    }
    std::fs::write(&vol, &bytes).unwrap();
    let csv = ok(&["features", "--input", &format!("{}#8x8x8:u8", s(&vol))]);
    let row = csv.lines().nth(1).expect("one data row");
    let values: Vec<f64> = row.split(',').skip(1).map(|v| v.trim().parse().unwrap()).collect();
    assert_eq!(values.len(), 8, "{csv}");
    // Mean intensity: 64 of 512 voxels at 200, as they are (no pipeline recorded).
    assert!((values[0] - 200.0 * 64.0 / 512.0).abs() < 1e-9, "{csv}");
    // The block sits at the low corner: negative centroid on every axis.
    assert!(values[1] < 0.0 && values[2] < 0.0 && values[3] < 0.0, "{csv}");
    // A shape that does not match the file's size is the loader's error, not a panic.
    fails(
        &["features", "--input", &format!("{}#8x8x9:u8", s(&vol))],
        7,
        &["corrupt file", "need 576"],
    );
}
