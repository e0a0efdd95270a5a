//! `demo --report DIR`: the test set's ROC curve and the released diagnoses' confusion matrix as
//! one PNG (`report.png`), and the same figures as JSON (`report.json`).
//!
//! The curve is the plaintext model's (its scores equal the encrypted ones to the precision the
//! demo reports; the release itself gives only the argmax, so the curve cannot come from it);
//! the marked point, the confusion matrix and the balanced accuracy are the released diagnoses'.
//! Binary tasks draw the curve of score_1 - score_0; more classes draw one-vs-rest curves of the
//! softmax. Drawing uses `embedded-graphics` (lines, rectangles, its built-in bitmap fonts, so no
//! font file is needed) on an RGB buffer, encoded by `png`; both files are written atomically.

use super::fsio::write_atomic;
use super::CliError;
use clifhe_std::gnn::{balanced_accuracy, confusion_matrix, roc_auc, roc_curve, roc_inputs};
use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_7X13};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Text};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What the report is made from: one entry per test patient.
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    pub class_names: Vec<String>,
    pub labels: Vec<usize>,
    /// The plaintext model's class scores (logits).
    pub scores: Vec<Vec<f64>>,
    /// The released (flooded argmax) diagnoses.
    pub released: Vec<usize>,
}

/// One ROC curve: the positive class and its points.
#[derive(Clone, Debug, Serialize)]
pub struct Curve {
    pub positive_class: String,
    pub auc: f64,
    /// (false positive rate, true positive rate).
    pub points: Vec<(f64, f64)>,
}

/// `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct ReportFigures {
    pub title: String,
    pub patients: usize,
    pub class_names: Vec<String>,
    /// `confusion[true][released]`.
    pub confusion: Vec<Vec<usize>>,
    pub balanced_accuracy: f64,
    pub accuracy: f64,
    pub curves: Vec<Curve>,
    /// Binary tasks: the released diagnoses' (false positive rate, true positive rate).
    pub operating_point: Option<(f64, f64)>,
}

/// The files written.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    pub png: PathBuf,
    pub json: PathBuf,
}

/// The figures of `outcomes` (errors if the counts disagree or a class has no patient).
pub fn figures(title: &str, o: &Outcomes) -> Result<ReportFigures, CliError> {
    let classes = o.class_names.len();
    let n = o.labels.len();
    let bad = |reason: &str| CliError::BadInput {
        input: "demo report".into(),
        reason: reason.into(),
    };
    if classes < 2 || o.scores.len() != n || o.released.len() != n || o.scores.iter().any(|s| s.len() != classes) {
        return Err(bad("scores, labels and diagnoses disagree in count or class number"));
    }
    let curves = roc_inputs(&o.scores, classes)
        .into_iter()
        .map(|(c, scores)| {
            let pos: Vec<bool> = o.labels.iter().map(|&l| l == c).collect();
            match (roc_curve(&scores, &pos), roc_auc(&scores, &pos)) {
                (Some(points), Some(auc)) => Ok(Curve {
                    positive_class: o.class_names[c].clone(),
                    auc,
                    points,
                }),
                _ => Err(bad("a ROC curve needs patients of every class and finite scores")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let confusion = confusion_matrix(&o.released, &o.labels, classes);
    let operating_point = (classes == 2).then(|| {
        let (neg, pos) = (&confusion[0], &confusion[1]);
        let rate = |hit: usize, row: &[usize]| hit as f64 / row.iter().sum::<usize>().max(1) as f64;
        (rate(neg[1], neg), rate(pos[1], pos))
    });
    let correct = (0..classes).map(|c| confusion[c][c]).sum::<usize>();
    Ok(ReportFigures {
        title: title.to_string(),
        patients: n,
        class_names: o.class_names.clone(),
        balanced_accuracy: balanced_accuracy(&o.released, &o.labels, classes),
        accuracy: correct as f64 / n.max(1) as f64,
        confusion,
        curves,
        operating_point,
    })
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 440;
/// The ROC plot's square: left, top, side (pixels).
const PLOT: (i32, i32, i32) = (60, 70, 300);
const PALETTE: [Rgb888; 6] = [
    Rgb888::new(31, 119, 180),
    Rgb888::new(214, 39, 40),
    Rgb888::new(44, 160, 44),
    Rgb888::new(148, 103, 189),
    Rgb888::new(255, 127, 14),
    Rgb888::new(23, 190, 207),
];

/// An RGB8 image that embedded-graphics draws on.
struct Canvas {
    pixels: Vec<u8>,
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if (0..WIDTH as i32).contains(&p.x) && (0..HEIGHT as i32).contains(&p.y) {
                let i = 3 * (p.y as usize * WIDTH as usize + p.x as usize);
                self.pixels[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}

impl Canvas {
    fn new() -> Self {
        Self {
            pixels: vec![255; 3 * WIDTH as usize * HEIGHT as usize],
        }
    }

    fn draw(&mut self, d: &impl Drawable<Color = Rgb888>) {
        // Drawing on memory cannot fail (the error type is uninhabited).
        match d.draw(self) {
            Ok(_) => {}
            Err(e) => match e {},
        }
    }

    fn line(&mut self, a: (i32, i32), b: (i32, i32), color: Rgb888, width: u32) {
        self.draw(&Line::new(Point::new(a.0, a.1), Point::new(b.0, b.1)).into_styled(PrimitiveStyle::with_stroke(color, width)));
    }

    fn text(&mut self, s: &str, at: (i32, i32), align: Alignment, big: bool) {
        let font = if big { &FONT_7X13 } else { &FONT_6X10 };
        self.draw(&Text::with_alignment(
            s,
            Point::new(at.0, at.1),
            MonoTextStyle::new(font, Rgb888::BLACK),
            align,
        ));
    }

    fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.pixels)?;
        w.finish()?;
        Ok(out)
    }
}

/// Pixel position of a (false positive rate, true positive rate) point.
fn to_plot(p: (f64, f64)) -> (i32, i32) {
    let (x0, y0, side) = PLOT;
    let f = f64::from(side);
    (
        x0 + (p.0.clamp(0.0, 1.0) * f).round() as i32,
        y0 + side - (p.1.clamp(0.0, 1.0) * f).round() as i32,
    )
}

fn short(name: &str, max: usize) -> String {
    name.chars().take(max).collect()
}

/// The PNG of `f`.
pub fn render(f: &ReportFigures) -> Result<Vec<u8>, CliError> {
    let mut c = Canvas::new();
    let grey = Rgb888::new(150, 150, 150);
    let (x0, y0, side) = PLOT;
    // The large font holds 100 characters across the image, the small one 120.
    let big = f.title.chars().count() <= 100;
    c.text(&short(&f.title, 120), (WIDTH as i32 / 2, 22), Alignment::Center, big);
    c.text(
        &format!(
            "{} patients; released diagnoses: balanced accuracy {:.3}, accuracy {:.3}",
            f.patients, f.balanced_accuracy, f.accuracy
        ),
        (WIDTH as i32 / 2, 40),
        Alignment::Center,
        false,
    );
    // Axes, ticks, the chance diagonal (dashed).
    c.draw(
        &Rectangle::new(Point::new(x0, y0), Size::new(side as u32 + 1, side as u32 + 1))
            .into_styled(PrimitiveStyle::with_stroke(Rgb888::BLACK, 1)),
    );
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let (x, y) = to_plot((t, t));
        c.line((x, y0 + side), (x, y0 + side + 4), Rgb888::BLACK, 1);
        c.line((x0 - 4, y), (x0, y), Rgb888::BLACK, 1);
        c.text(&format!("{t:.2}"), (x, y0 + side + 15), Alignment::Center, false);
        c.text(&format!("{t:.2}"), (x0 - 6, y + 3), Alignment::Right, false);
    }
    for k in 0..30 {
        let (a, b) = (k as f64 / 30.0, (k as f64 + 0.5) / 30.0);
        c.line(to_plot((a, a)), to_plot((b, b)), grey, 1);
    }
    c.text("false positive rate", (x0 + side / 2, y0 + side + 30), Alignment::Center, false);
    c.text("true positive rate", (x0, y0 - 8), Alignment::Left, false);
    // Curves and their legend.
    for (i, curve) in f.curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for w in curve.points.windows(2) {
            c.line(to_plot(w[0]), to_plot(w[1]), color, 2);
        }
        let ly = y0 + side - 12 - 14 * (f.curves.len() - 1 - i) as i32;
        c.line((x0 + side / 2, ly - 3), (x0 + side / 2 + 16, ly - 3), color, 2);
        let label = if f.curves.len() == 1 {
            format!("AUC {:.3}", curve.auc)
        } else {
            format!("{} vs rest {:.3}", short(&curve.positive_class, 10), curve.auc)
        };
        c.text(&label, (x0 + side / 2 + 20, ly), Alignment::Left, false);
    }
    if let Some(p) = f.operating_point {
        let (x, y) = to_plot(p);
        c.draw(&Rectangle::new(Point::new(x - 4, y - 4), Size::new(9, 9)).into_styled(PrimitiveStyle::with_fill(Rgb888::BLACK)));
        c.text("released", (x + 8, y + 12), Alignment::Left, false);
    }
    // Confusion matrix: rows true class, columns released diagnosis, shaded by row share.
    let k = f.class_names.len() as i32;
    let cell = (260 / k.max(1)).min(90);
    let (mx, my) = (x0 + side + 110, y0 + 20);
    c.text("released diagnosis", (mx + cell * k / 2, my - 12), Alignment::Center, false);
    c.text("true", (mx - 8, my - 12), Alignment::Right, false);
    for (r, row) in f.confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (col, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let shade = (255.0 - 150.0 * share).round() as u8;
            let (cx, cy) = (mx + cell * col as i32, my + cell * r as i32);
            c.draw(
                &Rectangle::new(Point::new(cx, cy), Size::new(cell as u32, cell as u32))
                    .into_styled(PrimitiveStyle::with_fill(Rgb888::new(shade, shade, 255))),
            );
            c.draw(
                &Rectangle::new(Point::new(cx, cy), Size::new(cell as u32, cell as u32)).into_styled(PrimitiveStyle::with_stroke(grey, 1)),
            );
            c.text(&count.to_string(), (cx + cell / 2, cy + cell / 2 + 4), Alignment::Center, true);
        }
        c.text(
            &short(&f.class_names[r], 12),
            (mx - 6, my + cell * r as i32 + cell / 2 + 3),
            Alignment::Right,
            false,
        );
    }
    for (col, name) in f.class_names.iter().enumerate() {
        c.text(
            &short(name, 12),
            (mx + cell * col as i32 + cell / 2, my + cell * k + 14),
            Alignment::Center,
            false,
        );
    }
    c.png().map_err(|e| CliError::BadInput {
        input: "demo report".into(),
        reason: format!("PNG encoding failed: {e}"),
    })
}

/// Writes `report.png` and `report.json` into `dir` (created if missing), each atomically.
pub fn write(dir: &Path, title: &str, outcomes: &Outcomes) -> Result<ReportFiles, CliError> {
    let f = figures(title, outcomes)?;
    let png = render(&f)?;
    let json = serde_json::to_vec_pretty(&f).map_err(|e| CliError::BadInput {
        input: "demo report".into(),
        reason: e.to_string(),
    })?;
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, "create the report directory", e))?;
    let files = ReportFiles {
        png: dir.join("report.png"),
        json: dir.join("report.json"),
    };
    write_atomic(&files.png, &png)?;
    write_atomic(&files.json, &json)?;
    Ok(files)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn outcomes(classes: usize) -> Outcomes {
        let names = ["healthy", "benign", "malignant"];
        let labels: Vec<usize> = (0..60).map(|i| i % classes).collect();
        let scores: Vec<Vec<f64>> = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                (0..classes)
                    .map(|c| if c == l { 1.0 } else { 0.0 } + ((i * 7 + c * 3) % 11) as f64 / 8.0)
                    .collect()
            })
            .collect();
        let released = scores
            .iter()
            .map(|s| (0..classes).fold(0, |b, c| if s[c] > s[b] { c } else { b }))
            .collect();
        Outcomes {
            class_names: names[..classes].iter().map(|s| s.to_string()).collect(),
            labels,
            scores,
            released,
        }
    }

    #[test]
    fn binary_and_three_class_reports_are_valid_pngs_with_the_figures() {
        for classes in [2, 3] {
            let o = outcomes(classes);
            let f = figures("test", &o).unwrap();
            assert_eq!(f.curves.len(), if classes == 2 { 1 } else { 3 });
            assert_eq!(f.confusion.iter().flatten().sum::<usize>(), 60);
            assert_eq!(f.operating_point.is_some(), classes == 2);
            let png = render(&f).unwrap();
            let decoder = png::Decoder::new(std::io::Cursor::new(&png));
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
            // Something other than the white background was drawn, in colour (the curves).
            assert!(buf.chunks(3).any(|p| p[0] != p[1] || p[1] != p[2]));
        }
    }

    #[test]
    fn inconsistent_outcomes_are_a_typed_error() {
        let mut o = outcomes(2);
        o.released.pop();
        assert!(figures("t", &o).is_err());
        let mut o = outcomes(2);
        o.labels.iter_mut().for_each(|l| *l = 0);
        assert!(figures("t", &o).is_err(), "no positive patient: no ROC curve");
    }
}
