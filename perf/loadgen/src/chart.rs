//! `--png`: latency percentiles and throughput over time, drawn with plotters'
//! bitmap backend and an embedded font (no browser, no fontconfig).

use plotters::prelude::*;
use plotters::style::FontStyle;

/// The font every label is drawn with, embedded so that charts draw the same anywhere.
const FONT_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FONT_FAMILY: &str = "sans-serif";
const CHART_WIDTH_PX: u32 = 1200;
const CHART_HEIGHT_PX: u32 = 900;
/// Latencies below this are drawn at it: the latency axis is logarithmic.
const LATENCY_FLOOR_MS: f64 = 0.01;

/// One measured second.
#[derive(Debug, Clone, Copy)]
pub struct SecondPoint {
    /// Seconds since measuring started.
    pub second: u64,
    pub records: u64,
    /// p50, p99 and p99.9 latency of the records of this second; `None` without latencies.
    pub latency_ms: Option<[f64; 3]>,
}

/// Draws the latency percentiles (top) and throughput (bottom) of `points` into a PNG at `path`.
pub fn draw(path: &str, title: &str, points: &[SecondPoint]) -> Result<(), String> {
    plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_TTF)
        .map_err(|_| "embedded font does not load".to_string())?;
    let root = BitMapBackend::new(path, (CHART_WIDTH_PX, CHART_HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, (FONT_FAMILY, 24)).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(CHART_HEIGHT_PX / 2 - 20);
    let seconds_max = points.iter().map(|p| p.second + 1).max().unwrap_or(1);
    draw_latency(&top, points, seconds_max).map_err(|e| e.to_string())?;
    draw_throughput(&bottom, points, seconds_max).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw_latency(area: &Area<'_>, points: &[SecondPoint], seconds_max: u64) -> DrawResult {
    let latencies: Vec<(u64, [f64; 3])> = points.iter().filter_map(|p| p.latency_ms.map(|l| (p.second, l))).collect();
    if latencies.is_empty() {
        area.draw_text("no latency measured in this mode", &(FONT_FAMILY, 18).into_text_style(area), (60, 60))?;
        return Ok(());
    }
    let ms_max = latencies.iter().map(|(_, l)| l[2]).fold(LATENCY_FLOOR_MS, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(area)
        .caption("latency per second (ms, log scale)", (FONT_FAMILY, 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0..seconds_max, (LATENCY_FLOOR_MS..ms_max).log_scale())?;
    chart.configure_mesh().x_desc("seconds").y_desc("ms").label_style((FONT_FAMILY, 14)).draw()?;
    let series = [("p50", 0, BLUE), ("p99", 1, RGBColor(230, 120, 0)), ("p99.9", 2, RED)];
    for (name, i, color) in series {
        let line = latencies.iter().map(|(s, l)| (*s, l[i].max(LATENCY_FLOOR_MS)));
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FONT_FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
}

fn draw_throughput(area: &Area<'_>, points: &[SecondPoint], seconds_max: u64) -> DrawResult {
    let records_max = points.iter().map(|p| p.records).max().unwrap_or(0).max(1) as f64 * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption("throughput per second (records/s)", (FONT_FAMILY, 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0..seconds_max, 0f64..records_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("records/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT_FAMILY, 14))
        .draw()?;
    let line = points.iter().map(|p| (p.second, p.records as f64));
    chart.draw_series(LineSeries::new(line, BLACK.stroke_width(2)))?;
    Ok(())
}
